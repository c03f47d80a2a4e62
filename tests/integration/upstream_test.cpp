// Upstreams on real loopback backends: balancing policies, active and passive health, connect
// attempts, and the idle, duration and connect timeouts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "support/net.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// A backend that sends its name on accept, then echoes until EOF.
struct named_backend {
  explicit named_backend(std::string name, std::uint16_t port = 0)
      : server(
            [name](fd s) {
              send_all(s.get(), name.data(), name.size());
              char buf[4096];
              for (;;) {
                const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
                if (n <= 0) return;
                send_all(s.get(), buf, static_cast<std::size_t>(n));
              }
            },
            512, port) {}
  std::uint16_t port() const { return server.port(); }
  upstream_server server;
};

std::string ep(std::uint16_t port, unsigned weight = 1) {
  return "{ address: \"127.0.0.1:" + std::to_string(port) +
         "\", weight: " + std::to_string(weight) + " }";
}

// One listener on port 0 in front of upstream `app` with the given endpoints and extra keys.
zcproxy::config config_with(const std::string& endpoints, const std::string& upstream_keys = "",
                            const std::string& listener_keys = "") {
  return zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\n"
      "listeners:\n  - { name: test, bind: \"127.0.0.1:0\", upstream: app" +
          (listener_keys.empty() ? "" : ", " + listener_keys) +
          " }\n"
          "upstreams:\n  app:\n    endpoints: [" +
          endpoints + "]\n" +
          (upstream_keys.find("connect_timeout") == std::string::npos ? "    connect_timeout: 2s\n"
                                                                      : "") +
          upstream_keys,
      "test.yaml");
}

// Connect (from `from`, a 127.x.y.z address) and read the backend's name.
std::string name_of(int s, std::size_t len = 1) {
  const bytes b = recv_exact(s, len);
  return std::string(b.begin(), b.end());
}

// Which backend one new connection reaches.
std::string reached(std::uint16_t port) {
  fd c = connect_to(port);
  return name_of(c.get());
}

const zcproxy::endpoint_stats& endpoint_at(const zcproxy::server::stats& s, std::uint16_t port) {
  for (const auto& e : s.endpoints)
    if (e.at.port == port) return e;
  FAIL("no endpoint on port " << port);
  throw;  // unreachable
}

}  // namespace

TEST_CASE("upstream: weighted round_robin spreads connections by weight across backends",
          "[upstream][integration]") {
  named_backend a("a"), b("b");
  proxy p(config_with(ep(a.port(), 1) + ", " + ep(b.port(), 3)));
  std::map<std::string, int> got;
  for (int i = 0; i < 40; ++i) ++got[reached(p.port())];
  CHECK(got["a"] == 10);
  CHECK(got["b"] == 30);
}

TEST_CASE("upstream: least_conn sends a new connection to the backend with fewer open ones",
          "[upstream][integration]") {
  named_backend a("a"), b("b");
  proxy p(config_with(ep(a.port()) + ", " + ep(b.port()), "    balance: least_conn\n"));
  std::vector<fd> on_a, on_b;
  for (int i = 0; i < 4; ++i) {
    fd c = connect_to(p.port());
    (name_of(c.get()) == "a" ? on_a : on_b).push_back(std::move(c));
  }
  CHECK(on_a.size() == 2);  // equal load is shared
  CHECK(on_b.size() == 2);
  on_a.clear();  // a's connections end; b still has two
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 2; }));
  CHECK(endpoint_at(p.srv->snapshot(), a.port()).active == 0);
  CHECK(endpoint_at(p.srv->snapshot(), b.port()).active == 2);
  for (int i = 0; i < 2; ++i) {
    fd c = connect_to(p.port());
    CHECK(name_of(c.get()) == "a");
    on_a.push_back(std::move(c));
  }
}

TEST_CASE("upstream: random (power of two choices) uses every backend", "[upstream][integration]") {
  named_backend a("a"), b("b");
  proxy p(config_with(ep(a.port()) + ", " + ep(b.port()), "    balance: random\n"));
  std::map<std::string, int> got;
  for (int i = 0; i < 40; ++i) ++got[reached(p.port())];
  CHECK(got["a"] >= 5);  // binomial(40, 1/2): below 5 has odds under 1e-7
  CHECK(got["b"] >= 5);
}

TEST_CASE("upstream: source_hash keeps each client address on one backend and spreads clients",
          "[upstream][integration]") {
  named_backend a("a"), b("b"), c("c");
  proxy p(config_with(ep(a.port()) + ", " + ep(b.port()) + ", " + ep(c.port()),
                      "    balance: source_hash\n"));
  std::map<std::string, int> clients_per_backend;
  for (int host = 2; host < 32; ++host) {
    const std::string from = "127.0.0." + std::to_string(host);
    std::string first;
    for (int i = 0; i < 3; ++i) {
      fd s = connect_from(from.c_str(), p.port());
      const std::string name = name_of(s.get());
      if (i == 0) first = name;
      CHECK(name == first);  // the same client, the same backend
    }
    ++clients_per_backend[first];
  }
  CHECK(clients_per_backend.size() == 3);  // 30 clients over 3 backends: every one gets some
}

TEST_CASE("upstream: health checks take a dead backend out and bring it back when it returns",
          "[upstream][integration][health]") {
  auto a = std::make_unique<named_backend>("a");
  const std::uint16_t a_port = a->port();
  named_backend b("b");
  proxy p(config_with(ep(a_port) + ", " + ep(b.port()),
                      "    health_check: { interval: 100ms, timeout: 100ms, rise: 2, fall: 2 }\n"));
  CHECK(endpoint_at(p.srv->snapshot(), a_port).healthy);

  a.reset();  // killed: connects to its port are refused
  REQUIRE(wait_until([&] { return !endpoint_at(p.srv->snapshot(), a_port).healthy; }, 10s));
  CHECK(endpoint_at(p.srv->snapshot(), b.port()).healthy);
  for (int i = 0; i < 6; ++i) CHECK(reached(p.port()) == "b");

  a = std::make_unique<named_backend>("a", a_port);  // back on its port
  REQUIRE(wait_until([&] { return endpoint_at(p.srv->snapshot(), a_port).healthy; }, 10s));
  std::map<std::string, int> got;
  for (int i = 0; i < 6; ++i) ++got[reached(p.port())];
  CHECK(got["a"] == 3);  // round-robin again over both
  CHECK(got["b"] == 3);
}

TEST_CASE("upstream: a health check can send a request and require the reply's prefix",
          "[upstream][integration][health]") {
  auto replying = [](const char* reply) {
    return [reply](fd s) {
      char buf[4];
      if (::recv(s.get(), buf, sizeof buf, MSG_WAITALL) == 4) send_all(s.get(), reply, 4);
    };
  };
  upstream_server good(replying("PONG")), bad(replying("NOPE"));
  proxy p(config_with(ep(good.port()) + ", " + ep(bad.port()),
                      "    health_check: { interval: 100ms, timeout: 100ms, rise: 1, fall: 2, "
                      "send: PING, expect: PO }\n"));
  REQUIRE(wait_until([&] { return !endpoint_at(p.srv->snapshot(), bad.port()).healthy; }, 10s));
  // Several rounds later the good one is still up.
  const int before = good.accepted();
  REQUIRE(wait_until([&] { return good.accepted() >= before + 4; }, 10s));
  CHECK(endpoint_at(p.srv->snapshot(), good.port()).healthy);
}

TEST_CASE("upstream: max_fails ejects an endpoint for fail_timeout, so later connections skip it",
          "[upstream][integration][passive]") {
  blackhole hole;
  named_backend live("l");
  proxy p(config_with(ep(hole.port) + ", " + ep(live.port()),
                      "    connect_timeout: 300ms\n    max_fails: 1\n    fail_timeout: 30s\n"));
  auto t0 = clock_type::now();
  CHECK(reached(p.port()) == "l");  // tried the hole first, timed out, moved on
  CHECK(clock_type::now() - t0 >= 250ms);
  CHECK_FALSE(endpoint_at(p.srv->snapshot(), hole.port).usable);
  const auto tried = endpoint_at(p.srv->snapshot(), hole.port).connect_failures;
  for (int i = 0; i < 4; ++i) CHECK(reached(p.port()) == "l");
  // The ejected endpoint is not tried: no attempt on it timed out since.
  CHECK(endpoint_at(p.srv->snapshot(), hole.port).connect_failures == tried);
}

TEST_CASE("upstream: with every endpoint down the client is reset at once, no connect tried",
          "[upstream][integration][health]") {
  blackhole h1, h2;  // a connect to them would hang until connect_timeout
  proxy p(config_with(ep(h1.port) + ", " + ep(h2.port),
                      "    connect_timeout: 5s\n"
                      "    health_check: { interval: 50ms, timeout: 50ms, rise: 1, fall: 1 }\n"));
  REQUIRE(wait_until(
      [&] {
        auto s = p.srv->snapshot();
        return !endpoint_at(s, h1.port).healthy && !endpoint_at(s, h2.port).healthy;
      },
      10s));
  fd c = connect_to(p.port());
  const stream_end got = recv_to_end(c.get());
  CHECK(got.data.empty());
  CHECK(got.reset);
  // No connect was tried (it would have hung for connect_timeout): no_endpoint, no attempts.
  p.wait_sessions();
  CHECK(p.closed("no_endpoint") == 1);
  for (auto port : {h1.port, h2.port})
    CHECK(endpoint_at(p.srv->snapshot(), port).connect_failures == 0);
}

TEST_CASE("upstream: max_connect_attempts bounds the endpoints one connection tries",
          "[upstream][integration]") {
  named_backend live("l");
  const std::string eps =
      ep(dead_port()) + ", " + ep(dead_port()) + ", " + ep(dead_port()) + ", " + ep(live.port());
  SECTION("two attempts: the first two (refusing) endpoints, then the client is reset") {
    proxy p(config_with(eps, "    max_connect_attempts: 2\n"));
    fd c = connect_to(p.port());
    const stream_end got = recv_to_end(c.get());
    CHECK(got.data.empty());
    CHECK(got.reset);
    p.wait_sessions();
    CHECK(live.server.accepted_settled() == 0);
  }
  SECTION("by default every endpoint once: the fourth answers") {
    proxy p(config_with(eps));
    CHECK(reached(p.port()) == "l");
  }
}

TEST_CASE("upstream: idle_timeout closes a silent connection, traffic keeps one open",
          "[upstream][integration][timeout]") {
  named_backend b("b");
  // Timeouts are checked by a sweep every 100 ms: a silent connection ends between idle_timeout
  // and idle_timeout + 100 ms, and a margin for a loaded machine.
  proxy p(config_with(ep(b.port()), "", "idle_timeout: 2s"));
  SECTION("silent") {
    const auto t0 = clock_type::now();
    fd c = connect_to(p.port());
    CHECK(name_of(c.get()) == "b");
    const stream_end got = recv_to_end(c.get());
    CHECK(got.data.empty());
    const auto waited = clock_type::now() - t0;
    CHECK(waited >= 1900ms);
    CHECK(waited < 2s + 5s);
    p.wait_sessions();
    CHECK(p.closed("idle_timeout") == 1);
  }
  SECTION("a byte every 100 ms for 5 s (2.5 idle timeouts) keeps it open") {
    fd c = connect_to(p.port());
    CHECK(name_of(c.get()) == "b");
    const auto until = clock_type::now() + 5s;
    while (clock_type::now() < until) {
      send_all(c.get(), "x", 1);
      CHECK(name_of(c.get()) == "x");      // echoed: the connection is alive
      std::this_thread::sleep_for(100ms);  // the pace of the traffic, not a wait for an event
    }
  }
}

TEST_CASE("upstream: max_connection_duration ends a busy connection",
          "[upstream][integration][timeout]") {
  named_backend b("b");
  proxy p(config_with(ep(b.port()), "    max_connection_duration: 500ms\n"));
  fd c = connect_to(p.port());
  CHECK(name_of(c.get()) == "b");
  const auto t0 = clock_type::now();
  bool ended = false;
  while (!ended && clock_type::now() - t0 < 5s) {
    char x = 'x';
    if (::send(c.get(), &x, 1, MSG_NOSIGNAL) != 1) break;
    ended = ::recv(c.get(), &x, 1, 0) <= 0;
  }
  const auto lasted = clock_type::now() - t0;
  CHECK(lasted >= 400ms);
  CHECK(lasted < 3s);
}

TEST_CASE("upstream: a listener's connect_timeout overrides the upstream's",
          "[upstream][integration][timeout]") {
  blackhole hole;
  proxy p(config_with(ep(hole.port), "    connect_timeout: 10s\n", "connect_timeout: 300ms"));
  const auto t0 = clock_type::now();
  fd c = connect_to(p.port());
  const stream_end got = recv_to_end(c.get());
  CHECK(got.reset);
  const auto waited = clock_type::now() - t0;
  CHECK(waited >= 250ms);
  CHECK(waited < 3s);
}

TEST_CASE("upstream: a backend that accepts but never replies fails an expect check by timeout",
          "[upstream][integration][health]") {
  std::atomic<bool> done{false};
  upstream_server silent([&](fd) {
    wait_until([&] { return done.load(); }, 20s);  // holds the connection, says nothing
  });
  named_backend live("l");
  proxy p(config_with(ep(silent.port()) + ", " + ep(live.port()),
                      "    health_check: { interval: 100ms, timeout: 100ms, rise: 1, fall: 2, "
                      "send: PING, expect: PONG }\n"));
  CHECK(wait_until([&] { return !endpoint_at(p.srv->snapshot(), silent.port()).healthy; }, 10s));
  done = true;
}

TEST_CASE("upstream: with send_proxy, a health check can start with a PROXY header of its own",
          "[upstream][integration][health][proxy_protocol]") {
  // A backend that requires the header: "PROXY UNKNOWN\r\nPING" gets PONG, anything else NOPE.
  auto requiring = [](fd s) {
    const std::string want = "PROXY UNKNOWN\r\nPING";
    std::string got(want.size(), '\0');
    if (::recv(s.get(), got.data(), got.size(), MSG_WAITALL) != static_cast<ssize_t>(got.size()))
      return;
    send_all(s.get(), got == want ? "PONG" : "NOPE", 4);
  };
  upstream_server with(requiring), without(requiring);
  const std::string check =
      "{ interval: 100ms, timeout: 100ms, rise: 1, fall: 2, send: PING, "
      "expect: PONG";
  proxy p(zcproxy::load_config_string(
      "threads: 1\nlog: { level: warn, access_log: false }\n"
      "listeners:\n"
      "  - { name: a, bind: \"127.0.0.1:0\", upstream: with }\n"
      "  - { name: b, bind: \"127.0.0.1:0\", upstream: without }\n"
      "upstreams:\n"
      "  with: { endpoints: [" +
          ep(with.port()) + "], send_proxy: v1, health_check: " + check +
          ", send_proxy: true } }\n"
          "  without: { endpoints: [" +
          ep(without.port()) + "], send_proxy: v1, health_check: " + check + " } }\n",
      "hc.yaml"));
  // The check without the header fails; the one with it keeps passing.
  REQUIRE(wait_until([&] { return !endpoint_at(p.srv->snapshot(), without.port()).healthy; }, 10s));
  const int before = with.accepted();
  REQUIRE(wait_until([&] { return with.accepted() >= before + 4; }, 10s));
  CHECK(endpoint_at(p.srv->snapshot(), with.port()).healthy);
}

TEST_CASE("upstream: slow_start ramps an endpoint that comes up from ~0 to its share in 2 s",
          "[upstream][integration][slow_start]") {
  using namespace std::chrono_literals;
  for (const std::string policy : {"round_robin", "least_conn"}) {
    CAPTURE(policy);
    named_backend a("a"), b("b");
    proxy p(config_with(ep(a.port()) + ", " + ep(b.port()),
                        "    balance: " + policy + "\n    slow_start: 2s\n"));
    const auto b_at = endpoint_at(p.srv->snapshot(), b.port()).at;
    auto set_b = [&](zcproxy::endpoint_mode m) {
      REQUIRE(
          p.srv->control().update_endpoint("app", b_at, {.mode = m, .weight = std::nullopt}).what ==
          zcproxy::endpoint_update_result::status::applied);
    };
    set_b(zcproxy::endpoint_mode::maint);
    set_b(zcproxy::endpoint_mode::ready);  // comes up now
    const auto up = clock_type::now();
    // Six windows of 400 ms: five in the ramp, one after it. Round robin's b weighs f against
    // a's 1: f / (1 + f) of the picks, about .09 .23 .33 .41 .47 in the windows; least_conn
    // between idle backends f / 2: .05 .15 .25 .35 .45; then both 1/2. Without slow start it is
    // 1/2 from the first window on.
    std::vector<double> share;
    std::vector<double> effective;  // b's effective weight in /stats.json, mid-window
    for (int w = 1; w <= 6; ++w) {
      int on_b = 0, total = 0;
      bool sampled = false;
      while (clock_type::now() < up + w * 400ms) {
        on_b += reached(p.port()) == "b";
        ++total;
        p.wait_sessions();  // the last one ended: least_conn sees the backends idle
        if (!sampled && clock_type::now() >= up + w * 400ms - 200ms) {
          const double f =
              std::min(1.0, std::chrono::duration<double>(clock_type::now() - up).count() / 2);
          effective.push_back(endpoint_at(p.srv->snapshot(), b.port()).effective_weight - f);
          sampled = true;
        }
      }
      INFO("window " << w << ": " << on_b << " of " << total);
      REQUIRE(total >= 20);  // enough to judge a share
      share.push_back(on_b / double(total));
    }
    CAPTURE(share, effective);
    CHECK(share[0] < 0.25);  // ~0 at first, not 1/2
    CHECK(share[1] < 0.4);
    CHECK(share[3] > share[0] + 0.12);  // rising
    CHECK(share[4] > 0.3);              // nearly its weight by the end of the ramp
    CHECK(share[5] > 0.42);             // and at its weight from 2 s on
    CHECK(share[5] < 0.58);
    // The gauge follows the ramp (it was read at most a few ms after `f` was computed).
    for (double off_by : effective) CHECK(std::abs(off_by) < 0.05);
  }
}

TEST_CASE("upstream: hash_balance_factor keeps proxies agreeing, and spreads one hot client",
          "[upstream][integration][hash_balance_factor]") {
  named_backend a("a"), b("b"), c("c");
  const std::string keys = "    balance: source_hash\n    hash_balance_factor: 150\n";
  proxy one(config_with(ep(a.port()) + ", " + ep(b.port()) + ", " + ep(c.port()), keys));
  proxy two(config_with(ep(c.port()) + ", " + ep(a.port()) + ", " + ep(b.port()), keys));
  // Nothing overloaded (one connection at a time): every client reaches the same backend through
  // either proxy, whatever the order of the endpoints.
  std::map<std::string, std::string> backend_of;
  for (int host = 2; host < 32; ++host) {
    const std::string from = "127.0.0." + std::to_string(host);
    for (auto* p : {&one, &two}) {
      fd s = connect_from(from.c_str(), p->port());
      const std::string name = name_of(s.get());
      s = fd();
      p->wait_sessions();
      CHECK(backend_of.try_emplace(from, name).first->second == name);
    }
  }
  std::map<std::string, int> clients;
  for (const auto& [from, name] : backend_of) ++clients[name];
  CHECK(clients.size() == 3);

  // One client holds 30 connections: its backend takes up to 150% of the mean (15), the rest go
  // to the next on its order. Without the factor all 30 would go to one backend.
  const std::string hot_first = backend_of["127.0.0.2"];
  std::vector<fd> open;
  std::map<std::string, int> held;
  for (int n = 0; n < 30; ++n) {
    open.push_back(connect_from("127.0.0.2", one.port()));
    ++held[name_of(open.back().get())];
  }
  CAPTURE(held);
  CHECK(held[hot_first] == 15);
  for (const auto& [name, count] : held) CHECK(count <= 15);
  CHECK(held.size() >= 2);
}

TEST_CASE("upstream: slow_start ramps an endpoint whose health check passes again",
          "[upstream][integration][slow_start][health]") {
  using namespace std::chrono_literals;
  named_backend a("a");
  auto b = std::make_unique<named_backend>("b");
  const std::uint16_t b_port = b->port();
  proxy p(config_with(ep(a.port()) + ", " + ep(b_port),
                      "    slow_start: 2s\n"
                      "    health_check: { interval: 50ms, timeout: 50ms, rise: 1, fall: 1 }\n"));
  CHECK(endpoint_at(p.srv->snapshot(), b_port).effective_weight == 1.0);  // warm at start-up
  b.reset();
  REQUIRE(wait_until([&] { return !endpoint_at(p.srv->snapshot(), b_port).healthy; }, 10s));
  b = std::make_unique<named_backend>("b", b_port);
  REQUIRE(wait_until([&] { return endpoint_at(p.srv->snapshot(), b_port).healthy; }, 10s));
  const auto seen_up = clock_type::now();
  CHECK(endpoint_at(p.srv->snapshot(), b_port).effective_weight < 0.3);
  REQUIRE(wait_until([&] { return endpoint_at(p.srv->snapshot(), b_port).effective_weight == 1.0; },
                     10s));
  // It came up at most one check interval (plus the polling) before it was seen up.
  CHECK(clock_type::now() - seen_up > 1.8s);
}
