#include "zcproxy/connect.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>

#include "zcproxy/deadline.hpp"
#include "zcproxy/sys.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

// The pending error of a socket whose connect has ended (SO_ERROR; 0: connected).
boost::system::error_code connect_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return err ? sys::errno_error(err) : boost::system::error_code();
}

// Whether the handshake of a connect that said EINPROGRESS has ended already (on loopback and to
// a near backend it has, by the time connect(2) returns), and how: one poll(2) with no timeout,
// instead of Asio's way (an epoll_ctl to add EPOLLOUT, a pass through epoll_wait, then poll(2)
// and SO_ERROR).
std::optional<boost::system::error_code> connect_ended(int fd) {
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) <= 0 || p.revents == 0) return std::nullopt;
  if (p.revents & (POLLERR | POLLHUP)) return connect_error(fd);
  return boost::system::error_code();
}

}  // namespace

boost::system::error_code set_transparent(int fd, bool v6) {
  const int one = 1;
  // EPERM: no CAP_NET_ADMIN (a `user:` without it, a container without it).
  if (::setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
                   sizeof one) != 0)
    return sys::errno_error(errno);
  return {};
}

boost::system::error_code bind_source(int fd, const connect_source& source) {
  if (source.transparent)
    if (auto ec = set_transparent(fd, source.at->v6)) return ec;
  // The port is chosen at connect, with the destination known, so a source IP's ~28k ports serve
  // each destination, not all of them together; a kernel before 4.2 ignores it (and binds a port
  // now): no reason to fail.
  const int one = 1;
  ::setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  address at = *source.at;
  at.port = 0;
  const stream_endpoint ep = endpoint_of(at);
  // EADDRNOTAVAIL: not this host's address and not transparent; EADDRINUSE...
  if (::bind(fd, ep.data(), ep.size()) != 0) return sys::errno_error(errno);
  return {};
}

asio::awaitable<connect_result> connect_within(stream_socket& s, stream_endpoint to,
                                               std::chrono::milliseconds limit,
                                               asio::steady_timer& timer, connect_source from) {
  connect_result out;
  boost::system::error_code ec;
  const int fd = ::socket(to.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          to.protocol().protocol());
  if (fd < 0)
    ec = sys::errno_error(errno);  // EMFILE, ENFILE, ENOBUFS...
  else
    adopt_new_socket(s, fd, to.protocol().family(), ec);
  if (ec) {
    out.error = ec;
    co_return out;
  }
  if (from.at) {  // an upstream with `source:`; the one branch it costs the others
    if (auto bind_ec = bind_source(fd, from)) {
      out.error = bind_ec;
      out.source_failed = true;
      s.close(ec);
      co_return out;
    }
  }
  std::optional<boost::system::error_code> ended;
  if (::connect(fd, to.data(), to.size()) == 0)
    ended = boost::system::error_code();
  else if (errno == EINPROGRESS || errno == EINTR)  // EINTR: the connect goes on regardless
    ended = connect_ended(fd);
  else  // ECONNREFUSED, ENETUNREACH, EAGAIN (a Unix socket's backlog is full)...
    ended = sys::errno_error(errno);
  if (ended) {
    out.error = *ended;
  } else {
    // Still connecting (a remote backend): wait for the end of the handshake within the limit.
    auto r = co_await within(s.async_wait(stream_socket::wait_write, use_tuple), timer, limit);
    if (r) {
      const auto wait_ec = std::get<0>(*r.done);
      out.error = wait_ec ? wait_ec : connect_error(fd);  // a wait cancelled: a stop
    } else if (r.timer_error) {
      out.error = r.timer_error;  // the timer was cancelled: a stop, not the limit
    } else {
      out.error = asio::error::timed_out;
      out.timed_out = true;
    }
  }
  if (out.error) s.close(ec);
  co_return out;
}

asio::awaitable<connect_result> connect_within(stream_socket& s, stream_endpoint to,
                                               std::chrono::milliseconds limit) {
  asio::steady_timer timer(s.get_executor());
  co_return co_await connect_within(s, to, limit, timer);
}

}  // namespace zcproxy
