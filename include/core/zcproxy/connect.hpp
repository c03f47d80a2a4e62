// Connecting a socket within a time limit: the one connect of the proxy's upstream side (a
// session's upstream, a mirror's shadow).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>

#include "zcproxy/socket.hpp"

namespace zcproxy {

// The address a connect's socket is bound to before it connects (an upstream's `source:`): its
// IP only, the port is the kernel's, chosen at connect (IP_BIND_ADDRESS_NO_PORT). `transparent`
// when the IP is not this host's own (the client's): IP_TRANSPARENT (IPV6_TRANSPARENT), which
// needs CAP_NET_ADMIN. Null: no bind, the kernel chooses (what an upstream without source does).
struct connect_source {
  const address* at = nullptr;
  bool transparent = false;
};

// Lets `fd` (of family IPv6 when `v6`, else IPv4) bind and use addresses that are not this host's
// (IP_TRANSPARENT). EPERM without CAP_NET_ADMIN.
boost::system::error_code set_transparent(int fd, bool v6);
// Binds `fd` (not yet connected) to `source.at`'s IP, port 0, transparent as it says.
boost::system::error_code bind_source(int fd, const connect_source& source);

// How a connect_within ended.
struct connect_result {
  boost::system::error_code error;  // empty: connected
  bool timed_out = false;           // the limit passed first (error is then asio's timed_out)
  bool source_failed = false;       // binding to the source failed: no connect was made

  explicit operator bool() const { return !error; }
};

// Opens `s` (closed) for `to`'s family, non-blocking from the start (the relay needs it; see
// adopt_new_socket), binds it to `from` when given (same family as `to`), and connects it
// to `to` within `limit`. A handshake that has ended by the time connect(2) returns (loopback, a
// near backend) costs one poll(2) and no wait; only one still under way waits, timed by `timer`.
// Cancelling `s` or `timer` (a session's stop cancels both) ends that wait at once with
// operation_aborted; the caller knows whether it was stopping. A connect that succeeds is
// reported as it is, even when a stop came meanwhile. On failure `s` is closed again, ready for
// the next attempt. `s` and `timer` must outlive it and have no other operation pending on them
// meanwhile (`to` is taken by value: a coroutine may start after the caller's temporaries are
// gone).
boost::asio::awaitable<connect_result> connect_within(stream_socket& s, stream_endpoint to,
                                                      std::chrono::milliseconds limit,
                                                      boost::asio::steady_timer& timer,
                                                      connect_source from = {});

// The same with a timer of its own: only cancelling `s` ends the wait early.
boost::asio::awaitable<connect_result> connect_within(stream_socket& s, stream_endpoint to,
                                                      std::chrono::milliseconds limit);

}  // namespace zcproxy
