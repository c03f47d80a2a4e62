// The clients waiting for a slot on an upstream whose usable endpoints are all at
// max_connections_per_endpoint (HAProxy's backend queue, maxqueue and timeout queue): first come,
// first served across every worker thread. One per upstream, shared by every worker and carried
// over a reload to the upstream of the same name, so a slot freed by an old generation's
// connection wakes a client of the new one. A small mutex guards the FIFO; a connection that
// does not queue reads only waiting() (an atomic), and an upstream without a limit has none.
//
// A waiter is woken (a post to its own executor that cancels its timer) when a slot frees and it
// is the oldest waiter not yet woken; it then tries to take a slot (try_take). A client that
// arrives while others wait joins behind them instead of taking a slot that frees meanwhile.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "zcproxy/close_reason.hpp"
#include "zcproxy/counters.hpp"

namespace zcproxy {

class connection_queue {
 public:
  // One client's place in the queue. Its session holds it in a shared_ptr, as does a wake in
  // flight to it, so a wake that comes after it left touches nothing of the session's.
  struct waiter {
    waiter(boost::asio::any_io_executor ex, boost::asio::steady_timer& t, const void* owner)
        : executor(std::move(ex)), timer(&t), owner(owner) {}
    boost::asio::any_io_executor executor;  // where a wake runs
    boost::asio::steady_timer* timer;       // cancelled by a wake; its owner's, on its thread
    const void* owner;                      // the upstream object it takes slots of
    // The waiter's own thread only: it has left, and `timer` may be gone.
    bool done = false;
    // Set by its owner's watchers (the client went away), on its thread.
    bool interrupted = false;

   private:
    friend class connection_queue;
    // Guarded by the queue's mutex.
    bool woken = false;   // a slot freed for it and it has not tried yet
    bool queued = false;  // in the FIFO
    std::list<std::shared_ptr<waiter>>::iterator place;
  };

  // Joins at the back, unless `max` clients wait already (then false). A waiter that joins an
  // empty queue is woken at once: a slot may have freed since its caller found none.
  bool join(const std::shared_ptr<waiter>& w, unsigned max);
  // A woken waiter's turn: `take` tries to take a slot (returning its endpoint); taken, the
  // waiter leaves the queue. Not woken, or nothing taken: nullopt, and the waiter waits on. A
  // failure passes the wake to the next waiter of another upstream object (another generation),
  // whose endpoints may differ.
  std::optional<std::size_t> try_take(waiter& w,
                                      const std::function<std::optional<std::size_t>()>& take);
  // Leaves the queue (timed out, stopped, client gone). A wake it had not used goes to the next.
  void leave(waiter& w);
  // A slot has freed: wake the oldest waiter not yet woken, if any. Call after the slot's count
  // went down (the order matters: see join).
  void slot_freed() {
    if (waiting_.load(std::memory_order_seq_cst) != 0) wake_next();
  }

  // Clients waiting now.
  std::size_t waiting() const { return waiting_.load(std::memory_order_seq_cst); }

  // Metrics, carried over reloads with the queue. A queued client's wait, whatever ended it.
  void waited(double seconds);
  void refused(close_reason why);  // queue_full or queue_timeout
  struct counts {
    std::size_t waiting = 0;
    std::uint64_t refused_full = 0, refused_timeout = 0;
    std::array<std::uint64_t, duration_buckets.size() + 1> waits{};  // per bucket, last +Inf
    double wait_sum = 0;                                             // seconds
  };
  counts read() const;

 private:
  void wake_next();  // locks
  void wake_after(std::list<std::shared_ptr<waiter>>::iterator from,
                  const void* other_than);             // mutex held
  static void wake(const std::shared_ptr<waiter>& w);  // mutex held

  std::mutex mutex_;
  std::list<std::shared_ptr<waiter>> fifo_;
  std::atomic<std::size_t> waiting_{0};
  std::atomic<std::uint64_t> refused_full_{0}, refused_timeout_{0};
  std::array<std::atomic<std::uint64_t>, duration_buckets.size() + 1> waits_{};
  std::atomic<std::uint64_t> wait_sum_us_{0};
};

}  // namespace zcproxy
