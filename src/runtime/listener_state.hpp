// What a listener counts and limits across workers and reloads: its counters, the connections it
// has admitted (max_connections, max_connections_per_ip) and the rate of the main-log lines its
// refused clients cause. Shared by every worker thread: the counts are atomics, the per-address
// map takes a mutex (only with max_connections_per_ip set).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>

#include "zcproxy/counters.hpp"
#include "zcproxy/log_limiter.hpp"

namespace zcproxy {

// What a listener counts across workers and reloads (a listener kept by a reload keeps it).
struct listener_state {
  explicit listener_state(unsigned workers) : metrics(workers) {}

  listener_metrics metrics;
  std::atomic<unsigned> open{0};  // connections admitted and not yet ended
  std::mutex per_ip_mutex;
  std::unordered_map<std::string, unsigned> per_ip;  // raw address bytes -> open connections
  log_limiter client_lines{close_reasons.size()};    // main-log lines of refused clients, by reason

  // Admit one more connection from `ip` under the limits (0 = none); false when over one.
  bool admit(const std::string& ip, unsigned max_total, unsigned max_per_ip);
  void release(const std::string& ip, bool per_ip_counted);
};

}  // namespace zcproxy
