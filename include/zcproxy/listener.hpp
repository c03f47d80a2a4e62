// Listening sockets and the accept loop of one worker thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <vector>

#include "zcproxy/worker.hpp"

namespace zcproxy {

// An acceptor bound to `at` with SO_REUSEADDR and SO_REUSEPORT, so that every worker thread can
// bind the same address and the kernel spreads new connections among them. Throws
// std::system_error on failure.
tcp::acceptor open_acceptor(boost::asio::io_context& io, const address& at);

// Throws std::system_error (EADDRINUSE) when something already listens on `at`, even with
// SO_REUSEPORT: binds a probe socket without it, then closes it.
void ensure_address_free(const address& at);

// A listener's socket on each of `ios` (one per worker, in order): the first binds the configured
// address (port 0: the kernel picks one), the others join that same port. `resolved` gets the
// address bound. Throws std::runtime_error naming the listener and the address.
std::vector<tcp::acceptor> open_listener(const listener_config& lc,
                                         const std::vector<boost::asio::io_context*>& ios,
                                         address& resolved);

// Serve `client`, accepted on `l`, as a session on this worker.
void start_session(worker& w, bound_listener& l, tcp::socket client);

// Stop accepting on `l` (a reload removed it): what is already queued is accepted and served
// first, so the close resets no connection the kernel had completed.
void close_listener(worker& w, bound_listener& l);

// Accept until the acceptor closes; each client becomes a session on this worker. Running out of
// fds (EMFILE and the like) is logged and backed off, never fatal.
boost::asio::awaitable<void> accept_loop(worker& w, bound_listener& l);

}  // namespace zcproxy
