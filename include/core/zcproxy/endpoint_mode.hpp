// An endpoint's run-time state, as the admin API sets it: ready takes new connections; drain
// takes none, its open ones run to their end, health checks go on; maint is drain without health
// checks. Not in the config file: every endpoint starts ready, and a reload keeps the state of
// the endpoints that are still there.
#pragma once

#include <array>
#include <optional>
#include <string_view>

#include "zcproxy/enum_names.hpp"

namespace zcproxy {

enum class endpoint_mode : unsigned char { ready, drain, maint };

inline constexpr std::array<std::string_view, 3> endpoint_mode_names{"ready", "drain", "maint"};

constexpr std::string_view to_string(endpoint_mode m) {
  return name_of(endpoint_mode_names, m);
}

constexpr std::optional<endpoint_mode> parse_endpoint_mode(std::string_view text) {
  return parse_name<endpoint_mode>(endpoint_mode_names, text);
}

}  // namespace zcproxy
