// What the proxy counts, and how it is read out. Counters live where the work happens (a
// listener's in its listener_state, an endpoint's in its upstream) as relaxed atomics; the admin
// listener reads them through server::snapshot() and renders plain values with the functions
// below (pure: no sockets, no Asio).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/close_reason.hpp"
#include "zcproxy/config.hpp"

namespace zcproxy {

// Why a direction left splice for copy.
enum class splice_fallback : std::uint8_t { none, refused, pool_exhausted };
inline constexpr std::array<std::string_view, 2> splice_fallback_reasons{"splice_refused",
                                                                         "pipe_pool_exhausted"};

// How a connection's mirror ended: it saw the whole client stream through, or it stopped (the
// shadow could not be reached, was too slow to keep up, or closed or reset). mirror_results are
// their names, in the enum's order (the metric's `result` label).
enum class mirror_result : std::uint8_t { completed, connect_failed, slow, shadow_closed };
inline constexpr std::array<std::string_view, 4> mirror_results{"completed", "connect_failed",
                                                                "slow", "shadow_closed"};
inline std::string_view to_string(mirror_result r) {
  return mirror_results[static_cast<std::size_t>(r)];
}

// Upper bounds (seconds) of the session duration histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 9> duration_buckets{0.001, 0.01, 0.1,  1,   10,
                                                        60,    300,  1800, 3600};

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

// A listener's counters, across workers and across reloads that keep the listener.
struct listener_metrics {
  explicit listener_metrics(unsigned workers)
      : workers(workers), traffic(std::make_unique<traffic_slot[]>(workers)) {}

  const unsigned workers;
  std::unique_ptr<traffic_slot[]> traffic;  // one per worker, by worker index
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::int64_t> active{0};
  per_close_reason<std::atomic<std::uint64_t>> closed;
  std::array<std::atomic<std::uint64_t>, splice_fallback_reasons.size()> fallbacks{};
  // Per bucket (not cumulative), the last one being +Inf; and the sum of durations.
  std::array<std::atomic<std::uint64_t>, duration_buckets.size() + 1> durations{};
  std::atomic<std::uint64_t> duration_sum_us{0};
  std::array<std::atomic<std::uint64_t>, mirror_results.size()> mirrors{};  // by result
  std::atomic<std::uint64_t> mirror_bytes{0};  // sent to shadows, by mirrors that have ended

  // A connection ended: its close reason, duration and how each direction fell back, if it did.
  void ended(close_reason reason, double seconds, splice_fallback up, splice_fallback down);
};

// Plain values, as a snapshot reads them.
struct listener_stats {
  std::string name;
  std::string bind;
  std::string destination;  // "upstream app" or "routes ..."
  std::uint64_t accepted = 0;
  std::int64_t active = 0;
  std::uint64_t bytes_up = 0, bytes_down = 0, spliced = 0, copied = 0;
  per_close_reason<std::uint64_t> closed;
  std::array<std::uint64_t, splice_fallback_reasons.size()> fallbacks{};
  std::array<std::uint64_t, duration_buckets.size() + 1> durations{};
  double duration_sum = 0;  // seconds
  std::array<std::uint64_t, mirror_results.size()> mirrors{};
  std::uint64_t mirror_bytes = 0;

  static listener_stats read(const listener_metrics& m);
};

struct endpoint_stats {
  std::string upstream;
  address at;
  bool healthy = true;  // per active health checks
  bool usable = true;   // healthy and not ejected by passive checks
  std::int64_t active = 0;
  std::uint64_t connections = 0;               // connections made to it
  std::uint64_t connect_failures = 0;          // attempts that failed or timed out
  std::uint64_t bytes_up = 0, bytes_down = 0;  // by its connections that have ended
};

struct proxy_stats {
  std::string version;
  double start_time = 0;  // Unix time, seconds
  double now = 0;         // likewise, when the snapshot was taken
  std::size_t sessions = 0;
  std::size_t pipes_leased = 0, pipes_idle = 0, buffers_leased = 0;
  std::uint64_t reloads = 0, reloads_failed = 0;
  std::vector<listener_stats> listeners;
  std::vector<endpoint_stats> endpoints;
};

// Prometheus text exposition format 0.0.4.
std::string render_prometheus(const proxy_stats& s);

// One second of throughput, for the stats page's chart.
struct throughput_sample {
  double time = 0;  // Unix time, seconds
  double up = 0;    // bytes per second, client -> upstream, all listeners
  double down = 0;
};

// The stats page's data (also GET /stats.json): `s`, plus the last minute of throughput.
std::string render_stats_json(const proxy_stats& s, const std::vector<throughput_sample>& history);

// The stats page itself: one self-contained HTML document (no external assets).
std::string_view stats_page_html();

}  // namespace zcproxy
