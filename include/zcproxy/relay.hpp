// The relay: moves one direction of a connection, socket to socket, through a stage that is
// either a pooled pipe (splice engine) or a pooled buffer (copy engine). Both engines share one
// loop: wait until readable, fill the stage, mirror, flush it whole, yield now and then, repeat;
// idle directions hold nothing.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <vector>

#include "zcproxy/buffer_pool.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/counters.hpp"
#include "zcproxy/mirror.hpp"
#include "zcproxy/pipe_pool.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/token_bucket.hpp"

namespace zcproxy {

// Per-thread resources every relay on that thread draws from.
struct relay_resources {
  engine_mode engine;     // as configured
  std::size_t pipe_size;  // as configured (pipes get what the kernel grants)
  pipe_pool pipes;
  buffer_pool buffers;
};

// What both directions of one connection share. Either direction that fails calls stop(), which
// wakes the other wherever it waits, so a reset on one side ends the whole connection.
class relay_link {
 public:
  relay_link(stream_socket& client, stream_socket& upstream)
      : client_(client), upstream_(upstream) {}
  // Idempotent; safe to call from the owning thread only.
  void stop();
  bool stopped() const { return stopped_; }
  // Each direction reports its end; once one has, the other's end is the connection's end, and
  // the sockets close right after it.
  void direction_ended() { ++ended_; }
  bool other_direction_ended() const { return ended_ > 0; }
  // When bytes last moved either way (for the idle timeout).
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }
  std::chrono::steady_clock::time_point last_activity() const { return last_activity_; }
  // A write into socket `fd` found its peer gone (ECONNRESET, EPIPE). The kernel reports a reset
  // once, so the direction that reads from `fd` then meets what looks like a FIN: it asks here,
  // and passes a reset on instead.
  void peer_reset(int fd) { reset_fd_ = fd; }
  bool peer_was_reset(int fd) const { return reset_fd_ == fd; }
  // A timer a direction waits on (a rate limit's): stop() cancels it too.
  void add_timer(boost::asio::steady_timer* t) { timers_.push_back(t); }
  void remove_timer(boost::asio::steady_timer* t) { std::erase(timers_, t); }

 private:
  stream_socket& client_;
  stream_socket& upstream_;
  bool stopped_ = false;
  int ended_ = 0;
  int reset_fd_ = -1;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  std::vector<boost::asio::steady_timer*> timers_;
};

enum class direction_end {
  eof,             // the source sent FIN; forwarded with shutdown(SHUT_WR) after the stage emptied
  reset,           // the source or the destination failed (RST, EPIPE, ...)
  stopped,         // the link was stopped (the other direction failed, or the server shut down)
  splice_refused,  // engine splice required, and the kernel refused splice for these sockets
};

struct direction_result {
  std::uint64_t spliced = 0;  // bytes moved by splice
  std::uint64_t copied = 0;   // bytes moved by copy
  direction_end end = direction_end::eof;
  bool on_copy = false;                              // the engine this direction ended on
  splice_fallback fallback = splice_fallback::none;  // why it left splice for copy, if it did
  std::uint64_t bytes() const { return spliced + copied; }
  // The engine(s) actually used: "splice", "copy" or "splice+copy".
  const char* engine() const;
};

// Where a direction counts its bytes as they move: a listener's slot and an endpoint's, for this
// worker thread.
struct byte_meter {
  traffic_slot* slot = nullptr;               // none: not counted live
  endpoint_traffic_slot* endpoint = nullptr;  // likewise
  bool up = true;                             // client -> upstream
};

// What one direction does besides moving bytes. All optional; none is owned here.
struct relay_options {
  token_bucket* limit = nullptr;  // each round moves at most what the bucket allows
  byte_meter meter{};             // counted live as they move
  mirror* shadow = nullptr;       // fed every byte moved, before it goes
};

// Relay from -> to until EOF, error or link.stop(), with `engine` (automatic, splice or copy).
// Both sockets must be in non-blocking mode (socket::non_blocking(true)). With a limit, a
// direction whose bucket is empty waits holding nothing. The policy lives here; the moves are
// the stages' (stage.hpp).
boost::asio::awaitable<direction_result> relay(stream_socket& from, stream_socket& to,
                                               relay_resources& res, engine_mode engine,
                                               relay_link& link, relay_options options = {});

// The engine a connection between these two sockets uses under the configured one: adaptive
// resolves to copy when both peers are on this host (a Unix socket's always is), else to
// automatic. The peers' addresses are passed in (the session knows them); a socket's own address
// is asked for only when the peer is not a loopback address.
engine_mode engine_for(engine_mode configured, const address& client_peer,
                       const stream_socket& client, const address& upstream_peer,
                       const stream_socket& upstream);

}  // namespace zcproxy
