// A session: one client connection, served by one coroutine that owns both sockets. It connects
// to an endpoint of the listener's upstream (chosen by the upstream's policy among the usable
// ones, the next one on failure), relays both directions at once under the idle and duration
// timeouts, closes both sockets and writes one access-log line.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "zcproxy/worker.hpp"

namespace zcproxy {

// `gen` keeps `listener` and `target` alive for the session's life.
boost::asio::awaitable<void> serve(worker& w, std::shared_ptr<const generation> gen,
                                   const listener_config& listener, upstream& target,
                                   tcp::socket client);

}  // namespace zcproxy
