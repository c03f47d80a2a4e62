// token_bucket: a per-connection rate limit, bytes per second for one direction of one
// connection. Not thread-safe: it is owned by the session that relays that direction. Time is
// passed in (steady_clock), so the bucket never reads the clock itself and tests run on simulated
// time.
#pragma once

#include <chrono>
#include <cstdint>

namespace zcproxy {

// A token bucket in bytes: tokens accrue at `bytes_per_second` up to `burst`; moving n bytes
// spends n. It starts full, so a new connection may move `burst` bytes at once; over any span
// t it moves at most bytes_per_second * t + burst. Accrual is exact (integer arithmetic with
// the sub-byte remainder carried), so frequent calls lose nothing to rounding. Its clock starts
// at the first `now` given to allowance() or wait_for(); consume() before that only spends.
//
// Typical use in a relay loop:
//   n = read(min(buffer, bucket.allowance(now)));  bucket.consume(n);
//   if allowance is 0: wait bucket.wait_for(buffer, now), then retry.
class token_bucket {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using duration = clock::duration;

  // When no burst is given (or 0): a tenth of a second's worth, at least 64 KiB. A tenth of a
  // second lets the relay move large chunks with about ten waits per second at the limit; the
  // 64 KiB floor keeps slow limits from forcing tiny reads and writes (a 1 KiB/s limit would
  // otherwise allow ~100 bytes per syscall).
  static std::uint64_t default_burst(std::uint64_t bytes_per_second);

  // bytes_per_second == 0: unlimited (the burst is then ignored). A burst above 2^62 is
  // lowered to 2^62.
  explicit token_bucket(std::uint64_t bytes_per_second, std::uint64_t burst = 0);

  bool unlimited() const { return rate_ == 0; }
  std::uint64_t rate() const { return rate_; }
  std::uint64_t burst() const { return burst_; }

  // Bytes that may move now: refills by the time elapsed since the last call (capped at the
  // burst) and returns what is there. Unlimited: UINT64_MAX. A `now` earlier than one already
  // seen counts as no time passing.
  std::uint64_t allowance(time_point now);

  // `n` bytes moved. Spending more than allowance() leaves a debt that accrual repays before
  // anything else may move, so the long-run rate holds even then.
  void consume(std::uint64_t n);

  // How long from `now` until at least min(want, burst) bytes may move; zero when they already
  // may (or want == 0, or unlimited). Exact: allowance(now + wait_for(want, now)) reaches it,
  // one tick earlier it does not.
  duration wait_for(std::uint64_t want, time_point now);

 private:
  void refill(time_point now);

  std::uint64_t rate_;
  std::uint64_t burst_;
  std::int64_t tokens_;      // may go negative: a debt (see consume)
  std::uint64_t carry_ = 0;  // accrued fraction of a byte, in units of 1/(ticks per second)
  time_point last_{};        // latest `now` seen
  bool started_ = false;     // last_ is set
};

}  // namespace zcproxy
