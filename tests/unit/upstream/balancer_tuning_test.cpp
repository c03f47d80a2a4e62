// The balancer's slow start and source_hash's bounded loads, on an injected clock: exact, no
// sleeping.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "zcproxy/balancer.hpp"

using namespace std::chrono_literals;
using zcproxy::balance_policy;
using zcproxy::balancer;
using clock_type = balancer::clock;

namespace {

std::vector<balancer::endpoint> endpoints(std::vector<unsigned> weights) {
  std::vector<balancer::endpoint> out;
  for (std::size_t i = 0; i < weights.size(); ++i)
    out.push_back({"10.0.0." + std::to_string(i) + ":80", weights[i]});
  return out;
}

std::uint64_t client(int c) {
  return balancer::hash_client("192.168." + std::to_string(c / 256) + "." +
                               std::to_string(c % 256));
}

constexpr std::array all_policies{balance_policy::round_robin, balance_policy::least_conn,
                                  balance_policy::random, balance_policy::source_hash};

const clock_type::time_point t0 = clock_type::time_point(1000s);

// Endpoint 1's share of `picks` picks (distinct clients, connections that end at once) at `now`.
double share_of_1(balancer& b, clock_type::time_point now, int picks = 20000) {
  std::vector<std::uint8_t> usable(b.size(), 1);
  int on_1 = 0;
  for (int n = 0; n < picks; ++n) on_1 += b.pick(usable, client(n), now) == 1u;
  return on_1 / double(picks);
}

}  // namespace

TEST_CASE("balancer: slow start ramps a new endpoint's share from ~0 to its weight's",
          "[balancer][slow_start]") {
  for (auto policy : all_policies) {
    CAPTURE(zcproxy::to_string(policy));
    balancer b(policy, endpoints({1, 1}), {.slow_start = 10s});
    b.came_up(1, t0);
    // With a ramp f, endpoint 1 weighs f: f / (1 + f) of the picks. least_conn between idle
    // endpoints admits it with probability f and it then wins half the ties: f / 2. Either way
    // the share grows from ~0 to 1/2 (its weight's), and with a 5% sample error at most.
    double last = -1;
    for (double f : {0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0}) {
      CAPTURE(f);
      const auto now = t0 + std::chrono::duration_cast<clock_type::duration>(10s * f);
      const double ramp = std::min(f, 1.0);
      const double expected = policy == balance_policy::least_conn ? ramp / 2 : ramp / (1 + ramp);
      const double share = share_of_1(b, now);
      CHECK(share == Approx(expected).margin(0.02));
      CHECK(share > last);
      last = std::max(last, share - 0.02);  // rises window by window (a flat tail may jitter)
      CHECK(b.effective_weight(1, now) == Approx(std::max(ramp, 1.0 / 1024)).margin(0.001));
      CHECK(b.effective_weight(0, now) == 1.0);
      CHECK(b.ramping_since(1, now).has_value() == (f < 1));
    }
  }
}

TEST_CASE("balancer: slow start follows the endpoint's weight, and ends in the policy's own order",
          "[balancer][slow_start]") {
  balancer b(balance_policy::round_robin, endpoints({1, 3}), {.slow_start = 8s});
  b.came_up(1, t0);
  // Half way, endpoint 1 weighs 1.5 against 1: 60% of the picks.
  CHECK(share_of_1(b, t0 + 4s) == Approx(0.6).margin(0.02));
  CHECK(b.effective_weight(1, t0 + 4s) == Approx(1.5).margin(0.01));
  // After the ramp: the smooth sequence itself, exactly as without slow start (whole cycles of
  // 1 + 3 turns give exact counts).
  std::vector<std::uint8_t> usable(2, 1);
  std::array<int, 2> counts{};
  for (int n = 0; n < 400; ++n) ++counts[*b.pick(usable, 0, t0 + 8s)];
  CHECK(counts == std::array<int, 2>{100, 300});
  CHECK(!b.ramping_since(1, t0 + 8s));
}

TEST_CASE("balancer: without slow_start nothing ramps, and endpoints start warm",
          "[balancer][slow_start]") {
  balancer off(balance_policy::least_conn, endpoints({1, 1}));
  off.came_up(1, t0);
  CHECK(share_of_1(off, t0 + 1ms) == Approx(0.5).margin(0.01));
  CHECK(off.effective_weight(1, t0) == 1.0);
  CHECK(!off.ramping_since(1, t0));
  balancer on(balance_policy::least_conn, endpoints({1, 1}), {.slow_start = 10s});
  CHECK(share_of_1(on, t0) == Approx(0.5).margin(0.01));  // no came_up: warm from the start
}

TEST_CASE("balancer: least_conn under load gives a ramping endpoint its share, not every pick",
          "[balancer][slow_start]") {
  balancer b(balance_policy::least_conn, endpoints({1, 1}), {.slow_start = 10s});
  for (int n = 0; n < 1000; ++n) b.started(0);
  b.came_up(1, t0);
  std::vector<std::uint8_t> usable(2, 1);
  // Without slow start endpoint 1 would take the next 1,000 picks. At 10% of its ramp it takes
  // about 1 in 10 (it is a candidate that often), while its load per unit of weight stays under
  // 0's.
  int on_1 = 0;
  for (int n = 0; n < 1000; ++n) {
    auto i = *b.pick(usable, 0, t0 + 1s);
    b.started(i);
    on_1 += i == 1;
  }
  CHECK(on_1 == Approx(100).margin(30));
  // Once warm, it catches up: the next picks go to it until the loads are even.
  for (int n = 0; n < 200; ++n) {
    REQUIRE(b.pick(usable, 0, t0 + 10s) == 1u);
    b.started(1);
  }
}

TEST_CASE("balancer: source_hash with hash_balance_factor picks as before while nothing is over",
          "[balancer][hash_balance_factor]") {
  // Two proxies, endpoints in other orders, one with the factor: the same endpoint per client.
  auto eps = endpoints({1, 2, 3, 1, 1});
  auto reversed = eps;
  std::reverse(reversed.begin(), reversed.end());
  balancer plain(balance_policy::source_hash, eps);
  balancer a(balance_policy::source_hash, eps, {.hash_balance_factor = 150});
  balancer b(balance_policy::source_hash, reversed, {.hash_balance_factor = 150});
  std::vector<std::uint8_t> usable(5, 1);
  // Loads in proportion to the weights, as a balanced fleet has them: nobody is over.
  for (std::size_t i = 0; i < 5; ++i)
    for (unsigned n = 0; n < 10 * eps[i].weight; ++n) a.started(i), b.started(4 - i);
  for (int c = 0; c < 2000; ++c) {
    const auto& key = eps[*plain.pick(usable, client(c))].key;
    REQUIRE(eps[*a.pick(usable, client(c))].key == key);
    REQUIRE(reversed[*b.pick(usable, client(c))].key == key);
  }
}

TEST_CASE("balancer: hash_balance_factor spreads one hot client along its rendezvous order",
          "[balancer][hash_balance_factor]") {
  constexpr unsigned factor = 150;
  auto eps = endpoints({1, 1, 2, 1});  // weights 1 1 2 1: the bound is per unit of weight
  const std::uint64_t hot = client(7);
  std::vector<std::uint8_t> usable(4, 1);

  SECTION("without it, every connection of the client goes to one endpoint") {
    balancer b(balance_policy::source_hash, eps);
    const auto first = b.pick(usable, hot);
    for (int n = 0; n < 500; ++n) {
      REQUIRE(b.pick(usable, hot) == first);
      b.started(*first);
    }
  }
  SECTION("with it, no endpoint goes over factor% of the mean per unit of weight") {
    balancer b(balance_policy::source_hash, eps, {.hash_balance_factor = factor});
    for (int total = 0; total < 500; ++total) {
      const auto i = *b.pick(usable, hot);
      // What the pick must have chosen: the first on the client's order (the plain pick with
      // those before it taken out) whose load is under its bound.
      balancer order(balance_policy::source_hash, eps);
      std::vector<std::uint8_t> left(4, 1);
      std::size_t expected = 0;
      for (;;) {
        expected = *order.pick(left, hot);
        const double bound = (total + 1) * factor / 100.0 * eps[expected].weight / 5;
        if (b.active(expected) < std::ceil(bound)) break;
        left[expected] = 0;
      }
      REQUIRE(i == expected);
      b.started(i);
      for (std::size_t k = 0; k < 4; ++k)
        REQUIRE(b.active(k) <= std::ceil((total + 1) * 1.5 * eps[k].weight / 5));
    }
    // The client's first choice is full (at its bound) and the rest spilled to the next ones.
    balancer order(balance_policy::source_hash, eps);
    const auto first = *order.pick(usable, hot);
    CHECK(b.active(first) >= 150 * eps[first].weight - 1);
    int used = 0;
    for (std::size_t k = 0; k < 4; ++k) used += b.active(k) > 0;
    CHECK(used >= 2);
  }
}
