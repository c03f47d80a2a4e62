// Logging: a main logger (stderr) and an access logger (stdout, one line per connection).
// Both are spdlog loggers, safe to use from every thread.
#pragma once

#include <spdlog/spdlog.h>

#include "zcproxy/config.hpp"

namespace zcproxy {

// (Re)configure both loggers; callable more than once (tests run several servers).
void setup_logging(const log_config& cfg);

spdlog::logger& main_log();
// nullptr when access logging is off.
spdlog::logger* access_log();

}  // namespace zcproxy
