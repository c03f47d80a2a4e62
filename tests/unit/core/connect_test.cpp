// connect_within on real loopback sockets: it connects, reports a refusal as the connect's error,
// a hanging connect as timed_out at its limit, and a cancel as operation_aborted at once.
#include "zcproxy/connect.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>

#include "support/net.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using zcproxy::connect_result;
using zcproxy::connect_within;
using zcproxy::stream_endpoint;
using zcproxy::stream_socket;
using namespace test;

namespace {

stream_endpoint loopback(std::uint16_t port) {
  return asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

// Runs connect_within to `port` with `limit`; `cancel_after`, when given, cancels the timer (as a
// session's stop does) that long after the start.
connect_result run(std::uint16_t port, std::chrono::milliseconds limit,
                   std::optional<std::chrono::milliseconds> cancel_after = std::nullopt,
                   bool* open_after = nullptr) {
  asio::io_context io;
  stream_socket s(io);
  asio::steady_timer timer(io);
  asio::steady_timer canceller(io);
  connect_result out;
  asio::co_spawn(io, connect_within(s, loopback(port), limit, timer),
                 [&](std::exception_ptr e, connect_result r) {
                   if (e) std::rethrow_exception(e);
                   out = r;
                   canceller.cancel();
                 });
  if (cancel_after) {
    canceller.expires_after(*cancel_after);
    canceller.async_wait([&](boost::system::error_code ec) {
      if (!ec) timer.cancel();
    });
  }
  io.run_for(5s);
  if (open_after) *open_after = s.is_open();
  return out;
}

}  // namespace

TEST_CASE("connect_within: connects a non-blocking socket", "[connect]") {
  std::uint16_t port = 0;
  const fd listener = listen_loopback(port);
  bool open = false;
  const connect_result r = run(port, 2000ms, std::nullopt, &open);
  CHECK(r);
  CHECK_FALSE(r.timed_out);
  CHECK(open);
}

TEST_CASE("connect_within: a refused connect is the connect's error, and the socket is closed",
          "[connect]") {
  bool open = true;
  const connect_result r = run(dead_port(), 2000ms, std::nullopt, &open);
  CHECK_FALSE(r);
  CHECK(r.error == asio::error::connection_refused);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(open);
}

TEST_CASE("connect_within: a connect that hangs ends at the limit", "[connect]") {
  blackhole hole;
  const auto start = std::chrono::steady_clock::now();
  const connect_result r = run(hole.port, 200ms);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(r);
  CHECK(r.timed_out);
  CHECK(r.error == asio::error::timed_out);
  CHECK(took >= 200ms);
  CHECK(took < 2s);
}

TEST_CASE("connect_within: cancelling the timer ends the wait at once, not as a timeout",
          "[connect]") {
  blackhole hole;
  const auto start = std::chrono::steady_clock::now();
  const connect_result r = run(hole.port, 3000ms, 50ms);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  CHECK_FALSE(r);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error == asio::error::operation_aborted);
}

TEST_CASE("connect_within: with a timer of its own, closing the socket ends the wait at once",
          "[connect]") {
  blackhole hole;
  asio::io_context io;
  stream_socket s(io);
  asio::steady_timer closer(io, 50ms);
  std::optional<connect_result> out;
  asio::co_spawn(io, connect_within(s, loopback(hole.port), 3000ms),
                 [&](std::exception_ptr e, connect_result r) {
                   if (e) std::rethrow_exception(e);
                   out = r;
                 });
  closer.async_wait([&](boost::system::error_code ec) {
    if (!ec) s.close();  // as a mirror's stop does
  });
  const auto start = std::chrono::steady_clock::now();
  io.run_for(5s);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  REQUIRE(out);
  CHECK_FALSE(*out);
  CHECK_FALSE(out->timed_out);
  CHECK(out->error == asio::error::operation_aborted);
}

TEST_CASE(
    "adopt_new_socket: Asio takes the socket as non-blocking (no ioctl of its own) and as no "
    "dup (its close takes it out of epoll), and a connected one carries data",
    "[connect]") {
  asio::io_context io;
  // Adopted, then closed: the next socket gets the same fd number, and registering it with the
  // same reactor works only if the close took the first out of epoll (EEXIST otherwise).
  const int first = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(first >= 0);
  {
    stream_socket a(io);
    boost::system::error_code ec;
    zcproxy::adopt_new_socket(a, first, AF_INET, ec);
    REQUIRE_FALSE(ec);
    CHECK(a.non_blocking());
    CHECK(a.native_non_blocking());
  }
  const int second = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(second == first);
  stream_socket b(io);
  boost::system::error_code ec;
  zcproxy::adopt_new_socket(b, second, AF_INET, ec);
  REQUIRE_FALSE(ec);
  // Connected (connect_within adopts its socket so), Asio's reads on it do not block: the bytes a
  // peer sent, then would_block at once.
  upstream_server up([](fd s) {
    send_all(s.get(), "hi", 2);
    recv_all(s.get());
  });
  b.close();
  asio::steady_timer timer(io);
  connect_result r;
  asio::co_spawn(io, connect_within(b, loopback(up.port()), 2s, timer),
                 [&](std::exception_ptr e, connect_result got) {
                   if (e) std::rethrow_exception(e);
                   r = got;
                 });
  io.run_for(5s);
  REQUIRE(r);
  CHECK(b.non_blocking());
  pollfd p{b.native_handle(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  char buf[8];
  CHECK(b.read_some(asio::buffer(buf), ec) == 2);
  CHECK_FALSE(ec);
  CHECK(b.read_some(asio::buffer(buf), ec) == 0);
  CHECK(ec == asio::error::would_block);
  b.close();
  CHECK(up.stop_and_collect_errors().empty());
}
