// The sockets the proxy serves on either side: TCP over IPv4 or IPv6, and Unix domain stream
// sockets. One socket type for both (Asio's generic stream protocol), so the relay, splice
// included, is the same code whatever the address family.
#pragma once

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

#include "zcproxy/address.hpp"

namespace zcproxy {

using stream_socket = boost::asio::basic_stream_socket<boost::asio::generic::stream_protocol,
                                                       boost::asio::io_context::executor_type>;
using stream_acceptor = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;
using stream_endpoint = boost::asio::generic::stream_protocol::endpoint;

// The socket address of `a` (an address from a validated config: its ip is a literal).
stream_endpoint endpoint_of(const address& a);
// What a socket address is, in the config's terms; nullopt for a family other than IPv4, IPv6
// and Unix.
std::optional<address> address_of(const stream_endpoint& ep);
// A socket's own address; nullopt when the socket cannot say. (Its peer's is taken from accept(2),
// never asked for later: getpeername() fails once the peer has reset.)
std::optional<address> local_of(const stream_socket& s);
// Whether the peer has already reset the connection (a pending socket error): nothing it sent
// can be delivered, so no upstream connect is made for it.
bool peer_gone(stream_socket& s);
// Gives `s` (not open) the socket `fd`, made just now by the caller (socket(2) or accept4(2) with
// SOCK_NONBLOCK | SOCK_CLOEXEC) and referred to by nothing else: registered with `s`'s reactor, and
// known to Asio as non-blocking and as no dup of another descriptor. Asio's own open and accept
// cost an ioctl(FIONBIO) per socket to make it non-blocking, and an accepted one an
// epoll_ctl(DEL) at its close (Asio takes a socket it did not open for a possible dup, whose close
// would leave it in epoll). On failure `fd` is closed.
void adopt_new_socket(stream_socket& s, int fd, int family, boost::system::error_code& ec);
// Asks the kernel to say, with each read, how many bytes it left behind (TCP_INQ), for the relay's
// drained reads: set on a TCP listening socket (its accepted sockets inherit it) or a connected
// one.
void set_read_hint(int fd);
// The 4 or 16 network-order bytes of an IP address; empty for a Unix socket's.
std::string ip_bytes(const address& a);

}  // namespace zcproxy
