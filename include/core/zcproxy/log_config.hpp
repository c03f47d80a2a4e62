// The log's settings, as the config gives them (its `log:` section) and the log applies them
// (log.hpp: setup_logging). Plain values; no spdlog here.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "zcproxy/enum_names.hpp"

namespace zcproxy {

// How an access-log line is written (log.hpp: format_access).
enum class access_log_format {
  text,  // "TIME access client=... close=eof", as key=value pairs
  json,  // one JSON object per line
};

// As the config file spells them.
inline constexpr std::array<std::string_view, 2> access_log_format_names{"text", "json"};

constexpr std::string_view to_string(access_log_format f) {
  return name_of(access_log_format_names, f);
}

constexpr std::optional<access_log_format> parse_access_log_format(std::string_view text) {
  return parse_name<access_log_format>(access_log_format_names, text);
}

struct log_config {
  std::string level = "info";  // trace | debug | info | warn | error | critical | off
  bool access_log = true;
  access_log_format access_format = access_log_format::text;
  std::string access_file;  // an absolute path in a directory that existed at load; "" = stdout
  // Lines besides a connection's final one (format_access: access_event): one as its upstream
  // connection is made, and one per interval while it relays (0 = none; else 1s or more).
  bool on_connect = false;
  std::chrono::milliseconds interval{0};
  bool operator==(const log_config&) const = default;
};

}  // namespace zcproxy
