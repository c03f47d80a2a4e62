// Endpoint selection for an upstream: pure logic, no sockets. Shared by every worker thread.
#pragma once

#include <atomic>
#include <cstddef>

#include "zcproxy/config.hpp"

namespace zcproxy {

class upstream {
 public:
  explicit upstream(const upstream_config& cfg) : cfg_(cfg) {}
  const upstream_config& config() const { return cfg_; }

  // Round-robin: the endpoint a new connection tries first; on failure it tries the following
  // ones in order (wrapping), each once.
  std::size_t first_endpoint() {
    return next_.fetch_add(1, std::memory_order_relaxed) % cfg_.endpoints.size();
  }

 private:
  const upstream_config& cfg_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace zcproxy
