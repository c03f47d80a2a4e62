#include "zcproxy/log_limiter.hpp"

#include <catch2/catch.hpp>
#include <cstdint>

using zcproxy::log_limiter;

TEST_CASE("log_limiter: the first lines of a kind are written, the rest counted and then told",
          "[log]") {
  log_limiter limit(3);
  const auto t0 = log_limiter::clock::time_point{} + std::chrono::hours(1);
  std::uint64_t left_out = 99;
  for (unsigned i = 0; i < log_limiter::burst; ++i) {
    CHECK(limit.admit(1, t0, left_out));
    CHECK(left_out == 0);
  }
  for (int i = 0; i < 1000; ++i)
    CHECK_FALSE(limit.admit(1, t0 + log_limiter::interval / 2, left_out));
  CHECK(left_out == 0);
  // Another kind, or another listener's limiter, is not held back by this flood.
  CHECK(limit.admit(2, t0, left_out));
  // The first line of a later interval is written, after the count of those left out.
  CHECK(limit.admit(1, t0 + log_limiter::interval, left_out));
  CHECK(left_out == 1000);
  // The count is told once; the new interval has its own burst.
  for (unsigned i = 1; i < log_limiter::burst; ++i) {
    CHECK(limit.admit(1, t0 + log_limiter::interval, left_out));
    CHECK(left_out == 0);
  }
  CHECK_FALSE(limit.admit(1, t0 + log_limiter::interval, left_out));
  // Much later, with a single line left out since: it is told.
  CHECK(limit.admit(1, t0 + 100 * log_limiter::interval, left_out));
  CHECK(left_out == 1);
  CHECK(limit.admit(1, t0 + 200 * log_limiter::interval, left_out));
  CHECK(left_out == 0);
}
