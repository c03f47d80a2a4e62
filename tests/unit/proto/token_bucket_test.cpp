#include "zcproxy/token_bucket.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>

using zcproxy::token_bucket;
using namespace std::chrono_literals;

namespace {

const token_bucket::time_point t0 = token_bucket::time_point{} + 1h;

// rate * t + burst, t in nanoseconds, in exact arithmetic (the results here fit 64 bits).
std::uint64_t max_moved(std::uint64_t rate, std::uint64_t elapsed_ns, std::uint64_t burst) {
  __extension__ using uint128 = unsigned __int128;
  return static_cast<std::uint64_t>(uint128(rate) * elapsed_ns / 1'000'000'000u + burst);
}

}  // namespace

TEST_CASE("token_bucket default burst is a tenth of a second and at least 64 KiB",
          "[token_bucket]") {
  CHECK(token_bucket::default_burst(1) == 65536);
  CHECK(token_bucket::default_burst(655360) == 65536);
  CHECK(token_bucket::default_burst(655370) == 65537);
  CHECK(token_bucket::default_burst(100'000'000) == 10'000'000);
  CHECK(token_bucket(1000).burst() == 65536);
  CHECK(token_bucket(100'000'000, 0).burst() == 10'000'000);
  CHECK(token_bucket(1000, 1).burst() == 1);
  constexpr std::uint64_t most = std::uint64_t{1} << 62;
  CHECK(token_bucket(1000, std::numeric_limits<std::uint64_t>::max()).burst() == most);
}

TEST_CASE("token_bucket starts full and refills at its rate up to the burst", "[token_bucket]") {
  token_bucket b(1000, 500);
  CHECK_FALSE(b.unlimited());
  CHECK(b.allowance(t0) == 500);
  b.consume(500);
  CHECK(b.allowance(t0) == 0);
  CHECK(b.allowance(t0 + 1ms) == 1);
  CHECK(b.allowance(t0 + 100ms) == 100);
  CHECK(b.allowance(t0 + 499ms) == 499);
  CHECK(b.allowance(t0 + 500ms) == 500);
  CHECK(b.allowance(t0 + 501ms) == 500);  // capped
  CHECK(b.allowance(t0 + 1h) == 500);     // a long idle still caps at the burst
  b.consume(200);
  CHECK(b.allowance(t0 + 1h) == 300);
  // Idle time while full is not banked: refilling starts from the last look.
  b.consume(300);
  CHECK(b.allowance(t0 + 1h + 250ms) == 250);
}

TEST_CASE("token_bucket carries fractions of a byte across frequent calls", "[token_bucket]") {
  token_bucket b(3, 100);  // 3 bytes per second: 1/3 byte per 111ms
  b.consume(b.allowance(t0));
  std::uint64_t moved = 0;
  auto now = t0;
  for (int i = 0; i < 10'000; ++i) {  // 10 s in 1 ms steps
    now += 1ms;
    auto n = b.allowance(now);
    b.consume(n);
    moved += n;
  }
  CHECK(moved == 30);  // exactly rate * 10 s: nothing lost to rounding

  token_bucket odd(1'000'000'007, 1);  // rate not a divisor of the tick rate
  odd.consume(odd.allowance(t0));
  std::uint64_t got = 0;
  now = t0;
  for (int i = 0; i < 1000; ++i) {
    now += 1ns;
    got += odd.allowance(now);
    odd.consume(odd.allowance(now));
  }
  CHECK(got == 1000);  // 1.000000007 bytes per ns, burst 1: one byte each step
}

TEST_CASE("token_bucket over simulated time moves at most rate times t plus burst",
          "[token_bucket]") {
  const std::uint64_t rate = GENERATE(1ull, 1000ull, 65536ull, 10'000'000ull, 1'000'000'007ull);
  const std::uint64_t burst = GENERATE(0ull, 1ull, 4096ull, 1ull << 20);
  const std::uint64_t chunk = GENERATE(1ull, 1500ull, 65536ull);
  CAPTURE(rate, burst, chunk);
  token_bucket b(rate, burst);
  const auto cap = b.burst();
  std::uint32_t lcg = 12345;
  auto next = [&] { return lcg = lcg * 1664525u + 1013904223u; };

  SECTION("a greedy sender polling at uneven intervals") {
    auto now = t0;
    b.allowance(t0);  // the bucket's clock starts with the sender's
    std::uint64_t moved = 0;
    for (int i = 0; i < 2000; ++i) {
      now += std::chrono::microseconds(next() % 5000);
      auto n = std::min(b.allowance(now), chunk);
      b.consume(n);
      moved += n;
      auto elapsed_ns = std::uint64_t(std::chrono::nanoseconds(now - t0).count());
      // moved <= rate * t + burst, in exact arithmetic
      REQUIRE(moved <= max_moved(rate, elapsed_ns, cap));
    }
  }
  SECTION("a sender that sleeps exactly wait_for between writes") {
    auto now = t0;
    std::uint64_t moved = 0;
    for (int i = 0; i < 500; ++i) {
      const std::uint64_t want = chunk;
      now += b.wait_for(want, now);
      auto n = std::min(b.allowance(now), want);
      REQUIRE(n >= std::min(want, cap));  // wait_for waited long enough
      b.consume(n);
      moved += n;
      auto elapsed_ns = std::uint64_t(std::chrono::nanoseconds(now - t0).count());
      REQUIRE(moved <= max_moved(rate, elapsed_ns, cap));
      // ...and not much longer: the rate is reached to within one step's rounding.
      REQUIRE(moved + std::min(want, cap) + 1 >= max_moved(rate, elapsed_ns, 0));
    }
  }
}

TEST_CASE("token_bucket wait_for is exact", "[token_bucket]") {
  token_bucket b(1000, 1000);
  CHECK(b.wait_for(1000, t0) == 0ns);  // starts full
  CHECK(b.wait_for(0, t0) == 0ns);
  b.consume(1000);
  CHECK(b.wait_for(0, t0) == 0ns);
  CHECK(b.wait_for(100, t0) == 100ms);
  CHECK(b.wait_for(1, t0) == 1ms);
  CHECK(b.wait_for(5000, t0) == 1s);  // capped at the burst: more can never be there
  CHECK(b.allowance(t0 + 100ms - 1ns) == 99);
  CHECK(b.wait_for(100, t0 + 100ms - 1ns) == 1ns);
  CHECK(b.allowance(t0 + 100ms) == 100);
  CHECK(b.wait_for(100, t0 + 100ms) == 0ns);
  // A debt (spent past the allowance) is repaid first.
  b.consume(600);  // 100 - 600: 500 owed
  CHECK(b.allowance(t0 + 100ms) == 0);
  CHECK(b.wait_for(100, t0 + 100ms) == 600ms);
  CHECK(b.allowance(t0 + 600ms) == 0);
  CHECK(b.allowance(t0 + 700ms) == 100);

  // For many rates and wants: at now + wait the tokens are there, one tick earlier they are not.
  for (std::uint64_t rate :
       {1ull, 3ull, 7ull, 1000ull, 123457ull, 1'000'000'000ull, 3'000'000'001ull}) {
    for (std::uint64_t want : {1ull, 2ull, 999ull, 65536ull, 1ull << 30}) {
      CAPTURE(rate, want);
      token_bucket tb(rate, 65536);
      tb.consume(tb.allowance(t0) + 17);  // empty, with a small debt
      auto now = t0 + 4ns;                // a carried fraction of a byte, for most rates
      tb.allowance(now);
      auto wait = tb.wait_for(want, now);
      auto need = std::min<std::uint64_t>(want, 65536);
      REQUIRE(wait > 0ns);
      token_bucket early = tb;
      CHECK(early.allowance(now + wait - token_bucket::duration(1)) < need);
      CHECK(tb.allowance(now + wait) >= need);
    }
  }
}

TEST_CASE("token_bucket wait_for saturates instead of overflowing", "[token_bucket]") {
  token_bucket slow(1, std::uint64_t{1} << 62);
  slow.consume(slow.allowance(t0));
  CHECK(slow.wait_for(std::uint64_t{1} << 62, t0) == token_bucket::duration::max());
  token_bucket fast(std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1} << 62);
  fast.allowance(t0);
  fast.consume(std::numeric_limits<std::uint64_t>::max());  // debt clamps at -2^62
  CHECK(fast.allowance(t0 + 1s) == std::uint64_t{1} << 62);
}

TEST_CASE("token_bucket starts its clock at the first time it is given", "[token_bucket]") {
  token_bucket b(1000, 1000);
  b.consume(1000);  // before any time: spent, nothing accrues for the time before t0
  CHECK(b.allowance(t0) == 0);
  CHECK(b.allowance(t0 + 100ms) == 100);
  token_bucket w(1000, 1000);
  w.consume(1000);
  CHECK(w.wait_for(10, t0) == 10ms);
}

TEST_CASE("token_bucket ignores time going backwards", "[token_bucket]") {
  token_bucket b(1000, 1000);
  b.consume(b.allowance(t0));
  CHECK(b.allowance(t0 + 500ms) == 500);
  CHECK(b.allowance(t0 + 100ms) == 500);  // earlier: no change, nothing taken back
  CHECK(b.allowance(t0 + 600ms) == 600);  // measured from the latest time seen
}

TEST_CASE("token_bucket with rate 0 is unlimited", "[token_bucket]") {
  token_bucket b(0);
  CHECK(b.unlimited());
  constexpr auto all = std::numeric_limits<std::uint64_t>::max();
  CHECK(b.allowance(t0) == all);
  b.consume(all);
  b.consume(1ull << 40);
  CHECK(b.allowance(t0) == all);
  CHECK(b.wait_for(all, t0) == 0ns);
  CHECK(b.wait_for(1, t0 - 1h) == 0ns);
  token_bucket with_burst(0, 10);  // the burst is ignored
  CHECK(with_burst.allowance(t0) == all);
}
