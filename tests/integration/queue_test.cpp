// max_connections_per_endpoint and its queue, on real loopback sockets: a backend that holds
// each connection until its client leaves; exactly N connected, M queued, k refused; a freed slot
// goes to the oldest queued client (whichever worker holds it); the queue's timeout; drain and
// reload with clients queued.
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "support/net.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// A backend that says "k" on accept (the client knows it is connected through), then holds the
// connection until the proxy closes it (its client left).
struct holding_backend {
  upstream_server server{[](fd s) {
    send_all(s.get(), "k", 1);
    char buf[256];
    while (::recv(s.get(), buf, sizeof buf, 0) > 0) {
    }
  }};
  std::uint16_t port() const { return server.port(); }
};

std::string yaml_for(std::uint16_t port, const std::string& upstream_keys,
                     const std::string& top = "") {
  return "threads: 2\nlog: { level: warn, access_log: false }\n" + top +
         "listeners:\n  - { name: q, bind: \"127.0.0.1:0\", upstream: app }\n"
         "upstreams:\n  app:\n    endpoints: [\"127.0.0.1:" +
         std::to_string(port) + "\"]\n    connect_timeout: 2s\n" + upstream_keys;
}

zcproxy::config config_for(std::uint16_t port, const std::string& upstream_keys,
                           const std::string& top = "") {
  return zcproxy::load_config_string(yaml_for(port, upstream_keys, top), "queue.yaml");
}

// Clients waiting in upstream app's queue now.
std::size_t waiting(const proxy& p) {
  for (const auto& q : p.srv->snapshot().queues)
    if (q.upstream == "app") return q.waiting;
  return 0;
}

// Whether `s` is readable within `bound` (0: now).
bool readable(int s, std::chrono::milliseconds bound) {
  pollfd pfd{s, POLLIN, 0};
  return ::poll(&pfd, 1, static_cast<int>(bound.count())) == 1;
}

// The backend's "k" arrived: connected through the proxy.
bool served(int s) {
  if (!readable(s, std::chrono::seconds(10))) return false;
  char c = 0;
  return ::recv(s, &c, 1, 0) == 1 && c == 'k';
}

// The proxy closed (or reset) the client without a byte.
bool refused(int s, std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  if (!readable(s, bound)) return false;
  char c;
  return ::recv(s, &c, 1, 0) <= 0;
}

// A client that queues: connected, and the queue one longer (so the next one queues behind it).
fd queue_one(proxy& p, std::size_t before) {
  fd c = connect_to(p.port());
  REQUIRE(wait_until([&] { return waiting(p) == before + 1; }, std::chrono::seconds(10)));
  return c;
}

}  // namespace

TEST_CASE("queue: N connected, M queued, k refused at once, and a freed slot goes to the oldest",
          "[queue][integration]") {
  constexpr std::size_t n = 3, m = 3, k = 2;
  holding_backend backend;
  proxy p(config_for(backend.port(),
                     "    max_connections_per_endpoint: 3\n    queue: { max: 3, timeout: 30s }\n"));
  std::vector<fd> connected, queued;
  for (std::size_t i = 0; i < n; ++i) {
    connected.push_back(connect_to(p.port()));
    REQUIRE(served(connected.back().get()));
  }
  for (std::size_t i = 0; i < m; ++i) queued.push_back(queue_one(p, i));
  for (std::size_t i = 0; i < k; ++i) {
    fd extra = connect_to(p.port());
    CHECK(refused(extra.get()));
  }
  CHECK(backend.server.accepted() == static_cast<int>(n));
  CHECK(p.closed("queue_full") == k);
  CHECK(waiting(p) == m);
  for (const auto& q : queued) CHECK_FALSE(readable(q.get(), std::chrono::milliseconds(0)));

  // Each slot freed goes to the oldest queued client, and only to it.
  for (std::size_t i = 0; i < m; ++i) {
    connected[i].close();
    REQUIRE(served(queued[i].get()));
    REQUIRE(wait_until([&] { return waiting(p) == m - i - 1; }, std::chrono::seconds(10)));
    for (std::size_t j = i + 1; j < m; ++j)
      CHECK_FALSE(readable(queued[j].get(), std::chrono::milliseconds(0)));
  }
  CHECK(backend.server.accepted() == static_cast<int>(n + m));
  const auto stats = p.srv->snapshot();
  REQUIRE(stats.queues.size() == 1);
  CHECK(stats.queues[0].refused_full == k);
  std::uint64_t waits = 0;
  for (auto c : stats.queues[0].waits) waits += c;
  CHECK(waits == m);
  const auto& e = stats.endpoints.at(0);
  CHECK(e.active == static_cast<std::int64_t>(n));
}

TEST_CASE("queue: max 0 refuses at once, and a client queued behind others never overtakes",
          "[queue][integration]") {
  holding_backend backend;
  proxy p(config_for(backend.port(), "    max_connections_per_endpoint: 1\n"));
  fd first = connect_to(p.port());
  REQUIRE(served(first.get()));
  fd second = connect_to(p.port());
  CHECK(refused(second.get()));
  CHECK(p.closed("queue_full") == 1);
  first.close();
  // The slot is free again: the next client connects.
  REQUIRE(wait_until([&] { return p.srv->snapshot().endpoints.at(0).active == 0; }));
  fd third = connect_to(p.port());
  CHECK(served(third.get()));
}

TEST_CASE("queue: a queued client leaves at queue.timeout, not before and not much after",
          "[queue][integration]") {
  holding_backend backend;
  proxy p(
      config_for(backend.port(),
                 "    max_connections_per_endpoint: 1\n    queue: { max: 5, timeout: 400ms }\n"));
  fd holder = connect_to(p.port());
  REQUIRE(served(holder.get()));
  const auto start = clock_type::now();
  fd c = connect_to(p.port());
  REQUIRE(refused(c.get()));
  const auto waited = clock_type::now() - start;
  CHECK(waited >= std::chrono::milliseconds(400));
  CHECK(waited < std::chrono::milliseconds(1400));
  CHECK(p.closed("queue_timeout") == 1);
  CHECK(waiting(p) == 0);
  CHECK(p.srv->snapshot().queues.at(0).refused_timeout == 1);
  // The holder was never disturbed.
  send_all(holder.get(), "x", 1);
  CHECK(backend.server.accepted() == 1);
}

TEST_CASE("queue: a queued client that resets leaves the queue at once", "[queue][integration]") {
  holding_backend backend;
  proxy p(config_for(backend.port(),
                     "    max_connections_per_endpoint: 1\n    queue: { max: 5, timeout: 30s }\n"));
  fd holder = connect_to(p.port());
  REQUIRE(served(holder.get()));
  fd gone = queue_one(p, 0);
  fd next = queue_one(p, 1);
  close_with_reset(gone);
  REQUIRE(wait_until([&] { return waiting(p) == 1; }, std::chrono::seconds(5)));
  holder.close();
  CHECK(served(next.get()));  // the reset one took no slot
  CHECK(backend.server.accepted() == 2);
}

TEST_CASE("queue: a drain serves queued clients as slots free, and a stop refuses them cleanly",
          "[queue][integration]") {
  holding_backend backend;
  proxy p(config_for(backend.port(),
                     "    max_connections_per_endpoint: 1\n    queue: { max: 5, timeout: 30s }\n",
                     "drain_timeout: 30s\n"));
  fd holder = connect_to(p.port());
  REQUIRE(served(holder.get()));
  fd q1 = queue_one(p, 0);
  fd q2 = queue_one(p, 1);
  fd q3 = queue_one(p, 2);
  p.srv->shutdown(false);  // a drain: open and queued clients go on
  holder.close();
  CHECK(served(q1.get()));
  q1.close();
  CHECK(served(q2.get()));
  // The drain's end (a second signal) closes the rest: q3, still queued, is closed, not hung.
  const auto start = clock_type::now();
  p.srv->shutdown(true);
  CHECK(refused(q3.get(), std::chrono::seconds(5)));
  CHECK(clock_type::now() - start < std::chrono::seconds(5));
  p.wait_sessions(0);
  CHECK(p.closed("shutdown") >= 1);
  CHECK(waiting(p) == 0);
}

TEST_CASE("queue: a reload keeps queued clients in order, and the limit counts both generations",
          "[queue][integration]") {
  holding_backend backend;
  const std::string keys =
      "    max_connections_per_endpoint: 1\n    queue: { max: 5, timeout: 30s }\n";
  proxy p(config_for(backend.port(), keys));
  fd holder = connect_to(p.port());
  REQUIRE(served(holder.get()));
  fd old_queued = queue_one(p, 0);
  // A changed upstream: a new upstream object in the new generation.
  REQUIRE(p.srv->reload(config_for(backend.port(), keys + "    idle_timeout: 1h\n")).error == "");
  // The old generation's connection still occupies the backend: a new client queues behind.
  fd new_queued = queue_one(p, 1);
  CHECK(backend.server.accepted() == 1);
  holder.close();
  CHECK(served(old_queued.get()));
  CHECK_FALSE(readable(new_queued.get(), std::chrono::milliseconds(0)));
  REQUIRE(wait_until([&] { return waiting(p) == 1; }, std::chrono::seconds(5)));
  old_queued.close();
  CHECK(served(new_queued.get()));
  CHECK(backend.server.accepted() == 3);
}

TEST_CASE("queue: a slot freed on one worker serves a client queued on another, in order",
          "[queue][integration]") {
  // Many clients over two workers: whichever worker accepted each, they are served in the order
  // they queued.
  constexpr std::size_t m = 8;
  holding_backend backend;
  proxy p(
      config_for(backend.port(),
                 "    max_connections_per_endpoint: 1\n    queue: { max: 20, timeout: 30s }\n"));
  fd holder = connect_to(p.port());
  REQUIRE(served(holder.get()));
  std::vector<fd> queued;
  for (std::size_t i = 0; i < m; ++i) queued.push_back(queue_one(p, i));
  holder.close();
  for (std::size_t i = 0; i < m; ++i) {
    REQUIRE(served(queued[i].get()));
    for (std::size_t j = i + 1; j < m; ++j)
      CHECK_FALSE(readable(queued[j].get(), std::chrono::milliseconds(0)));
    queued[i].close();
  }
  CHECK(backend.server.accepted() == static_cast<int>(m + 1));
}
