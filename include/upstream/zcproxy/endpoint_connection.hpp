// A connection's use of one endpoint of an upstream (HAProxy's connect_server() with its
// per-server counters): pick an endpoint by the upstream's policy, connect to it with retries
// onto the next, each attempt within a time limit, and keep the endpoint's counts (connects,
// connect failures and the passive ejection they lead to, active connections, bytes) straight.
// Connected, it counts as started on its endpoint until end() or its destruction, whichever
// comes first: ended exactly once, whatever path closes the connection.
// It does not own the socket it connects (its caller does, and the relay reads it); it must not
// outlive its upstream. Used on one worker's thread; the upstream's counts are atomic.
// 16 bytes: every open connection holds one (a pointer, a 32-bit index, the worker's slot).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "zcproxy/close_reason.hpp"
#include "zcproxy/counters.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy {

// How a caller connects.
struct endpoint_connect_options {
  std::chrono::milliseconds timeout;  // each attempt's (connect_timeout)
  // How many attempts, each on another endpoint while untried ones are usable, then round again.
  // 0: the upstream's max_connect_attempts, or else every endpoint once.
  unsigned attempts = 0;
  std::uint64_t client_hash = 0;  // source_hash's (balancer::hash_client)
  // Times the attempts; cancelling it ends one at once (a stop). None: one of the connect's own.
  boost::asio::steady_timer* timer = nullptr;
  bool log_ejection = true;  // a warning when a failure ejects an endpoint
  // The client's address, bound to by an upstream with `source: client` (none: a Unix client, or
  // unknown; such an upstream then refuses it, as one of another family than the endpoint).
  const address* client = nullptr;
  // A slot on this endpoint taken for the connection already (the queue's): its first attempt.
  std::optional<std::size_t> reserved = std::nullopt;
};

class endpoint_connection {
 public:
  // For connections of worker thread `worker` (its slot of the endpoint's byte counts).
  endpoint_connection(upstream& up, unsigned worker)
      : up_(&up), worker_(static_cast<std::uint16_t>(worker)) {}
  // Of no upstream: not connected, and nothing to connect until one is assigned.
  endpoint_connection() = default;
  ~endpoint_connection() { end(); }
  // Moved, the connection (and its start on the endpoint) goes with it; assigned over, the
  // connection assigned to ends first.
  endpoint_connection(endpoint_connection&& other) noexcept { *this = std::move(other); }
  endpoint_connection& operator=(endpoint_connection&& other) noexcept;

  // Connects `socket` (closed) to an endpoint (see endpoint_connect_options); `stopping` says
  // whether the caller is stopping, which ends the tries uncounted (a stop is no endpoint's
  // fault) and leaves `socket` closed. Closes with no_endpoint (none was usable, so nothing was
  // tried: no why), connect_timeout (every attempt timed out), source_failed (every attempt
  // failed to bind the upstream's `source:`, which does not count against the endpoint),
  // connect_failed or shutdown; the why says what each attempt met. Under
  // max_connections_per_endpoint an attempt holds a slot from its start (a retry takes another),
  // and closes with queue_full before any attempt when every usable endpoint is at the limit or
  // clients queue already: its caller queues it or refuses it. Once connected, not again.
  boost::asio::awaitable<outcome<>> connect(stream_socket& socket, endpoint_connect_options options,
                                            std::function<bool()> stopping);

  // The endpoint connected to, once connect() has succeeded (still known after end()).
  std::optional<std::size_t> index() const {
    return index_ == none ? std::nullopt : std::optional<std::size_t>(index_);
  }
  const address& at() const { return up_->at(index_); }
  // Where this connection's bytes to and from the endpoint are counted, as they move (so a long
  // transfer shows while it runs). Connected only.
  endpoint_traffic_slot& meter() const { return up_->traffic(index_, worker_); }

  // The connection to the endpoint has ended: it no longer counts as active there. Only the
  // first call (or the destructor) counts.
  void end();
  // Ended, and the endpoint forgotten (index() is empty again): a connection not used.
  void reset() {
    end();
    index_ = none;
  }

 private:
  static constexpr std::uint32_t none = UINT32_MAX;
  upstream* up_ = nullptr;
  std::uint32_t index_ = none;  // the endpoint connected to
  std::uint16_t worker_ = 0;
  bool active_ = false;  // started on index_, not yet ended
};

}  // namespace zcproxy
