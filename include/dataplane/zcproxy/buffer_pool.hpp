// Buffers for the copy engine, leased only while bytes are in flight so that idle connections
// pin no memory.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <optional>

#include "zcproxy/pool.hpp"

namespace zcproxy {

struct buffer {
  std::unique_ptr<char[]> data;
  std::size_t size = 0;
  bool reusable() const { return true; }
};

using buffer_pool = pool<buffer>;

inline buffer_pool make_buffer_pool(std::size_t buffer_size, std::size_t keep_idle = 8) {
  return buffer_pool(
      [buffer_size]() -> std::optional<buffer> {
        // for_overwrite: no zero-fill of a buffer that read() overwrites anyway.
        return buffer{std::make_unique_for_overwrite<char[]>(buffer_size), buffer_size};
      },
      std::numeric_limits<std::size_t>::max(), keep_idle);
}

}  // namespace zcproxy
