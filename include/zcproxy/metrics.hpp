// What the proxy counts, read out: plain values summed over workers (a snapshot, see
// control_api) and rendered as Prometheus text or the stats page's JSON. Pure: no sockets, no
// Asio. The counters themselves live where the work happens (counters.hpp, upstream.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/config.hpp"
#include "zcproxy/counters.hpp"

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
