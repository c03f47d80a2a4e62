// The relay: moves one direction of a connection, socket to socket, through a stage that is
// either a pooled pipe (splice engine) or a pooled buffer (copy engine). One state machine of
// completion handlers runs both engines: fill the stage, mirror, flush it whole, again, until the
// source would block or the destination is full; only then does it wait. An idle direction holds
// no stage, no buffer and no coroutine frame: its connection's object and the one wait it has
// queued in the reactor (an operation embedded in the direction, not allocated per wait).
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "zcproxy/asio_socket.hpp"
#include "zcproxy/buffer_pool.hpp"
#include "zcproxy/counters.hpp"
#include "zcproxy/engine_mode.hpp"
#include "zcproxy/mirror.hpp"
#include "zcproxy/pipe_pool.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/stage.hpp"
#include "zcproxy/token_bucket.hpp"

#if ZCPROXY_ASIO_INTERNALS
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#endif

namespace zcproxy {

// Per-thread resources every relay on that thread draws from.
struct relay_resources {
  engine_mode engine;     // as configured
  std::size_t pipe_size;  // as configured (pipes get what the kernel grants)
  pipe_pool pipes;
  buffer_pool buffers;
#if ZCPROXY_ASIO_INTERNALS
  boost::asio::detail::reactor* reactor = nullptr;  // the thread's, looked up by the first wait
#endif
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
  void add_timer(boost::asio::steady_timer* t) { (timers_[0] ? timers_[1] : timers_[0]) = t; }

 private:
  stream_socket& client_;
  stream_socket& upstream_;
  bool stopped_ = false;
  std::uint8_t ended_ = 0;
  int reset_fd_ = -1;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  boost::asio::steady_timer* timers_[2] = {};  // one per direction at most
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
  bool on_copy = false;                                 // the engine this direction ended on
  splice_fallback copy_switch = splice_fallback::none;  // why it switched to copy, if it did
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

class relay_direction;

// Told when a direction has ended (its result() is final). The direction is not touched after the
// call: the owner may destroy it there.
struct relay_owner {
  virtual void direction_ended(relay_direction& d) = 0;

 protected:
  ~relay_owner() = default;
};

// One direction: from -> to until EOF, error or link.stop(), with `engine` (automatic, splice or
// copy). Both sockets must be in non-blocking mode (socket::non_blocking(true)). With a limit, a
// direction whose bucket is empty waits holding nothing. The policy lives here; the moves are the
// stages' (stage.hpp). Lives in its owner (the session), on the sockets' thread; not movable.
class relay_direction {
 public:
  relay_direction(stream_socket& from, stream_socket& to, relay_link& link)
      : from_(from), to_(to), link_(link) {}
  relay_direction(const relay_direction&) = delete;
  relay_direction& operator=(const relay_direction&) = delete;
  ~relay_direction();

  // Starts moving bytes; owner.direction_ended(*this) is called once, when the direction ends.
  void start(relay_resources& res, engine_mode engine, const relay_options& options,
             relay_owner& owner);
  const direction_result& result() const { return out_; }

 private:
  enum class next : std::uint8_t { flush, new_round, end };
  enum class waiting : std::uint8_t { nothing, readable, writable };
#if ZCPROXY_ASIO_INTERNALS
  // The one wait a direction may have queued in the reactor at a time: for the source to be
  // readable (its perform fills the stage) or the destination writable (its perform flushes it).
  struct wait_op : boost::asio::detail::reactor_op {
    explicit wait_op(relay_direction* d)
        : reactor_op(boost::system::error_code(), &perform, &complete), d(d) {}
    static status perform(reactor_op* base);
    static void complete(void* owner, boost::asio::detail::scheduler_operation* base,
                         const boost::system::error_code&, std::size_t);
    relay_direction* d;
  };
  friend struct wait_op;
#endif

  void run();
  void wait(waiting what, bool just_blocked);
  void on_ready(const boost::system::error_code& ec);
  bool stopped();
  std::size_t allowance() const;
  bool try_fill();
  void take_stage();
  next fill(std::size_t allowed);
  bool after_fill();
  void at_end_of_source();
  void feed_mirror();
  bool try_flush();
  std::size_t left() const;
  bool finish_round();
  void count(std::size_t moved);
  void end_with(direction_end end, const boost::system::error_code& e, bool source_failed);
  void end();

  stream_socket& from_;
  stream_socket& to_;
  relay_link& link_;
  relay_resources* res_ = nullptr;
  relay_owner* owner_ = nullptr;
  relay_options opt_;
  direction_result out_;
  std::size_t n_ = 0;             // this round's fill
  std::uint32_t since_wait_ = 0;  // bytes moved since the last wait
  // For next::end, and this round's flush failure: errno values, kept as ints (4 bytes, not an
  // error_code's 24: every open connection holds two directions), passed on as error_codes.
  int error_ = 0;
  int flush_error_ = 0;
  engine_mode engine_ = engine_mode::automatic;
  waiting waiting_ = waiting::nothing;
  next step_ = next::flush;                        // what this round's fill said
  direction_end end_kind_ = direction_end::reset;  // for next::end
  // Whether the source may hold bytes not tried since its last EAGAIN. Readiness comes as edges
  // (epoll EPOLLET): wait only after an EAGAIN, or an edge that came before the wait is lost.
  bool readable_ = true;
  bool urgent_ = false;     // the source sits at a TCP urgent byte, which splice never passes
  bool drained_ = false;    // this round's fill left the source empty (no EAGAIN needed)
  bool performed_ = false;  // the reactor made the fill or flush the wait was for
  bool starting_ = false;   // inside start_op: its first try
  bool skip_ = false;  // the caller has just met EAGAIN: the reactor's first try would repeat it
  held_stage stage_;   // only while bytes are in flight
  std::unique_ptr<boost::asio::steady_timer> limit_timer_;  // waits for a rate limit's tokens
#if ZCPROXY_ASIO_INTERNALS
  wait_op op_{this};
#endif
};

// The engine a connection between these two sockets uses under the configured one: adaptive
// resolves to copy when both peers are on this host (a Unix socket's always is), else to
// automatic. The peers' addresses are passed in (the session knows them); a socket's own address
// is asked for only when the peer is not a loopback address.
engine_mode engine_for(engine_mode configured, const address& client_peer,
                       const stream_socket& client, const address& upstream_peer,
                       const stream_socket& upstream);

}  // namespace zcproxy
