// One worker thread's world: its io_context, its acceptors (one per listener, SO_REUSEPORT), its
// relay resources and the sessions it runs. Touched only from its own thread once started, except
// through post(). Nothing on the data path is shared between workers.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "generation.hpp"
#include "listener_state.hpp"
#include "zcproxy/counters.hpp"
#include "zcproxy/relay.hpp"
#include "zcproxy/socket.hpp"

namespace zcproxy {

class upstream;

// A session as the worker sees it: something to stop when the server shuts down.
struct session_handle {
  virtual void stop() = 0;
  // Close the session if its idle or duration timeout has passed at `now`.
  virtual void check_timeouts(std::chrono::steady_clock::time_point now) = 0;

 protected:
  ~session_handle() = default;

 private:
  friend class session_list;
  session_handle* prev_ = nullptr;
  session_handle* next_ = nullptr;
};

// The sessions a worker runs, linked through themselves: no node allocated per connection.
class session_list {
 public:
  void push(session_handle* s) {
    s->next_ = head_;
    if (head_) head_->prev_ = s;
    head_ = s;
    ++size_;
  }
  void erase(session_handle* s) {
    (s->prev_ ? s->prev_->next_ : head_) = s->next_;
    if (s->next_) s->next_->prev_ = s->prev_;
    s->prev_ = s->next_ = nullptr;
    --size_;
  }
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // f may erase the session it is given (not another).
  template <class F>
  void for_each(F f) {
    for (session_handle* s = head_; s;) f(std::exchange(s, s->next_));
  }

 private:
  session_handle* head_ = nullptr;
  std::size_t size_ = 0;
};

// A listener on one worker. Its socket outlives reloads that keep the listener's address (the id
// stays); the settings it hands to new sessions are those of the current generation.
struct bound_listener {
  std::uint64_t id;
  std::shared_ptr<const generation> gen;
  const listener_config* config;  // in gen->cfg
  upstream* target;               // in gen
  const acl* access;              // in gen
  listener_state* state;          // in gen
  stream_acceptor acceptor;
  boost::asio::steady_timer backoff;  // between accept retries when out of fds
};

struct worker {
  worker(const relay_config& relay, unsigned index);

  std::shared_ptr<const generation> gen;  // the current one (only on this thread), from adopt()
  const unsigned index;
  boost::asio::io_context io{1};
  relay_resources relay;                // from the first config: a restart changes it
  std::list<bound_listener> listeners;  // a listener leaves once its accept loop has ended
  session_list sessions;
  boost::asio::steady_timer drain_timer{io};
  // Every sweep_interval while sessions run, each one's timeouts are checked: one timer per
  // worker instead of one per connection.
  static constexpr std::chrono::milliseconds sweep_interval{100};
  boost::asio::steady_timer sweep_timer{io};
  bool sweeping = false;
  // Sessions open at once since this thread last went idle; past trim_after_sessions, going idle
  // returns freed memory to the system (malloc_trim).
  std::size_t peak_sessions = 0;
  static constexpr std::size_t trim_after_sessions = 256;
  bool draining = false;
  // The listening sockets went to another process (a take-over): what this worker accepted
  // before it stopped is served, and the drain waits for the accept loops to end.
  bool handed_over = false;
  // Read by other threads (server::snapshot), written by this one.
  std::atomic<std::size_t> session_count{0};
  std::atomic<std::uint64_t> bytes_spliced{0};  // by the sessions that have ended
  std::atomic<std::uint64_t> bytes_copied{0};

  // Take over `next`: listeners in `plan` keep running with its settings or start; the others
  // stop accepting (their open sessions run on). Call on the worker's thread, or before it runs.
  void adopt(std::shared_ptr<const generation> next, std::vector<listener_plan> plan);
  // Stop accepting; close the sessions at once (now) or after drain_timeout.
  void shutdown(bool now);
  // Draining, and nothing left to serve: end the drain (the io_context then runs out of work).
  void settle_drain();
  // A session with timeouts runs: make sure the sweep does.
  void need_sweep();
  // Called by a session as it starts and as it ends.
  void session_started(session_handle* s);
  void session_ended(session_handle* s);
};

}  // namespace zcproxy
