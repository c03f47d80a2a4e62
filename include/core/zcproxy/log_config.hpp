// The log's settings, as the config gives them (its `log:` section) and the log applies them
// (log.hpp: setup_logging). Plain values; no spdlog here.
#pragma once

#include <string>
#include <string_view>

namespace zcproxy {

// How an access-log line is written (log.hpp: format_access).
enum class access_log_format {
  text,  // "TIME access client=... close=eof", as key=value pairs
  json,  // one JSON object per line
};

inline std::string_view to_string(access_log_format f) {
  return f == access_log_format::json ? "json" : "text";
}

struct log_config {
  std::string level = "info";  // trace | debug | info | warn | error | critical | off
  bool access_log = true;
  access_log_format access_format = access_log_format::text;
  std::string access_file;  // an absolute path in a directory that existed at load; "" = stdout
  bool operator==(const log_config&) const = default;
};

}  // namespace zcproxy
