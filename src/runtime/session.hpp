// A session: one client connection, an object that owns both sockets, served in phases
// (src/runtime/session.cpp), those before the relay by one coroutine: it reads the client's PROXY
// header and admits it, reads a routed listener's ClientHello and routes it, connects to an
// endpoint of the upstream (chosen by the upstream's policy among the usable ones, the next one on
// failure), relays both directions at once under the idle and duration timeouts, closes both
// sockets and writes one access-log line.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>

#include "worker.hpp"

namespace zcproxy {

// What a session needs of its listener, taken when it is accepted (a reload may change the
// listener's own pointers before the session runs); all of it lives in `gen`.
struct listener_view {
  const listener_config* config;
  upstream* target;
  const acl* access;
  listener_state* state;
};

// `gen` keeps what `l` points to alive for the session's life. `peer` is the client's address as
// accept(2) gave it (nullopt for a family the proxy does not know).
boost::asio::awaitable<void> serve(worker& w, std::shared_ptr<const generation> gen,
                                   listener_view l, stream_socket client,
                                   std::optional<address> peer);

}  // namespace zcproxy
