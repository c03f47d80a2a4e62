// Sessions: endpoint failover, connect timeouts, many concurrent connections, no fd leaks, drain.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>

#include "support/net.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// Reads everything until EOF, then sends it back and closes.
void reply_with_request(fd s) {
  bytes got = recv_all(s.get());
  send_all(s.get(), got);
}

}  // namespace

TEST_CASE("session: a refused first endpoint moves the connection to the next",
          "[session][integration]") {
  upstream_server live([](fd s) { reply_with_request(std::move(s)); });
  proxy p("engine: auto", {dead_port(), live.port()}, "", 1);
  // Round-robin starts each connection at a different endpoint; every one must be served.
  for (int i = 0; i < 6; ++i) {
    fd c = connect_to(p.port());
    send_all(c.get(), "hello", 5);
    shutdown_write(c.get());
    CHECK(recv_all(c.get()) == bytes{'h', 'e', 'l', 'l', 'o'});
  }
  CHECK(live.accepted() == 6);
  CHECK(live.stop_and_collect_errors().empty());
}

TEST_CASE("session: with every endpoint refusing, the client is reset at once",
          "[session][integration]") {
  proxy p("engine: auto", {dead_port(), dead_port()});
  fd c = connect_to(p.port());
  const stream_end got = recv_to_end(c.get());
  CHECK(got.data.empty());
  CHECK(got.reset);  // as a direct connect to a dead service would meet
  // At once: both connects were refused, the connect timeout (2s) was not waited for.
  p.wait_sessions();
  CHECK(p.closed("connect_failed") == 1);
  CHECK(p.closed("connect_timeout") == 0);
}

TEST_CASE(
    "session: an endpoint that never answers times out, and the client is closed within "
    "the connect timeout",
    "[session][integration][timeout]") {
  blackhole hole;
  proxy p("engine: auto", {hole.port});
  // The proxy's connect timeout is 2s (see test::proxy).
  const auto t0 = clock_type::now();
  fd c = connect_to(p.port());
  const stream_end got = recv_to_end(c.get());
  CHECK(got.data.empty());
  CHECK(got.reset);
  const auto waited = clock_type::now() - t0;
  p.wait_sessions();
  CHECK(p.closed("connect_timeout") == 1);
  CHECK(waited >= 1900ms);
  CHECK(waited < 2s + 5s);  // the timeout, and a margin for a loaded machine
}

TEST_CASE(
    "session: 200 concurrent connections each moving 1 MiB all complete intact, and no fd "
    "is left behind",
    "[session][integration][concurrency]") {
  constexpr int clients = 200;
  upstream_server up([](fd s) { reply_with_request(std::move(s)); });
  proxy p("engine: auto", {up.port()});

  auto round = [&](std::uint32_t seed) {
    thread_group t;
    std::atomic<int> intact{0};
    for (int i = 0; i < clients; ++i) {
      t.spawn([&, i] {
        const bytes data = random_bytes(1 << 20, seed + i);
        fd c = connect_to(p.port());
        send_all(c.get(), data);
        shutdown_write(c.get());
        if (checksum(recv_all(c.get())) == checksum(data)) ++intact;
      });
    }
    auto errors = t.errors();
    CHECK(errors.empty());
    for (auto& e : errors) WARN(e);
    CHECK(intact == clients);
    REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  };

  // A first round warms the pools; after the second, the process must hold exactly as many fds
  // as between the rounds, less the pooled pipes (two fds each), which are counted separately.
  round(1000);
  auto before = p.srv->snapshot();
  const std::size_t fds_before = count_open_fds() - 2 * before.pipes_idle;
  round(2000);
  auto after = p.srv->snapshot();
  const std::size_t fds_after = count_open_fds() - 2 * after.pipes_idle;
  CHECK(after.pipes_leased == 0);
  CHECK(after.buffers_leased == 0);
  CHECK(fds_after == fds_before);
  CHECK(up.accepted() == 2 * clients);
  CHECK(up.stop_and_collect_errors().empty());
}

TEST_CASE("session: on shutdown, open connections finish and new ones are refused",
          "[session][integration][drain]") {
  upstream_server up([](fd s) { reply_with_request(std::move(s)); });
  proxy p("engine: auto", {up.port()}, "drain_timeout: 30s\n");
  const std::uint16_t port = p.port();
  fd c = connect_to(port);
  send_all(c.get(), "first ", 6);
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 1; }));

  p.srv->shutdown();  // graceful
  // The listeners close; a new client is refused.
  CHECK(wait_until([&] { return !can_connect(port); }));
  // The open one still relays to the end.
  send_all(c.get(), "second", 6);
  shutdown_write(c.get());
  CHECK(recv_all(c.get()) == bytes{'f', 'i', 'r', 's', 't', ' ', 's', 'e', 'c', 'o', 'n', 'd'});
  const auto t0 = clock_type::now();
  p.srv->wait();  // ends with the last connection, long before drain_timeout
  CHECK(clock_type::now() - t0 < 5s);
  CHECK(up.stop_and_collect_errors().empty());
}

TEST_CASE("session: connections still open at drain_timeout are closed",
          "[session][integration][drain]") {
  std::promise<void> release;
  auto released = release.get_future().share();
  upstream_server up([&](fd s) {
    released.wait_for(60s);
    recv_all(s.get());
  });
  proxy p("engine: auto", {up.port()}, "drain_timeout: 300ms\n");
  fd c = connect_to(p.port());
  send_all(c.get(), "idle", 4);
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 1; }));
  const auto t0 = clock_type::now();
  p.srv->shutdown();
  CHECK(recv_all(c.get()).empty());  // the proxy closed it
  p.srv->wait();
  const auto took = clock_type::now() - t0;
  CHECK(took >= 250ms);
  CHECK(took < 5s);
  release.set_value();
  CHECK(up.stop_and_collect_errors().empty());
}

namespace {

// The fd of this process's socket whose peer is `peer` (a socket of the in-process proxy), or -1.
int socket_with_peer(const sockaddr_in& peer) {
  for (int f = 0; f < 4096; ++f) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getpeername(f, reinterpret_cast<sockaddr*>(&a), &len) == 0 && a.sin_family == AF_INET &&
        a.sin_port == peer.sin_port && a.sin_addr.s_addr == peer.sin_addr.s_addr)
      return f;
  }
  return -1;
}

int nodelay_of(int f) {
  int v = -1;
  socklen_t len = sizeof v;
  ::getsockopt(f, IPPROTO_TCP, TCP_NODELAY, &v, &len);
  return v;
}

}  // namespace

TEST_CASE(
    "session: both sockets of a relayed TCP connection have TCP_NODELAY (the client's "
    "inherited from its listener)",
    "[session][integration]") {
  upstream_server up(echo_handler());
  proxy p("engine: auto", {up.port()});
  fd c = connect_to(p.port());
  send_all(c.get(), "ping", 4);
  bytes got(4);
  REQUIRE(::recv(c.get(), got.data(), got.size(), MSG_WAITALL) == 4);  // relaying now
  sockaddr_in client{};
  socklen_t len = sizeof client;
  REQUIRE(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&client), &len) == 0);
  // The proxy's side of the client connection: its peer is this client.
  const int accepted = socket_with_peer(client);
  REQUIRE(accepted >= 0);
  CHECK(nodelay_of(accepted) == 1);
  // The proxy's upstream socket: its peer is the backend's port on 127.0.0.1.
  sockaddr_in backend{};
  backend.sin_family = AF_INET;
  backend.sin_port = htons(up.port());
  backend.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int upstream = socket_with_peer(backend);
  REQUIRE(upstream >= 0);
  CHECK(nodelay_of(upstream) == 1);
}
