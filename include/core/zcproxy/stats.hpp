// What a listener and an endpoint count, as plain values summed over workers: parts of the
// snapshot that the runtime hands out (control_api::snapshot) and the control plane renders.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "zcproxy/address.hpp"
#include "zcproxy/counters.hpp"
#include "zcproxy/endpoint_mode.hpp"

namespace zcproxy {

// Plain values, as a snapshot reads them.
struct listener_stats {
  std::string name;
  std::string bind;
  std::string destination;  // "upstream app" or "routes ..."
  std::uint64_t accepted = 0;
  std::int64_t active = 0;
  std::uint64_t bytes_up = 0, bytes_down = 0, spliced = 0, copied = 0;
  per_close_reason<std::uint64_t> closed;
  // Switches from splice to copy, by reason: /stats.json's "fallbacks".
  std::array<std::uint64_t, splice_fallback_reasons.size()> fallbacks{};
  std::array<std::uint64_t, duration_buckets.size() + 1> durations{};
  double duration_sum = 0;  // seconds
  std::array<std::uint64_t, mirror_result_names.size()> mirrors{};
  std::uint64_t mirror_bytes = 0;

  static listener_stats read(const listener_metrics& m);
};

struct endpoint_stats {
  std::string upstream;
  address at;
  std::string name;  // the DNS name it was resolved from; empty when given as an address
  endpoint_mode mode = endpoint_mode::ready;  // set at run time (admin API)
  unsigned weight = 1;                        // likewise: the file's unless set
  double effective_weight = 1;  // the weight picks go by now: less while in its slow start
  bool healthy = true;          // per active health checks
  bool usable = true;           // ready, healthy and not ejected by passive checks
  std::int64_t active = 0;
  std::uint64_t connections = 0;               // connections made to it
  std::uint64_t connect_failures = 0;          // attempts that failed or timed out
  std::uint64_t bytes_up = 0, bytes_down = 0;  // by its connections, as they move
};

// An upstream with max_connections_per_endpoint: its queue.
struct upstream_queue_stats {
  std::string upstream;
  std::size_t waiting = 0;                                         // clients queued now
  std::uint64_t refused_full = 0, refused_timeout = 0;             // by close reason
  std::array<std::uint64_t, duration_buckets.size() + 1> waits{};  // per bucket, last +Inf
  double wait_sum = 0;                                             // seconds
};

}  // namespace zcproxy
