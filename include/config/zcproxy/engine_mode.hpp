// How a direction of a connection moves bytes: the config's `engine`, and what the relay is
// started with. A header of its own so that the data plane needs no more of the config for it.
#pragma once

#include <array>
#include <optional>
#include <string_view>

#include "zcproxy/enum_names.hpp"

namespace zcproxy {

enum class engine_mode : unsigned char {
  automatic,  // splice; copy when splice is refused (EINVAL/ENOSYS) or the pipe pool is at its cap
  splice,     // splice only; a connection whose sockets refuse splice is closed
  copy,       // buffered copy through user space
  // Per connection: copy when both peers are on this host (loopback: the receiver copies anyway
  // and the pages are cache-hot, so copy costs fewer cycles than splice), else as automatic.
  adaptive,
};

// As the config file spells them.
inline constexpr std::array<std::string_view, 4> engine_mode_names{"auto", "splice", "copy",
                                                                   "adaptive"};

constexpr std::string_view to_string(engine_mode m) {
  return name_of(engine_mode_names, m);
}

constexpr std::optional<engine_mode> parse_engine_mode(std::string_view text) {
  return parse_name<engine_mode>(engine_mode_names, text);
}

}  // namespace zcproxy
