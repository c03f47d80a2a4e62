// Listening sockets and the accept loop of one worker thread.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "zcproxy/worker.hpp"

namespace zcproxy {

// An acceptor bound to `at` with SO_REUSEADDR and SO_REUSEPORT, so that every worker thread can
// bind the same address and the kernel spreads new connections among them. Throws
// std::system_error on failure.
tcp::acceptor open_acceptor(boost::asio::io_context& io, const address& at);

// Throws std::system_error (EADDRINUSE) when something already listens on `at`, even with
// SO_REUSEPORT: binds a probe socket without it, then closes it.
void ensure_address_free(const address& at);

// Accept until the acceptor closes; each client becomes a session on this worker. Running out of
// fds (EMFILE and the like) is logged and backed off, never fatal.
boost::asio::awaitable<void> accept_loop(worker& w, bound_listener& l);

}  // namespace zcproxy
