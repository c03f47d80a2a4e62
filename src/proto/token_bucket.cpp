#include "zcproxy/token_bucket.hpp"

#include <algorithm>
#include <limits>

namespace zcproxy {

namespace detail {
namespace {

// Exact products of elapsed ticks, rates and tick counts: up to 2^63 * 2^64.
__extension__ using int128 = __int128;
__extension__ using uint128 = unsigned __int128;

using tick_period = token_bucket::duration::period;
static_assert(tick_period::num == 1, "steady_clock ticks are a whole fraction of a second");
constexpr std::uint64_t ticks_per_second = tick_period::den;
constexpr std::int64_t max_tokens = std::int64_t{1} << 62;  // bound on burst and on debt

}  // namespace
}  // namespace detail

std::uint64_t token_bucket::default_burst(std::uint64_t bytes_per_second) {
  return std::max<std::uint64_t>(bytes_per_second / 10, 64 * 1024);
}

token_bucket::token_bucket(std::uint64_t bytes_per_second, std::uint64_t burst)
    : rate_(bytes_per_second),
      burst_(std::min<std::uint64_t>(burst ? burst : default_burst(bytes_per_second),
                                     detail::max_tokens)),
      tokens_(static_cast<std::int64_t>(burst_)) {}

void token_bucket::refill(time_point now) {
  if (!started_) {  // the clock starts now: the bucket is as full as it was built
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;  // no time passed (or the caller's clock went back: ignore it)
  auto elapsed = static_cast<std::uint64_t>((now - last_).count());
  last_ = now;
  const auto burst = static_cast<std::int64_t>(burst_);
  if (tokens_ >= burst) {
    carry_ = 0;  // full: what would accrue now is lost, as in any bucket
    return;
  }
  detail::uint128 total = detail::uint128(elapsed) * rate_ + carry_;
  detail::int128 tokens = tokens_ + detail::int128(total / detail::ticks_per_second);
  if (tokens >= burst) {
    tokens_ = burst;
    carry_ = 0;
  } else {
    tokens_ = static_cast<std::int64_t>(tokens);
    carry_ = static_cast<std::uint64_t>(total % detail::ticks_per_second);
  }
}

std::uint64_t token_bucket::allowance(time_point now) {
  if (unlimited()) return std::numeric_limits<std::uint64_t>::max();
  refill(now);
  return tokens_ > 0 ? static_cast<std::uint64_t>(tokens_) : 0;
}

void token_bucket::consume(std::uint64_t n) {
  if (unlimited()) return;
  detail::int128 left = detail::int128(tokens_) - n;
  tokens_ = static_cast<std::int64_t>(std::max<detail::int128>(left, -detail::max_tokens));
}

token_bucket::duration token_bucket::wait_for(std::uint64_t want, time_point now) {
  if (unlimited() || want == 0) return duration::zero();
  refill(now);
  auto need = static_cast<std::int64_t>(std::min(want, burst_));
  if (tokens_ >= need) return duration::zero();
  // Smallest t with t * rate + carry >= deficit * ticks_per_second: then refill(now + t) adds
  // at least the deficit, and refill(now + t - 1) does not.
  detail::int128 deficit = detail::int128(need) - tokens_;
  detail::int128 numerator = deficit * detail::ticks_per_second - carry_;
  detail::int128 ticks = (numerator + rate_ - 1) / rate_;
  if (ticks > std::numeric_limits<duration::rep>::max()) return duration::max();
  return duration(static_cast<duration::rep>(ticks));
}

}  // namespace zcproxy
