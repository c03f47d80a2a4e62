// A session: one client connection, served by one coroutine that owns both sockets. It connects
// to an endpoint of the listener's upstream (round-robin, next one on failure), relays both
// directions at once, closes both sockets and writes one access-log line.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "zcproxy/worker.hpp"

namespace zcproxy {

boost::asio::awaitable<void> serve(worker& w, bound_listener& l, tcp::socket client);

}  // namespace zcproxy
