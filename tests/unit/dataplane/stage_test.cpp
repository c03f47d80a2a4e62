#include "zcproxy/stage.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cerrno>
#include <string>

#include "support/net.hpp"
#include "zcproxy/sys.hpp"

using zcproxy::buffer;
using zcproxy::buffer_stage;
using zcproxy::pipe_stage;
using zcproxy::stage_result;
using zcproxy::stage_status;
using zcproxy::stream_socket;

namespace {

void set_non_blocking(int fd) {
  REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

// Two connected stream sockets; the relay's side ([0] and [1] alike) is non-blocking.
struct socket_pair {
  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    a = test::fd(fds[0]);
    b = test::fd(fds[1]);
    set_non_blocking(a.get());
    set_non_blocking(b.get());
  }
  test::fd a, b;
};

// A TCP connection on loopback (urgent data is TCP's): `client` writes, `server` is the source.
struct tcp_pair {
  tcp_pair() {
    std::uint16_t port = 0;
    test::fd listener = test::listen_loopback(port);
    client = test::connect_to(port);
    server = test::fd(::accept(listener.get(), nullptr, nullptr));
    REQUIRE(server);
    set_non_blocking(server.get());
  }
  test::fd client, server;
};

// An Asio socket over a borrowed fd (released before it closes, so the fd keeps one owner).
struct asio_view {
  asio_view(boost::asio::io_context& io, int fd, int family)
      : s(io, boost::asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP),
          fd) {
    s.non_blocking(true);
  }
  ~asio_view() { s.release(); }
  stream_socket s;
};

buffer make_buffer(std::size_t size) {
  return buffer{std::make_unique<char[]>(size), size};
}

zcproxy::pipe make_pipe() {
  auto p = zcproxy::pipe::open(64 << 10);
  REQUIRE(p);
  return std::move(*p);
}

std::string read_some(int fd) {
  char data[4096];
  const ssize_t n = ::read(fd, data, sizeof data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

// Writes into a non-blocking socket until its send buffer (and the peer's receive buffer) is
// full; returns how much went.
std::size_t fill_up(int fd) {
  const std::string chunk(64 << 10, 'f');
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  REQUIRE(errno == EAGAIN);
  return total;
}

// Splice through the seam fails with EINVAL while alive, as on a kernel that cannot splice.
struct splice_refusal {
  splice_refusal() {
    zcproxy::sys::splice = [](int, loff_t*, int, loff_t*, size_t, unsigned) -> ssize_t {
      errno = EINVAL;
      return -1;
    };
  }
  ~splice_refusal() { zcproxy::sys::splice = ::splice; }
};

// Fills `stage` (over pipe `p`) from `source` until a fill does not move data, collecting what
// it moved in `moved` (splice may move it in pieces); the last fill's result.
stage_result splice_until_stop(pipe_stage& stage, zcproxy::pipe& p, int source,
                               std::string& moved) {
  stage_result r;
  for (int i = 0; i < 10; ++i) {
    r = stage.fill(source, 1 << 20);
    if (r.status != stage_status::done) break;
    char data[16];
    const ssize_t n = ::read(p.read_fd(), data, sizeof data);
    REQUIRE(n == static_cast<ssize_t>(r.moved));
    p.level = 0;
    moved.append(data, r.moved);
  }
  return r;
}

}  // namespace

TEST_CASE("pipe stage: a fill from an empty source would block, holding nothing",
          "[stage][splice]") {
  socket_pair s;
  zcproxy::pipe p = make_pipe();
  pipe_stage stage(p);
  const stage_result r = stage.fill(s.a.get(), 1 << 20);
  CHECK(r.status == stage_status::would_block);
  CHECK(r.moved == 0);
  CHECK(stage.level() == 0);
}

TEST_CASE("buffer stage: a fill from an empty source would block, holding nothing",
          "[stage][copy]") {
  boost::asio::io_context io;
  socket_pair s;
  asio_view from(io, s.a.get(), AF_UNIX);
  buffer b = make_buffer(4096);
  buffer_stage stage(b);
  const stage_result r = stage.fill(from.s.native_handle(), 1 << 20);
  CHECK(r.status == stage_status::would_block);
  CHECK(r.moved == 0);
  CHECK(stage.level() == 0);
}

TEST_CASE("pipe stage: EOF after data: the data first, then eof", "[stage][splice]") {
  socket_pair in, out;
  REQUIRE(::send(in.b.get(), "hello", 5, 0) == 5);
  REQUIRE(::shutdown(in.b.get(), SHUT_WR) == 0);
  zcproxy::pipe p = make_pipe();
  pipe_stage stage(p);
  stage_result r = stage.fill(in.a.get(), 1 << 20);
  CHECK(r.status == stage_status::done);
  CHECK(r.moved == 5);
  CHECK(stage.level() == 5);
  r = stage.flush(out.a.get());
  CHECK(r.status == stage_status::done);
  CHECK(r.moved == 5);
  CHECK(stage.level() == 0);
  CHECK(read_some(out.b.get()) == "hello");
  r = stage.fill(in.a.get(), 1 << 20);
  CHECK(r.status == stage_status::eof);
  CHECK(r.moved == 0);
}

TEST_CASE("buffer stage: EOF after data: the data first, then eof", "[stage][copy]") {
  boost::asio::io_context io;
  socket_pair in, out;
  asio_view from(io, in.a.get(), AF_UNIX), to(io, out.a.get(), AF_UNIX);
  REQUIRE(::send(in.b.get(), "hello", 5, 0) == 5);
  REQUIRE(::shutdown(in.b.get(), SHUT_WR) == 0);
  buffer b = make_buffer(4096);
  buffer_stage stage(b);
  stage_result r = stage.fill(from.s.native_handle(), 1 << 20);
  CHECK(r.status == stage_status::done);
  CHECK(r.moved == 5);
  CHECK(std::string(stage.data(), stage.level()) == "hello");
  r = stage.flush(to.s.native_handle());
  CHECK(r.status == stage_status::done);
  CHECK(r.moved == 5);
  CHECK(stage.level() == 0);
  CHECK(read_some(out.b.get()) == "hello");
  r = stage.fill(from.s.native_handle(), 1 << 20);
  CHECK(r.status == stage_status::eof);
  CHECK(r.moved == 0);
}

TEST_CASE("stages: a fill moves at most what it is allowed, the rest stays in the source",
          "[stage][splice][copy]") {
  boost::asio::io_context io;
  socket_pair in;
  asio_view from(io, in.a.get(), AF_UNIX);
  REQUIRE(::send(in.b.get(), "abcdefgh", 8, 0) == 8);
  zcproxy::pipe p = make_pipe();
  pipe_stage spliced(p);
  CHECK(spliced.fill(in.a.get(), 3).moved == 3);
  buffer b = make_buffer(4096);
  buffer_stage copied(b);
  const stage_result r = copied.fill(from.s.native_handle(), 4);
  CHECK(r.moved == 4);
  CHECK(std::string(copied.data(), copied.level()) == "defg");
  CHECK(read_some(in.a.get()) == "h");
}

TEST_CASE("pipe stage: splice refused (EINVAL through the sys seam) consumes nothing",
          "[stage][splice]") {
  socket_pair in;
  REQUIRE(::send(in.b.get(), "abc", 3, 0) == 3);
  zcproxy::pipe p = make_pipe();
  pipe_stage stage(p);
  {
    splice_refusal refusal;
    const stage_result r = stage.fill(in.a.get(), 1 << 20);
    CHECK(r.status == stage_status::error);
    CHECK(r.error == boost::system::errc::invalid_argument);
    CHECK(r.moved == 0);
    CHECK(stage.level() == 0);
  }
  // Copy takes over losslessly: every byte is still in the source.
  CHECK(read_some(in.a.get()) == "abc");
}

TEST_CASE("pipe stage: a source the kernel cannot splice from is an error, not an EOF",
          "[stage][splice]") {
  // An eventfd has no splice_read: the kernel answers EINVAL (ENOSYS on some older ones).
  test::fd ev(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  REQUIRE(ev);
  zcproxy::pipe p = make_pipe();
  const stage_result r = pipe_stage(p).fill(ev.get(), 1 << 20);
  CHECK(r.status == stage_status::error);
  CHECK((r.error == boost::system::errc::invalid_argument ||
         r.error == boost::system::errc::function_not_supported));
  CHECK(p.level == 0);
}

TEST_CASE("stages: an urgent (MSG_OOB) byte stops the pipe stage, and a buffer fill passes it",
          "[stage][splice][copy][oob]") {
  boost::asio::io_context io;
  tcp_pair t;
  asio_view from(io, t.server.get(), AF_INET);
  test::send_all(t.client.get(), "hello ", 6);
  REQUIRE(::send(t.client.get(), "!", 1, MSG_OOB) == 1);
  test::send_all(t.client.get(), "world", 5);
  // Wait (bounded, no sleep) until the urgent byte is here; what comes before it is, too.
  pollfd urgent{t.server.get(), POLLPRI, 0};
  REQUIRE(::poll(&urgent, 1, 10'000) == 1);
  zcproxy::pipe p = make_pipe();
  pipe_stage spliced(p);
  std::string before;
  stage_result r = splice_until_stop(spliced, p, t.server.get(), before);
  CHECK(before == "hello ");
  CHECK(r.status == stage_status::urgent);
  CHECK(p.level == 0);
  buffer b = make_buffer(4096);
  buffer_stage copied(b);
  for (int i = 0; i < 10 && copied.level() < 5; ++i) {  // "world" may still be on its way
    r = copied.fill(from.s.native_handle(), 1 << 20);
    if (r.status != stage_status::would_block) continue;
    pollfd readable{t.server.get(), POLLIN, 0};
    REQUIRE(::poll(&readable, 1, 10'000) == 1);
  }
  CHECK(r.status == stage_status::done);
  // Like a read without SO_OOBINLINE: the urgent byte is not in the stream.
  CHECK(std::string(copied.data(), copied.level()) == "world");
}

TEST_CASE(
    "pipe stage: at an urgent byte with the FIN behind it, a fill not told of EPOLLPRI stops for "
    "the mark, not for an EOF",
    "[stage][splice][oob]") {
  // The urgent byte may come during a round, after the epoll report the relay read: splice's 0
  // there must not end the direction with "world" unread.
  tcp_pair t;
  test::send_all(t.client.get(), "hello ", 6);
  REQUIRE(::send(t.client.get(), "!", 1, MSG_OOB) == 1);
  test::send_all(t.client.get(), "world", 5);
  REQUIRE(::shutdown(t.client.get(), SHUT_WR) == 0);
  pollfd urgent{t.server.get(), POLLPRI, 0};
  REQUIRE(::poll(&urgent, 1, 10'000) == 1);
  pollfd fin{t.server.get(), POLLRDHUP, 0};
  REQUIRE(::poll(&fin, 1, 10'000) == 1);
  zcproxy::pipe p = make_pipe();
  pipe_stage spliced(p, /*urgent_possible=*/false);
  std::string before;
  stage_result r = splice_until_stop(spliced, p, t.server.get(), before);
  CHECK(before == "hello ");
  CHECK(r.status == stage_status::urgent);
  // What follows the mark is there to be read, then the FIN.
  buffer b = make_buffer(4096);
  buffer_stage copied(b);
  r = copied.fill(t.server.get(), 1 << 20);
  CHECK(r.status == stage_status::done);
  CHECK(std::string(copied.data(), copied.level()) == "world");
}

TEST_CASE("pipe stage: a full destination: flush would block with every byte kept",
          "[stage][splice]") {
  socket_pair in, out;
  fill_up(out.a.get());
  REQUIRE(::send(in.b.get(), "payload", 7, 0) == 7);
  zcproxy::pipe p = make_pipe();
  pipe_stage stage(p);
  REQUIRE(stage.fill(in.a.get(), 1 << 20).moved == 7);
  stage_result r = stage.flush(out.a.get());
  CHECK(r.status == stage_status::would_block);
  CHECK(r.moved == 0);
  CHECK(stage.level() == 7);
  // Room again: the rest goes, in order, behind what filled the destination.
  const std::string drained = [&] {
    std::string all;
    for (std::string s; !(s = read_some(out.b.get())).empty();) all += s;
    return all;
  }();
  CHECK(drained.find('p') == std::string::npos);
  r = stage.flush(out.a.get());
  CHECK(r.status == stage_status::done);
  CHECK(r.moved == 7);
  CHECK(read_some(out.b.get()) == "payload");
}

TEST_CASE("buffer stage: a full destination: flush would block with every byte kept",
          "[stage][copy]") {
  boost::asio::io_context io;
  socket_pair out;
  asio_view to(io, out.a.get(), AF_UNIX);
  fill_up(out.a.get());
  socket_pair in;
  REQUIRE(::send(in.b.get(), "payload", 7, 0) == 7);
  buffer b = make_buffer(4096);
  buffer_stage stage(b);
  REQUIRE(stage.fill(in.a.get(), 1 << 20).moved == 7);
  stage_result r = stage.flush(to.s.native_handle());
  CHECK(r.status == stage_status::would_block);
  CHECK(r.moved == 0);
  CHECK(stage.level() == 7);
  for (std::string s; !(s = read_some(out.b.get())).empty();) {
  }
  r = stage.flush(to.s.native_handle());
  CHECK(r.status == stage_status::done);
  CHECK(r.moved == 7);
  CHECK(read_some(out.b.get()) == "payload");
}
