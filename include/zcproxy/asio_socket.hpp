// What Asio keeps of a stream_socket, for the two places that go past its public interface:
// adopt_new_socket (a socket made non-blocking and CLOEXEC by socket(2) or accept4(2) itself) and
// the relay's drained read. Asio holds a socket's implementation (fd, state flags, reactor data)
// as a protected member of basic_socket: reached through a member pointer named in a derived
// class that is never made. The layout is that of Asio's reactive (epoll) socket service, the one
// this build uses (Boost 1.81, Debian bookworm).
#pragma once

#include <boost/asio/detail/reactive_socket_service_base.hpp>

#include "zcproxy/socket.hpp"

#if defined(BOOST_ASIO_HAS_IOCP) || defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#error "zcproxy/asio_socket.hpp knows Asio's reactive (epoll) socket service only"
#endif

namespace zcproxy::detail {

struct asio_socket_access : stream_socket {
  static auto& of(stream_socket& s) { return (s.*&asio_socket_access::impl_).get_implementation(); }
};

// The socket's implementation: socket_, state_ (socket_ops flags), reactor_data_.
inline boost::asio::detail::reactive_socket_service_base::base_implementation_type& asio_impl(
    stream_socket& s) {
  return asio_socket_access::of(s);
}

}  // namespace zcproxy::detail
