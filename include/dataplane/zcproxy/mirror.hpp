// A connection's mirror (a listener's `mirror:`): a connection to the shadow upstream, and pipes
// of the client's bytes the shadow has not taken yet. The client->upstream relay feeds it every
// round (tee(2) from the relay's pipe, so the bytes never enter user space; a write from the copy
// engine's buffer) and it never waits: a shadow that falls more than `lag` behind, cannot be
// reached, or closes, stops its mirror, and the primary carries on untouched. The shadow gets an
// exact prefix of the client stream (all of it when the mirror completes), in order.
// Lives on its connection's thread; the session and the two coroutines below share it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "zcproxy/counters.hpp"
#include "zcproxy/pipe_pool.hpp"
#include "zcproxy/socket.hpp"

namespace zcproxy {

class upstream;

// Whether a connection is in a mirror's sampled `share` (0..1).
bool mirror_sampled(double share);

class mirror {
 public:
  // `lag`: how many bytes the shadow may fall behind; staged in pipes of `pipe_size` each.
  mirror(const stream_socket::executor_type& ex, std::size_t lag, std::size_t pipe_size);
  bool active() const { return !result_; }
  // n bytes the relay moves this round: in a pipe (teed, not consumed), or in memory.
  void feed_pipe(int pipe_read_fd, std::size_t n);
  void feed(const char* data, std::size_t n);
  // The client's stream has ended (or the connection has): send the rest within `limit`.
  void end_of_stream(std::chrono::milliseconds limit);
  // Stop mirroring, for this reason; the first reason stays.
  void stop(mirror_result why);

 private:
  friend boost::asio::awaitable<void> run_mirror(std::shared_ptr<mirror>, std::shared_ptr<upstream>,
                                                 std::shared_ptr<listener_metrics>,
                                                 std::chrono::milliseconds, unsigned,
                                                 std::optional<address>);
  void push();                   // send what the shadow takes now, drop its replies; never waits
  bool room_for(std::size_t n);  // within the lag, with a pipe at the back to add to
  std::size_t staged() const { return static_cast<std::size_t>(fed_ - sent_); }

  stream_socket socket_;
  // The pump waits on it while nothing is staged; feed() cancels it. After end_of_stream() it is
  // the deadline for the rest.
  boost::asio::steady_timer wake_;
  // What the shadow has not taken yet, oldest first: a chain of pipes, since one pipe holds no
  // more than pipe-max-size. `spare_` is an empty one that a tee fills before it joins the chain.
  std::deque<pipe> staged_;
  std::optional<pipe> spare_;
  std::size_t lag_, pipe_size_;
  // The connected shadow endpoint's slot, for this worker (run_mirror's endpoint_connection
  // holds the endpoint): bytes sent, live.
  endpoint_traffic_slot* meter_ = nullptr;
  bool connecting_ = true;
  bool input_done_ = false;
  std::optional<mirror_result> result_;  // set once it has ended
  std::uint64_t fed_ = 0, sent_ = 0;
};

// The mirror's own coroutine, co_spawned as the connection starts (nothing waits for it): connect
// to an endpoint of `shadow` (its policy, within `connect_timeout`), then send what is staged
// whenever the shadow takes it, until end_of_stream(); then a FIN, the shadow's replies dropped
// until it closes, and the result counted in `metrics`; bytes sent are counted as they go, on the
// endpoint's slot for worker thread `worker` (the one it runs on). It outlives its connection, and
// a reload may retire the generation that holds `shadow` and `metrics`: the shared pointers keep
// them alive (pass aliasing ones that share ownership of their holder). `client` is the client's
// address, for a shadow upstream with `source: client`.
boost::asio::awaitable<void> run_mirror(std::shared_ptr<mirror> m, std::shared_ptr<upstream> shadow,
                                        std::shared_ptr<listener_metrics> metrics,
                                        std::chrono::milliseconds connect_timeout, unsigned worker,
                                        std::optional<address> client);

}  // namespace zcproxy
