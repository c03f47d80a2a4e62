// What Asio keeps of a stream_socket, for the two places that go past its public interface:
// adopt_new_socket (a socket made non-blocking and CLOEXEC by socket(2) or accept4(2) itself) and
// the relay's waits (an operation of its own in the reactor; the events epoll reported). Asio
// holds a socket's implementation (fd, state flags, reactor data) as a protected member of
// basic_socket: reached through a member pointer named in a derived class that is never made. The
// layout is that of Asio's reactive (epoll) socket service in Boost 1.81 (Debian bookworm):
// ZCPROXY_ASIO_INTERNALS is 1 there and only there. Any other Boost, another backend, or
// -DZCPROXY_ASIO_PUBLIC_ONLY gets 0, and both places use Asio's public interface (an
// ioctl more per socket; an async_wait per wait, which re-arms the socket with epoll_ctl, and a
// read to EAGAIN before each). Where it is 1, the members used are checked below: a layout that
// differs fails the build, never the running proxy.
#pragma once

#include <boost/version.hpp>

#include "zcproxy/socket.hpp"

#if BOOST_VERSION == 108100 && !defined(ZCPROXY_ASIO_PUBLIC_ONLY) && \
    !defined(BOOST_ASIO_HAS_IOCP) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define ZCPROXY_ASIO_INTERNALS 1
#else
#define ZCPROXY_ASIO_INTERNALS 0
#endif

#if ZCPROXY_ASIO_INTERNALS
#include <boost/asio/detail/reactive_socket_service_base.hpp>
#include <boost/asio/detail/scheduler_operation.hpp>
#include <type_traits>

namespace zcproxy::detail {

using asio_socket_impl =
    boost::asio::detail::reactive_socket_service_base::base_implementation_type;

static_assert(std::is_same_v<boost::asio::detail::reactor, boost::asio::detail::epoll_reactor>,
              "zcproxy/asio_socket.hpp knows Asio's epoll reactor only");
static_assert(std::is_same_v<decltype(asio_socket_impl::socket_), boost::asio::detail::socket_type>,
              "Asio's socket implementation: socket_ is not the fd");
static_assert(
    std::is_same_v<decltype(asio_socket_impl::state_), boost::asio::detail::socket_ops::state_type>,
    "Asio's socket implementation: state_ is not socket_ops' flags");
static_assert(std::is_same_v<decltype(asio_socket_impl::reactor_data_),
                             boost::asio::detail::reactor::per_descriptor_data>,
              "Asio's socket implementation: reactor_data_ is not the reactor's descriptor data");

struct asio_socket_access : stream_socket {
  static auto& of(stream_socket& s) { return (s.*&asio_socket_access::impl_).get_implementation(); }
};

// The socket's implementation: socket_, state_ (socket_ops flags), reactor_data_.
inline asio_socket_impl& asio_impl(stream_socket& s) {
  return asio_socket_access::of(s);
}

// The events epoll last reported for a socket: Asio keeps them in the socket's descriptor state
// (an operation, whose task result they are) from one reactor pass to the next. A descriptor
// state is reused from socket to socket, and so are its events: adopt_new_socket clears them.
struct reported_events : boost::asio::detail::scheduler_operation {
  static unsigned& of(stream_socket& s) {
    // A private base of the descriptor state: only a C-style cast names it.
    auto* op = (boost::asio::detail::scheduler_operation*)asio_impl(s).reactor_data_;
    return op->*&reported_events::task_result_;
  }
};

}  // namespace zcproxy::detail
#endif
