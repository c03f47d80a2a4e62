#include "zcproxy/log.hpp"

#include <pthread.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/file_helper.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <boost/json.hpp>
#include <ctime>
#include <iterator>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace zcproxy {
namespace {

namespace json = boost::json;
using std::chrono::system_clock;

// The access file. Lines are written by the access logger's thread, reopen() comes from any
// thread; base_sink's mutex serialises them.
class reopenable_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Throws spdlog::spdlog_ex when the file cannot be opened.
  explicit reopenable_file_sink(const std::string& path) : file_(open(path)) {}

  // A fresh handle on the same path. Not file_helper::reopen: it closes the old file before it
  // tries the new one, and a failure would leave no file to write to.
  void reopen() {
    auto fresh = open(file_->filename());  // outside the lock: lines keep flowing meanwhile
    std::lock_guard lock(mutex_);
    file_ = std::move(fresh);
  }

  const std::string& path() const { return file_->filename(); }  // fixed at construction

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    file_->write(line);
    // One write(2) per line, on this thread, as nginx's unbuffered access_log: a line is in the
    // file as soon as it is written, for tail -f and for a crash.
    file_->flush();
  }
  void flush_() override { file_->flush(); }

 private:
  static std::unique_ptr<spdlog::details::file_helper> open(const std::string& path) {
    auto f = std::make_unique<spdlog::details::file_helper>();
    f->open(path, false);  // append: logrotate's copytruncate and a restart keep what is there
    return f;
  }

  std::unique_ptr<spdlog::details::file_helper> file_;
};

// The access log's state. `mutex` orders setup, reopen and shutdown; log_access never takes it.
struct access_state {
  std::mutex mutex;
  std::shared_ptr<spdlog::details::thread_pool> pool;  // created when first needed
  std::shared_ptr<spdlog::async_logger> logger;        // null while the access log is off
  std::shared_ptr<reopenable_file_sink> file;          // logger's sink; null for stdout
  std::string path;                                    // file's path; "" for stdout

  // What log_access reads.
  std::atomic<std::shared_ptr<spdlog::async_logger>> current;
  std::atomic<bool> enabled{false};
  std::atomic<access_log_format> format{access_log_format::text};
};

access_state& the_access() {
  static access_state a;  // thread-safe initialisation
  return a;
}

spdlog::logger& the_main() {
  static spdlog::logger main = [] {
    spdlog::logger l{"zcproxy", std::make_shared<spdlog::sinks::stderr_sink_mt>()};
    l.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    l.flush_on(spdlog::level::warn);
    return l;
  }();
  return main;
}

// A new access logger writing to `path` ("" = stdout), on the access thread. Throws
// spdlog::spdlog_ex when the file cannot be opened.
std::shared_ptr<spdlog::async_logger> make_access_logger(
    access_state& a, const std::string& path, std::shared_ptr<reopenable_file_sink>& file) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (path.empty()) {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    file = std::make_shared<reopenable_file_sink>(path);
    sink = file;
  }
  if (!a.pool)
    a.pool = std::make_shared<spdlog::details::thread_pool>(
        access_queue_size, 1, [] { ::pthread_setname_np(::pthread_self(), "zcproxy-access"); });
  // overrun_oldest, not block: a full queue (a stalled disk or stdout) drops the oldest line
  // rather than stall the worker that logs. spdlog 1.10 has no discard-new policy.
  auto logger = std::make_shared<spdlog::async_logger>(
      "access", std::move(sink), a.pool, spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%v");  // format_access writes the whole line, time included
  return logger;
}

// "2026-11-25T12:02:23.640" in local time, as the main log's pattern, or
// "2026-11-25T17:02:23.640Z" in UTC (RFC 3339).
std::string format_time(system_clock::time_point t, bool utc) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t - secs).count();
  const std::time_t tt = system_clock::to_time_t(secs);
  std::tm parts{};
  if (utc)
    ::gmtime_r(&tt, &parts);
  else
    ::localtime_r(&tt, &parts);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}", parts.tm_year + 1900,
                     parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, ms,
                     utc ? "Z" : "");
}

std::string_view or_dash(const std::string& s) {
  return s.empty() ? std::string_view("-") : std::string_view(s);
}

json::value string_or_null(const std::string& s, json::storage_ptr sp) {
  if (s.empty()) return json::value(nullptr, std::move(sp));
  return json::value(json::string_view(s), std::move(sp));
}

// The final line exactly as it always was; the others carry their event after "access".
std::string format_text(const access_record& r, system_clock::time_point now) {
  fmt::memory_buffer out;
  auto to = std::back_inserter(out);
  fmt::format_to(to, "{} access ", format_time(now, false));
  if (r.event != access_event::close) fmt::format_to(to, "event={} ", to_string(r.event));
  fmt::format_to(to, "client={} listener={} sni={} upstream={} endpoint={}", r.client, r.listener,
                 or_dash(r.sni), or_dash(r.upstream), or_dash(r.endpoint));
  if (r.event == access_event::connect) {
    fmt::format_to(to, " connect_ms={}", r.connect_ms);
    return fmt::to_string(out);
  }
  fmt::format_to(to, " bytes_up={} bytes_down={} duration_ms={} engine_up={} engine_down={}",
                 r.bytes_up, r.bytes_down, r.duration_ms, or_dash(r.engine_up),
                 or_dash(r.engine_down));
  if (r.event == access_event::close) fmt::format_to(to, " close={}", to_string(r.close));
  return fmt::to_string(out);
}

// The text format's fields in its order, after "time" (and "event", but for the final line) and
// "start".
std::string format_json(const access_record& r, system_clock::time_point now) {
  // Built in a stack buffer: no heap allocation for a line of usual size.
  unsigned char buffer[2048];
  json::monotonic_resource arena(buffer, sizeof buffer);
  json::storage_ptr sp(&arena);
  json::object line(sp);
  line.reserve(14);
  // Insertion order is kept: the fields come out as the text format lists them.
  line.emplace("time", format_time(now, true));
  if (r.event != access_event::close) line.emplace("event", to_string(r.event));
  line.emplace("start", format_time(r.start, true));
  line.emplace("client", r.client);
  line.emplace("listener", r.listener);
  line.emplace("sni", string_or_null(r.sni, sp));
  line.emplace("upstream", string_or_null(r.upstream, sp));
  line.emplace("endpoint", string_or_null(r.endpoint, sp));
  if (r.event == access_event::connect) {
    line.emplace("connect_ms", r.connect_ms);
    return json::serialize(line);
  }
  line.emplace("bytes_up", r.bytes_up);
  line.emplace("bytes_down", r.bytes_down);
  line.emplace("duration_ms", r.duration_ms);
  line.emplace("engine_up", string_or_null(r.engine_up, sp));
  line.emplace("engine_down", string_or_null(r.engine_down, sp));
  if (r.event == access_event::close) line.emplace("close", to_string(r.close));
  return json::serialize(line);
}

}  // namespace

void setup_logging(const log_config& cfg) {
  the_main().set_level(spdlog::level::from_str(cfg.level));
  access_state& a = the_access();
  std::lock_guard lock(a.mutex);
  if (!cfg.access_log) {
    // Lines still queued keep the logger (and its file) alive until they are written.
    a.current.store(nullptr);
    a.logger.reset();
    a.file.reset();
    a.path.clear();
  } else if (!a.logger || a.path != cfg.access_file) {
    std::shared_ptr<reopenable_file_sink> file;
    try {
      a.logger = make_access_logger(a, cfg.access_file, file);
    } catch (const spdlog::spdlog_ex& e) {
      throw std::runtime_error("log.access_file: " + std::string(e.what()));
    }
    a.file = std::move(file);
    a.path = cfg.access_file;
    a.current.store(a.logger);
  }
  a.format.store(cfg.access_format, std::memory_order_relaxed);
  a.enabled.store(cfg.access_log, std::memory_order_relaxed);
}

spdlog::logger& main_log() {
  return the_main();
}

bool access_log_enabled() {
  return the_access().enabled.load(std::memory_order_relaxed);
}

void log_access(const access_record& r) {
  access_state& a = the_access();
  const auto logger = a.current.load();
  if (!logger) return;
  logger->info(format_access(r, a.format.load(std::memory_order_relaxed), system_clock::now()));
}

std::string format_access(const access_record& r, access_log_format format,
                          system_clock::time_point now) {
  return format == access_log_format::text ? format_text(r, now) : format_json(r, now);
}

void reopen_access_log() {
  access_state& a = the_access();
  std::lock_guard lock(a.mutex);
  if (!a.file) {
    main_log().info("access log: {}; nothing to reopen", a.logger ? "stdout" : "off");
    return;
  }
  try {
    a.file->reopen();
    main_log().info("access log: reopened {}", a.file->path());
  } catch (const spdlog::spdlog_ex& e) {
    main_log().error("access log: reopening failed, still writing to the old file: {}", e.what());
  }
}

void shutdown_logging() {
  access_state& a = the_access();
  std::lock_guard lock(a.mutex);
  a.enabled.store(false);
  a.current.store(nullptr);
  a.logger.reset();
  a.file.reset();
  a.path.clear();
  if (!a.pool) return;
  const std::size_t dropped = a.pool->overrun_counter();
  // The only owner (loggers hold it weakly): its destructor writes out every queued line, then
  // joins the thread. Queued lines hold their logger, and so the file, until they are written.
  a.pool.reset();
  if (dropped > 0)
    main_log().warn("access log: {} lines dropped because the queue ({} lines) was full", dropped,
                    access_queue_size);
}

}  // namespace zcproxy
