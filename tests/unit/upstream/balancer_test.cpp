#include "zcproxy/balancer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using zcproxy::balance_policy;
using zcproxy::balancer;

namespace {

std::vector<balancer::endpoint> endpoints(std::vector<unsigned> weights) {
  std::vector<balancer::endpoint> out;
  for (std::size_t i = 0; i < weights.size(); ++i)
    out.push_back({"10.0.0." + std::to_string(i) + ":80", weights[i]});
  return out;
}

std::vector<std::uint8_t> all_usable(std::size_t n) {
  return std::vector<std::uint8_t>(n, 1);
}

std::uint64_t client(int c) {
  return balancer::hash_client("192.168." + std::to_string(c / 256) + "." +
                               std::to_string(c % 256));
}

constexpr std::array all_policies{balance_policy::round_robin, balance_policy::least_conn,
                                  balance_policy::random, balance_policy::source_hash};

// Each endpoint's share of `counts` is within 5% (relative) of weight / sum(weights).
void check_shares(const std::vector<long>& counts, const std::vector<unsigned>& weights) {
  long total = 0, weight_sum = 0;
  for (auto c : counts) total += c;
  for (auto w : weights) weight_sum += w;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    double expected = double(total) * weights[i] / weight_sum;
    CAPTURE(i, counts[i], expected);
    CHECK(std::abs(counts[i] - expected) <= 0.05 * expected);
  }
}

// The key each of `clients` clients lands on.
std::vector<std::string> mapping(balancer& b, const std::vector<balancer::endpoint>& eps,
                                 std::span<const std::uint8_t> usable, int clients) {
  std::vector<std::string> keys;
  for (int c = 0; c < clients; ++c) keys.push_back(eps[*b.pick(usable, client(c))].key);
  return keys;
}

}  // namespace

TEST_CASE("balancer: every policy's shares follow weights 1 2 3 4", "[balancer]") {
  const std::vector<unsigned> weights{1, 2, 3, 4};
  for (auto policy : all_policies) {
    CAPTURE(zcproxy::to_string(policy));
    balancer b(policy, endpoints(weights));
    auto usable = all_usable(4);
    std::vector<long> counts(4, 0);
    for (int n = 0; n < 100000; ++n) {
      auto i = b.pick(usable, client(n));  // a distinct client each time
      REQUIRE(i);
      ++counts[*i];
      b.started(*i);  // never ended: load accumulates, least_conn and random must follow weights
    }
    check_shares(counts, weights);
    if (policy == balance_policy::round_robin)
      CHECK(counts == std::vector<long>{10000, 20000, 30000, 40000});
  }
}

TEST_CASE("balancer: round_robin with equal weights cycles exactly", "[balancer]") {
  balancer b(balance_policy::round_robin, endpoints({1, 1, 1}));
  auto usable = all_usable(3);
  for (std::size_t n = 0; n < 30; ++n) CHECK(b.pick(usable) == n % 3);
}

TEST_CASE("balancer: round_robin spreads a heavy endpoint's turns as nginx does", "[balancer]") {
  balancer b(balance_policy::round_robin, endpoints({5, 1, 1}));
  auto usable = all_usable(3);
  std::vector<std::size_t> seq;
  for (int n = 0; n < 14; ++n) seq.push_back(*b.pick(usable));
  CHECK(seq == std::vector<std::size_t>{0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0});
}

TEST_CASE("balancer: round_robin skips unusable endpoints", "[balancer]") {
  balancer b(balance_policy::round_robin, endpoints({1, 1, 1, 1}));
  const std::vector<std::uint8_t> usable{1, 0, 1, 1};
  for (int round = 0; round < 5; ++round) {
    CHECK(b.pick(usable) == 0u);
    CHECK(b.pick(usable) == 2u);
    CHECK(b.pick(usable) == 3u);
  }
}

TEST_CASE("balancer: no usable endpoint gives nullopt, one usable is always chosen", "[balancer]") {
  for (auto policy : all_policies) {
    CAPTURE(zcproxy::to_string(policy));
    balancer b(policy, endpoints({4, 3, 2, 1}));
    const std::vector<std::uint8_t> none{0, 0, 0, 0}, only_last{0, 0, 0, 1};
    CHECK_FALSE(b.pick(none, client(1)));
    for (int n = 0; n < 1000; ++n) {
      auto i = b.pick(only_last, client(n));
      REQUIRE(i == 3u);
      b.started(*i);
    }
  }
}

TEST_CASE("balancer: bad weights are refused, and no endpoints give no pick", "[balancer]") {
  for (auto policy : all_policies) {
    balancer none(policy, {});
    CHECK_FALSE(none.pick({}, client(1)));
  }
  CHECK_THROWS_AS(balancer(balance_policy::random, endpoints({1, 0})), std::invalid_argument);
  CHECK_THROWS_AS(balancer(balance_policy::random, endpoints({257})), std::invalid_argument);
}

TEST_CASE("balancer: a weight set at run time takes effect for the picks that follow",
          "[balancer]") {
  for (auto policy : all_policies) {
    CAPTURE(zcproxy::to_string(policy));
    balancer b(policy, endpoints({1, 1}));
    auto usable = all_usable(2);
    b.set_weight(1, 3);
    CHECK(b.weight(0) == 1);
    CHECK(b.weight(1) == 3);
    std::vector<long> counts(2);
    for (int i = 0; i < 40000; ++i) {
      const auto pick = *b.pick(usable, client(i));
      ++counts[pick];
      b.started(pick);  // never ended: least_conn and random weigh the load by weight
    }
    check_shares(counts, {1, 3});
    CHECK_THROWS_AS(b.set_weight(0, 0), std::invalid_argument);
    CHECK_THROWS_AS(b.set_weight(0, 257), std::invalid_argument);
    CHECK(b.weight(0) == 1);
  }
  // round_robin plays the new cycle exactly: 1:3 in every 4 turns.
  balancer rr(balance_policy::round_robin, endpoints({1, 1}));
  auto usable = all_usable(2);
  rr.set_weight(0, 3);
  std::vector<long> counts(2);
  for (int i = 0; i < 400; ++i) ++counts[*rr.pick(usable)];
  CHECK(counts == std::vector<long>{300, 100});
}

TEST_CASE("balancer: weights changed while threads pick never give a bad pick", "[balancer]") {
  for (auto policy : all_policies) {
    CAPTURE(zcproxy::to_string(policy));
    balancer b(policy, endpoints({1, 2, 3}));
    std::atomic<bool> stop{false};
    std::thread changer([&] {
      for (unsigned w = 1; !stop; w = w % 256 + 1) b.set_weight(w % 3, w);  // each rewrites
    });
    auto usable = all_usable(3);
    usable[1] = 0;
    bool bad = false;
    for (int i = 0; i < 200000; ++i) {
      const auto pick = b.pick(usable, client(i));
      bad |= !pick || *pick == 1;
    }
    stop = true;
    changer.join();
    CHECK_FALSE(bad);
  }
}

TEST_CASE("balancer: least_conn prefers the least loaded per unit of weight", "[balancer]") {
  auto usable = all_usable(3);
  SECTION("equal weights: the least loaded, and idle ones take turns") {
    balancer b(balance_policy::least_conn, endpoints({1, 1, 1}));
    CHECK(b.pick(usable) == 0u);
    CHECK(b.pick(usable) == 1u);
    CHECK(b.pick(usable) == 2u);
    b.started(0), b.started(0), b.started(1);
    for (int n = 0; n < 5; ++n) CHECK(b.pick(usable) == 2u);
    b.started(2), b.started(2), b.started(2);  // loads 2 1 3
    CHECK(b.pick(usable) == 1u);
    b.ended(0), b.ended(0);  // loads 0 1 3: ended() frees load
    CHECK(b.pick(usable) == 0u);
    CHECK(b.active(0) == 0);
    CHECK(b.active(2) == 3);
  }
  SECTION("weights: 3 connections on weight 3 weigh less than 2 on weight 1") {
    balancer b(balance_policy::least_conn, endpoints({1, 3, 1}));
    b.started(0), b.started(0);
    b.started(1), b.started(1), b.started(1);
    b.started(2), b.started(2), b.started(2);
    for (int n = 0; n < 5; ++n) CHECK(b.pick(usable) == 1u);  // 3/3 < 2/1 < 3/1
    b.started(1), b.started(1), b.started(1), b.started(1);   // 7/3 > 2/1
    CHECK(b.pick(usable) == 0u);
    CHECK(b.pick(std::vector<std::uint8_t>{0, 1, 1}) == 1u);  // 7/3 < 3/1
  }
}

TEST_CASE("balancer: random picks the less loaded of two draws", "[balancer]") {
  // Endpoint 0 is loaded: it wins only when both draws land on it, 1 time in 4.
  balancer b(balance_policy::random, endpoints({1, 1}));
  for (int n = 0; n < 1000; ++n) b.started(0);
  auto usable = all_usable(2);
  int on_idle = 0;
  for (int n = 0; n < 100000; ++n) on_idle += b.pick(usable) == 1u;
  CHECK(on_idle / 100000.0 == Approx(0.75).margin(0.01));
}

TEST_CASE("balancer: source_hash sends a client to the same endpoint every time", "[balancer]") {
  auto eps = endpoints({1, 2, 3, 4, 5});
  balancer a(balance_policy::source_hash, eps), b(balance_policy::source_hash, eps);
  auto usable = all_usable(5);
  for (int c = 0; c < 1000; ++c) {
    auto first = a.pick(usable, client(c));
    for (int n = 0; n < 5; ++n) REQUIRE(a.pick(usable, client(c)) == first);
    REQUIRE(b.pick(usable, client(c)) == first);  // another instance agrees
  }
  CHECK(balancer::hash_client("10.1.2.3") != balancer::hash_client("10.1.2.4"));
  // Another process, another build, another machine agrees too: the hash and the picks depend on
  // nothing but their inputs (no seed, no address, no std::hash). These values were computed once
  // and are fixed: a change that alters them moves every source_hash client of a fleet whose
  // proxies run different versions.
  CHECK(balancer::hash_client("10.1.2.3") == 0xbedf7c9a597ef9aeu);
  CHECK(balancer::hash_client(std::string("\x0a\x01\x02\x03", 4)) == 0xe995b7579a06dab2u);
  const std::vector<std::size_t> fixed{4, 4, 4, 4, 3, 3, 2, 2, 4, 4, 1, 3, 0, 4, 2, 3};
  for (int c = 0; c < 16; ++c)
    CHECK(a.pick(usable, balancer::hash_client("192.168.0." + std::to_string(c))) == fixed[c]);
}

TEST_CASE("balancer: source_hash moves only the clients it must", "[balancer]") {
  constexpr int clients = 100000;
  auto ten = endpoints({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  balancer b10(balance_policy::source_hash, ten);
  const auto before = mapping(b10, ten, all_usable(10), clients);

  SECTION("removing one moves exactly its clients, about 1/10") {
    auto nine = ten;
    const auto removed = nine[3].key;
    nine.erase(nine.begin() + 3);
    balancer b9(balance_policy::source_hash, nine);
    const auto after = mapping(b9, nine, all_usable(9), clients);
    int moved = 0, were_on_removed = 0, moved_wrongly = 0;
    for (int c = 0; c < clients; ++c) {
      were_on_removed += before[c] == removed;
      if (before[c] != after[c]) ++moved, moved_wrongly += before[c] != removed;
    }
    CHECK(moved_wrongly == 0);
    CHECK(moved == were_on_removed);
    CHECK(moved / double(clients) == Approx(0.1).margin(0.005));
  }
  SECTION("adding an 11th moves about 1/11, all of them to it") {
    auto eleven = ten;
    eleven.push_back({"10.0.0.10:80", 1});
    balancer b11(balance_policy::source_hash, eleven);
    const auto after = mapping(b11, eleven, all_usable(11), clients);
    int moved = 0, moved_elsewhere = 0;
    for (int c = 0; c < clients; ++c)
      if (before[c] != after[c]) ++moved, moved_elsewhere += after[c] != eleven[10].key;
    CHECK(moved_elsewhere == 0);
    CHECK(moved / double(clients) == Approx(1 / 11.0).margin(0.005));
  }
  SECTION("an unusable endpoint's clients move, no one else's") {
    auto usable = all_usable(10);
    usable[7] = 0;
    const auto after = mapping(b10, ten, usable, clients);
    int moved = 0, moved_wrongly = 0, were_on_7 = 0;
    for (int c = 0; c < clients; ++c) {
      were_on_7 += before[c] == ten[7].key;
      if (before[c] != after[c]) ++moved, moved_wrongly += before[c] != ten[7].key;
    }
    CHECK(moved_wrongly == 0);
    CHECK(moved == were_on_7);
    CHECK(moved / double(clients) == Approx(0.1).margin(0.005));
  }
}

TEST_CASE("balancer: concurrent picks on round_robin and least_conn add up", "[balancer]") {
  constexpr int threads = 4, picks = 50000;
  const std::vector<unsigned> weights{1, 2, 3, 4};
  auto usable = all_usable(4);
  // Each thread counts its own picks; summed after join.
  auto run = [&](balancer& b, bool track) {
    std::vector<std::vector<long>> per_thread(threads, std::vector<long>(4, 0));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (int n = 0; n < picks; ++n) {
          auto i = *b.pick(usable);
          ++per_thread[t][i];
          if (track) b.started(i);
        }
      });
    for (auto& th : pool) th.join();
    std::vector<long> counts(4, 0);
    for (auto& c : per_thread)
      for (int i = 0; i < 4; ++i) counts[i] += c[i];
    return counts;
  };

  SECTION("round_robin: every turn of the sequence is taken exactly once") {
    balancer b(balance_policy::round_robin, endpoints(weights));
    CHECK(run(b, false) == std::vector<long>{20000, 40000, 60000, 80000});
  }
  SECTION("least_conn: loads match the picks, follow weights, and all end at zero") {
    balancer b(balance_policy::least_conn, endpoints(weights));
    auto counts = run(b, true);
    for (int i = 0; i < 4; ++i) CHECK(b.active(i) == counts[i]);
    check_shares(counts, weights);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (int i = 0; i < 4; ++i)
          for (long n = 0; n < counts[i] / threads + (t < counts[i] % threads); ++n) b.ended(i);
      });
    for (auto& th : pool) th.join();
    for (int i = 0; i < 4; ++i) CHECK(b.active(i) == 0);
  }
}

// Slow start and source_hash's bounded loads, on an injected clock: exact, no sleeping.

using namespace std::chrono_literals;
using clock_type = balancer::clock;

namespace {

const clock_type::time_point t0 = clock_type::time_point(1000s);

// Endpoint 1's share of `picks` picks (distinct clients, connections that end at once) at `now`.
double share_of_1(balancer& b, clock_type::time_point now, int picks = 20000) {
  const auto usable = all_usable(b.size());
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
