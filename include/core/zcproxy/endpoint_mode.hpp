// An endpoint's run-time state, as the admin API sets it: ready takes new connections; drain
// takes none, its open ones run to their end, health checks go on; maint is drain without health
// checks. Not in the config file: every endpoint starts ready, and a reload keeps the state of
// the endpoints that are still there.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace zcproxy {

enum class endpoint_mode : unsigned char { ready, drain, maint };

inline constexpr std::array<std::string_view, 3> endpoint_mode_names{"ready", "drain", "maint"};

constexpr std::string_view to_string(endpoint_mode m) {
  return endpoint_mode_names[static_cast<std::size_t>(m)];
}

constexpr std::optional<endpoint_mode> parse_endpoint_mode(std::string_view text) {
  for (std::size_t i = 0; i < endpoint_mode_names.size(); ++i)
    if (endpoint_mode_names[i] == text) return static_cast<endpoint_mode>(i);
  return std::nullopt;
}

}  // namespace zcproxy
