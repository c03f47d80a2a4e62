#include "zcproxy/relay.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "support/net.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using zcproxy::direction_end;
using zcproxy::direction_result;
using zcproxy::engine_mode;
using zcproxy::stream_socket;

namespace {

// An Asio socket owning `fd` (released by the test::fd it came from), non-blocking as the relay
// needs it.
stream_socket adopt(asio::io_context& io, test::fd fd, int family) {
  stream_socket s(io, asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP),
                  fd.release());
  s.non_blocking(true);
  return s;
}

int ioctl_int(int fd, unsigned long request) {
  int n = -1;
  REQUIRE(::ioctl(fd, request, &n) == 0);
  return n;
}

bool poll_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & events);
}

// Keeps what a direction reports as it ends.
struct owner final : zcproxy::relay_owner {
  std::optional<direction_result> result;
  void direction_ended(zcproxy::relay_direction& d) override { result = d.result(); }
};

zcproxy::relay_resources resources(engine_mode engine) {
  return {engine, 64 << 10, zcproxy::make_pipe_pool(64 << 10, 16),
          zcproxy::make_buffer_pool(64 << 10)};
}

}  // namespace

// A stop that lands between a write's completion and the relay's resumption cancels nothing (the
// write is done, the next wait not yet started): the direction must still end there, not start a
// wait that nobody cancels. The interleaving is forced through Asio's reactor: when one epoll pass
// reports a socket both writable and holding urgent data, the reactor performs its except op (a
// wait for urgent data, which stops the link) and the relay's pending write together, completes
// the except op first and the write after it. The source's peer stays idle, so a wait on it would
// never end: without the check before each wait, the direction hangs.
TEST_CASE("relay: a stop that lands as a write completes ends the direction at once",
          "[relay][copy][splice]") {
  const engine_mode engine = GENERATE(engine_mode::copy, engine_mode::automatic);
  INFO("engine " << (engine == engine_mode::copy ? "copy" : "automatic (splice)"));
  asio::io_context io(1);
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  test::fd source_peer(pair[1]);
  stream_socket from = adopt(io, test::fd(pair[0]), AF_UNIX);

  std::uint16_t port = 0;
  test::fd listener = test::listen_loopback(port);
  test::fd dest_peer = test::connect_to(port);
  stream_socket to = adopt(io, test::fd(::accept(listener.get(), nullptr, nullptr)), AF_INET);
  // The destination full: its send buffer and its peer's receive buffer.
  const int small = 4096;
  ::setsockopt(to.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const std::string junk(64 << 10, 'j');
  while (::send(to.native_handle(), junk.data(), junk.size(), MSG_NOSIGNAL) > 0) {
  }
  REQUIRE(errno == EAGAIN);

  // 1000 bytes for the relay: it reads them and finds the destination full.
  const std::string message(1000, 'm');
  REQUIRE(::send(source_peer.get(), message.data(), message.size(), 0) == 1000);
  auto res = resources(engine);
  zcproxy::relay_link link(from, to);
  owner ended;
  auto& result = ended.result;
  zcproxy::relay_direction direction(from, to, link);
  direction.start(res, engine, {}, ended);
  io.poll();  // the read, the fill and the flush that would block: all without waiting
  REQUIRE(ioctl_int(from.native_handle(), FIONREAD) == 0);
  REQUIRE(!result);

  bool stop_ran = false;
  to.async_wait(stream_socket::wait_error, [&](boost::system::error_code) {
    link.stop();
    stop_ran = true;
  });
  // Room at the destination (its peer reads everything queued), then urgent data from that peer,
  // both before the reactor looks again: one epoll pass reports them together.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  char sink[65536];
  while (ioctl_int(to.native_handle(), SIOCOUTQ) > 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    if (poll_for(dest_peer.get(), POLLIN, 100))
      REQUIRE(::recv(dest_peer.get(), sink, sizeof sink, MSG_DONTWAIT) > 0);
  }
  while (::recv(dest_peer.get(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  REQUIRE(poll_for(to.native_handle(), POLLOUT, 5000));
  REQUIRE(::send(dest_peer.get(), "!", 1, MSG_OOB) == 1);
  REQUIRE(poll_for(to.native_handle(), POLLPRI, 5000));

  // The direction ends at once. (The bound only turns a hang into a failure.)
  io.run_for(5s);
  CHECK(stop_ran);
  REQUIRE(result);
  CHECK(result->end == direction_end::stopped);
  if (engine == engine_mode::copy) {
    // The write the stop met had moved everything: the case that used to wait on.
    CHECK(result->copied == message.size());
    std::string got;
    while (poll_for(dest_peer.get(), POLLIN, 1000) && got.size() < message.size()) {
      const ssize_t n = ::recv(dest_peer.get(), sink, sizeof sink, MSG_DONTWAIT);
      if (n <= 0) break;
      got.append(sink, static_cast<std::size_t>(n));
    }
    CHECK(got == message);
  }
}
