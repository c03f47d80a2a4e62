// Listening sockets and the accept loop of one worker thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <vector>

#include "worker.hpp"
#include "zcproxy/inherited.hpp"

namespace zcproxy {

// Throws boost::system::system_error (EADDRINUSE) when something already listens on `at`, even
// with SO_REUSEPORT: binds a probe socket without it, then closes it. A Unix socket's path: a
// live socket there is in use, a stale one (connects refused) is removed, any other file there
// is an error.
void ensure_address_free(const address& at);

// A listener's socket on each of `ios` (one per worker, in order). TCP: each binds the address
// with SO_REUSEADDR and SO_REUSEPORT (the first binds the configured port, or port 0 and the
// kernel picks one, the others join it) and the kernel spreads new connections among them.
// Unix: one socket, bound once and shared (dup'd) by every worker. `resolved` gets the address
// bound. Throws std::runtime_error naming the listener and the address.
std::vector<stream_acceptor> open_listener(const listener_config& lc,
                                           const std::vector<boost::asio::io_context*>& ios,
                                           address& resolved);

// A listener's inherited sockets (see inherited.hpp) on `ios`, as acceptors per worker: socket j
// goes to worker j % ios.size() (a worker may get several: a process with more threads handed
// them over), and a worker left without one accepts on a dup of socket i % fds.size(). Each must
// be a listening stream socket of the family `lc.bind` names; throws std::runtime_error naming
// the listener otherwise. `resolved` gets the address the first one is bound to.
std::vector<std::vector<stream_acceptor>> adopt_listener(
    const listener_config& lc, std::vector<unique_fd> fds,
    const std::vector<boost::asio::io_context*>& ios, address& resolved);

// A Unix listener's socket file is removed once nothing listens on it (at shutdown, or when a
// reload removes the listener); no-op for an IP address.
void remove_socket_file(const address& at);

// Serve `client`, accepted on `l` from `peer` (the address accept(2) gave), as a session on this
// worker.
void start_session(worker& w, bound_listener& l, stream_socket client, const stream_endpoint& peer);

// Stop accepting on `l` (a reload removed it): what is already queued is accepted and served
// first, so the close resets no connection the kernel had completed.
void close_listener(worker& w, bound_listener& l);

// Accept until the acceptor closes; each client becomes a session on this worker. Running out of
// fds (EMFILE and the like) is logged and backed off, never fatal.
boost::asio::awaitable<void> accept_loop(worker& w, bound_listener& l);

}  // namespace zcproxy
