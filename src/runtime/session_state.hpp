// Private to the session's files (src/runtime/session.cpp, preface.cpp, fallback.cpp): the
// sockets a session owns, and the steps on them that are ideas of their own (reading the client's
// preface, sending a fallback response).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "worker.hpp"
#include "zcproxy/close_reason.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/proxy_protocol.hpp"
#include "zcproxy/relay.hpp"
#include "zcproxy/sni.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy::detail {

// The session's sockets and what the worker may do to it (through the session, the worker's
// session_handle). Lives in the session's object; touched by its worker's thread only.
struct session_state final {
  explicit session_state(stream_socket c) : client(std::move(c)), upstream(client.get_executor()) {}

  void stop() {
    shutting_down = true;
    link.stop();  // cancels both sockets: a pending connect or relay wait ends at once
    if (timer) timer->cancel();
  }

  // Called by the worker's sweep while the relays run (see worker::sweep). Whether an interim
  // access-log line is due (log.interval): the session writes it and sets the next.
  bool check_timeouts(std::chrono::steady_clock::time_point now) {
    if (!relaying || link.stopped()) return false;
    if (limits.max_duration.count() > 0 && now >= relay_started + limits.max_duration)
      expired = close_reason::max_duration;
    else if (limits.idle.count() > 0 && now >= link.last_activity() + limits.idle)
      expired = close_reason::idle_timeout;
    if (expired) link.stop();
    return !expired && now >= next_interim;
  }

  // Every `every` from `due`; a late sweep (a busy worker) does not make up for lost lines with a
  // burst.
  static std::chrono::steady_clock::time_point next_due(std::chrono::steady_clock::time_point due,
                                                        std::chrono::milliseconds every,
                                                        std::chrono::steady_clock::time_point now) {
    return due + every > now ? due + every : now + every;
  }

  // Why the relays ended, when no timeout stopped them.
  close_reason relay_end(const direction_result& up, const direction_result& down) const {
    if (shutting_down) return close_reason::shutdown;
    for (const auto* d : {&up, &down}) {
      if (d->end == direction_end::splice_refused) return close_reason::splice_refused;
      if (d->end == direction_end::reset) return close_reason::reset;
    }
    return close_reason::eof;
  }

  stream_socket client;
  stream_socket upstream;
  // The deadline of whichever step before the relays waits; it lives in the session's setup
  // frame (null once the relays run: they wait on no timer of the session's).
  boost::asio::steady_timer* timer = nullptr;
  relay_link link{client, upstream};
  bool shutting_down = false;
  bool relaying = false;
  timeouts limits;
  std::chrono::steady_clock::time_point relay_started;
  std::optional<close_reason> expired;  // the timeout that stopped the relays
  // log.interval: the sweep that finds it passed has the session write the line (the worker's one
  // timer; none of the connection's own). Never: no interim lines.
  static constexpr auto never = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point next_interim = never;
};

// Read the PROXY protocol header the client must send first, within `limit`, consuming exactly
// its bytes. Closes with proxy_header (or shutdown) when the client sends none, a bad one, or
// too late.
boost::asio::awaitable<outcome<proxy_protocol::header>> read_proxy_header(
    session_state& s, std::chrono::milliseconds limit);

// What a routed listener's client sent first: its ClientHello (or proof that it is none), and
// the bytes read for it, which go upstream before the relay starts.
struct client_preface {
  std::string bytes;
  sni::client_hello hello;
};

// Read the client's first bytes until they hold a whole ClientHello or prove not to be one,
// within `limit`. Closes with sni_timeout, client_hello or shutdown.
boost::asio::awaitable<outcome<client_preface>> read_client_hello(session_state& s,
                                                                  std::chrono::milliseconds limit);

// Wait in `u`'s queue (its queue.max and queue.timeout) for a slot on one of its endpoints,
// holding nothing but the client's socket: the endpoint whose slot the client now holds. Closes
// with queue_full (the queue is full, or the upstream has none), queue_timeout, reset (the client
// went away) or shutdown (the session's stop); the queue's metrics count each wait.
boost::asio::awaitable<outcome<std::size_t>> wait_for_slot(session_state& s, upstream& u,
                                                           std::uint64_t client_hash);

// The client is refused (access control, limits, a bad PROXY header, no endpoint): it is reset,
// as a direct connect to a dead or closed service would be, not closed cleanly, which could pass
// for an empty reply. (Not through Asio: its socket destructor turns a linger set through it
// back off.)
void reset_on_close(stream_socket& s);

// Send a listener's fallback_response to the client, within `limit`, then end the stream with a
// lingering close. Returns the bytes sent.
boost::asio::awaitable<std::size_t> send_fallback(session_state& s, const fallback_body& body,
                                                  std::chrono::milliseconds limit);

}  // namespace zcproxy::detail
