#include "zcproxy/counters.hpp"

#include <algorithm>

namespace zcproxy {

void listener_metrics::ended(close_reason reason, double seconds, splice_fallback up,
                             splice_fallback down) {
  constexpr auto relaxed = std::memory_order_relaxed;
  closed[reason].fetch_add(1, relaxed);
  for (auto f : {up, down})
    if (f != splice_fallback::none)
      fallbacks[static_cast<std::size_t>(f) - 1].fetch_add(1, relaxed);
  const auto bucket = std::lower_bound(duration_buckets.begin(), duration_buckets.end(), seconds);
  durations[static_cast<std::size_t>(bucket - duration_buckets.begin())].fetch_add(1, relaxed);
  duration_sum_us.fetch_add(static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e6), relaxed);
}

}  // namespace zcproxy
