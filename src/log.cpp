#include "zcproxy/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>

namespace zcproxy {
namespace {

struct loggers {
  loggers() {
    main.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    access.set_pattern("%Y-%m-%dT%H:%M:%S.%e access %v");
    main.flush_on(spdlog::level::warn);
  }
  spdlog::logger main{"zcproxy", std::make_shared<spdlog::sinks::stderr_sink_mt>()};
  spdlog::logger access{"access", std::make_shared<spdlog::sinks::stdout_sink_mt>()};
  std::atomic<spdlog::logger*> access_enabled{nullptr};
};

loggers& the_loggers() {
  static loggers l;  // thread-safe initialisation
  return l;
}

}  // namespace

void setup_logging(const log_config& cfg) {
  loggers& l = the_loggers();
  l.main.set_level(spdlog::level::from_str(cfg.level));
  l.access_enabled.store(cfg.access_log ? &l.access : nullptr);
}

spdlog::logger& main_log() {
  return the_loggers().main;
}

spdlog::logger* access_log() {
  return the_loggers().access_enabled.load(std::memory_order_relaxed);
}

}  // namespace zcproxy
