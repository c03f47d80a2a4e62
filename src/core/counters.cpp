#include "zcproxy/counters.hpp"

#include <algorithm>

#include "zcproxy/stats.hpp"

namespace zcproxy {

void listener_metrics::ended(close_reason reason, double seconds, splice_fallback up,
                             splice_fallback down) {
  constexpr auto relaxed = std::memory_order_relaxed;
  closed[reason].fetch_add(1, relaxed);
  for (auto f : {up, down})
    if (f != splice_fallback::none)
      fallbacks[static_cast<std::size_t>(f) - 1].fetch_add(1, relaxed);
  add_duration(durations, duration_sum_us, seconds);
}

void add_duration(std::array<std::atomic<std::uint64_t>, duration_buckets.size() + 1>& buckets,
                  std::atomic<std::uint64_t>& sum_us, double seconds) {
  constexpr auto relaxed = std::memory_order_relaxed;
  const auto bucket = std::lower_bound(duration_buckets.begin(), duration_buckets.end(), seconds);
  buckets[static_cast<std::size_t>(bucket - duration_buckets.begin())].fetch_add(1, relaxed);
  sum_us.fetch_add(static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e6), relaxed);
}

listener_stats listener_stats::read(const listener_metrics& m) {
  constexpr auto relaxed = std::memory_order_relaxed;
  listener_stats s;
  for (unsigned i = 0; i < m.workers; ++i) {
    const traffic_slot& t = m.traffic[i];
    s.bytes_up += t.up.load(relaxed);
    s.bytes_down += t.down.load(relaxed);
    s.spliced += t.spliced.load(relaxed);
    s.copied += t.copied.load(relaxed);
  }
  s.accepted = m.accepted.load(relaxed);
  s.active = m.active.load(relaxed);
  for (close_reason r : close_reasons) s.closed[r] = m.closed[r].load(relaxed);
  for (std::size_t i = 0; i < s.fallbacks.size(); ++i)
    s.fallbacks[i] = m.fallbacks[i].load(relaxed);
  for (std::size_t i = 0; i < s.durations.size(); ++i)
    s.durations[i] = m.durations[i].load(relaxed);
  s.duration_sum = static_cast<double>(m.duration_sum_us.load(relaxed)) / 1e6;
  for (std::size_t i = 0; i < s.mirrors.size(); ++i) s.mirrors[i] = m.mirrors[i].load(relaxed);
  s.mirror_bytes = m.mirror_bytes.load(relaxed);
  return s;
}

}  // namespace zcproxy
