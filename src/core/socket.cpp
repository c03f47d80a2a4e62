#include "zcproxy/socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cstring>

#include "zcproxy/asio_socket.hpp"

namespace zcproxy {
namespace asio = boost::asio;

void adopt_new_socket(stream_socket& s, int fd, int family, boost::system::error_code& ec) {
  s.assign(asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
#if ZCPROXY_ASIO_INTERNALS
  namespace ops = asio::detail::socket_ops;
  auto& state = detail::asio_impl(s).state_;
  state |= ops::user_set_non_blocking | ops::internal_non_blocking;  // O_NONBLOCK from its start
  state &= ~ops::possible_dup;  // its close takes it out of epoll: no epoll_ctl(DEL) is needed
  detail::reported_events::of(s) = 0;  // not those of the socket that had its descriptor state
#else
  s.non_blocking(true, ec);  // already so: only for Asio to know it
  boost::system::error_code ignored;
  if (ec) s.close(ignored);
#endif
}

stream_endpoint endpoint_of(const address& a) {
  if (a.local) return asio::local::stream_protocol::endpoint(a.path);
  return asio::ip::tcp::endpoint(asio::ip::make_address(a.ip), a.port);
}

std::optional<address> address_of(const stream_endpoint& ep) {
  const sockaddr* sa = ep.data();
  address out;
  char text[INET6_ADDRSTRLEN];
  switch (sa->sa_family) {
    case AF_INET: {
      sockaddr_in in;
      std::memcpy(&in, sa, sizeof in);
      out.ip = ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
      out.port = ntohs(in.sin_port);
      return out;
    }
    case AF_INET6: {
      sockaddr_in6 in6;
      std::memcpy(&in6, sa, sizeof in6);
      out.ip = ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
      out.port = ntohs(in6.sin6_port);
      out.v6 = true;
      return out;
    }
    case AF_UNIX: {
      // An unnamed socket (a client's, usually) has no path; an abstract one starts with NUL.
      const std::size_t offset = offsetof(sockaddr_un, sun_path);
      out.local = true;
      if (ep.size() > offset) {
        const char* p = reinterpret_cast<const sockaddr_un*>(sa)->sun_path;
        out.path.assign(p, ::strnlen(p, ep.size() - offset));
      }
      return out;
    }
    default:
      return std::nullopt;
  }
}

std::optional<address> local_of(const stream_socket& s) {
  boost::system::error_code ec;
  auto ep = s.local_endpoint(ec);
  return ec ? std::nullopt : address_of(ep);
}

void set_read_hint(int fd) {
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, sizeof on);
}

bool peer_gone(stream_socket& s) {
  int err = 0;
  socklen_t len = sizeof err;
  // SO_ERROR holds ECONNRESET once an RST has arrived, even while the socket waited in the
  // accept queue; a FIN (a half-close) is no error: such a client may still read a reply.
  return ::getsockopt(s.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0;
}

std::string ip_bytes(const address& a) {
  if (a.local) return {};
  unsigned char raw[sizeof(in6_addr)];
  const int family = a.v6 ? AF_INET6 : AF_INET;
  if (::inet_pton(family, a.ip.c_str(), raw) != 1) return {};
  return {reinterpret_cast<const char*>(raw), a.v6 ? 16u : 4u};
}

}  // namespace zcproxy
