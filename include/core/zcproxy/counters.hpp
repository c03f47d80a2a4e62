// The counters the data plane bumps as it works: a listener's (in its listener_state, one
// traffic slot per worker), as relaxed atomics. They are read out, summed and rendered by the
// control plane (metrics.hpp); nothing here knows about Prometheus or JSON.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "zcproxy/close_reason.hpp"
#include "zcproxy/enum_names.hpp"

namespace zcproxy {

// Why a direction switched from splice to copy (none: it did not). The type is named after the
// metric it is counted in, zcproxy_listener_splice_fallbacks_total, whose `reason` label takes
// the names of the reasons.
enum class splice_fallback : std::uint8_t { none, refused, pool_exhausted };
inline constexpr std::array<std::string_view, 3> splice_fallback_names{"none", "splice_refused",
                                                                       "pipe_pool_exhausted"};
constexpr std::string_view to_string(splice_fallback f) {
  return name_of(splice_fallback_names, f);
}
// The reasons alone (every name but none's), in the order of the counters (index = value - 1).
inline constexpr std::array<std::string_view, 2> splice_fallback_reasons{splice_fallback_names[1],
                                                                         splice_fallback_names[2]};

// How a connection's mirror ended: it saw the whole client stream through, or it stopped (the
// shadow could not be reached, was too slow to keep up, or closed or reset). The names are the
// metric's `result` label.
enum class mirror_result : std::uint8_t { completed, connect_failed, slow, shadow_closed };
inline constexpr std::array<std::string_view, 4> mirror_result_names{"completed", "connect_failed",
                                                                     "slow", "shadow_closed"};
constexpr std::string_view to_string(mirror_result r) {
  return name_of(mirror_result_names, r);
}

// Upper bounds (seconds) of the session duration histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 9> duration_buckets{0.001, 0.01, 0.1,  1,   10,
                                                        60,    300,  1800, 3600};

// A histogram over duration_buckets, per bucket (not cumulative, the last being +Inf), and the
// sum in microseconds: `seconds` counted into them (any thread).
void add_duration(std::array<std::atomic<std::uint64_t>, duration_buckets.size() + 1>& buckets,
                  std::atomic<std::uint64_t>& sum_us, double seconds);

// Adds to a counter that only one thread writes: no locked instruction on the data path.
inline void add_single_writer(std::atomic<std::uint64_t>& c, std::uint64_t n) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Bytes one worker's relays moved for one listener, counted as they move (so a long transfer
// shows up while it runs). Written by that worker's thread only.
struct alignas(64) traffic_slot {
  std::atomic<std::uint64_t> up{0};    // client -> upstream
  std::atomic<std::uint64_t> down{0};  // upstream -> client
  std::atomic<std::uint64_t> spliced{0};
  std::atomic<std::uint64_t> copied{0};
};

// Bytes one worker's relays (and mirrors) moved to and from one upstream endpoint, counted as they
// move, as a listener's are. Written by that worker's thread only.
struct alignas(64) endpoint_traffic_slot {
  std::atomic<std::uint64_t> up{0};    // sent to the endpoint
  std::atomic<std::uint64_t> down{0};  // received from it
};

// An endpoint's byte counts: a slot per worker. Shared by the upstream objects of every
// generation that has the endpoint, so a connection that outlives a reload keeps counting where
// the running upstream reads.
struct endpoint_traffic {
  explicit endpoint_traffic(unsigned workers)
      : workers(workers), slots(std::make_unique<endpoint_traffic_slot[]>(workers)) {}
  const unsigned workers;
  std::unique_ptr<endpoint_traffic_slot[]> slots;  // by worker index
};

// A listener's counters, across workers and across reloads that keep the listener.
struct listener_metrics {
  explicit listener_metrics(unsigned workers)
      : workers(workers), traffic(std::make_unique<traffic_slot[]>(workers)) {}

  const unsigned workers;
  std::unique_ptr<traffic_slot[]> traffic;  // one per worker, by worker index
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::int64_t> active{0};
  per_close_reason<std::atomic<std::uint64_t>> closed;
  // Directions switched from splice to copy, by reason (named after the metric, splice_fallbacks).
  std::array<std::atomic<std::uint64_t>, splice_fallback_reasons.size()> fallbacks{};
  // Per bucket (not cumulative), the last one being +Inf; and the sum of durations.
  std::array<std::atomic<std::uint64_t>, duration_buckets.size() + 1> durations{};
  std::atomic<std::uint64_t> duration_sum_us{0};
  std::array<std::atomic<std::uint64_t>, mirror_result_names.size()> mirrors{};  // by result
  std::atomic<std::uint64_t> mirror_bytes{0};  // sent to shadows, by mirrors that have ended

  // A connection ended: its close reason, duration and why each direction switched to copy, if it
  // did.
  void ended(close_reason reason, double seconds, splice_fallback up, splice_fallback down);
};

}  // namespace zcproxy
