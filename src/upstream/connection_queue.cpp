#include "zcproxy/connection_queue.hpp"

#include <boost/asio/post.hpp>

namespace zcproxy {

bool connection_queue::join(const std::shared_ptr<waiter>& w, unsigned max) {
  std::lock_guard lock(mutex_);
  if (fifo_.size() >= max) return false;
  w->place = fifo_.insert(fifo_.end(), w);
  w->queued = true;
  // seq_cst, as slot_freed's read: either a slot freed before this is seen by the waiter's
  // first try (it is woken at once when first), or the freeing sees this waiter and wakes it.
  waiting_.fetch_add(1, std::memory_order_seq_cst);
  if (fifo_.size() == 1) w->woken = true;  // its caller tries at once, no post needed
  return true;
}

std::optional<std::size_t> connection_queue::try_take(
    waiter& w, const std::function<std::optional<std::size_t>()>& take) {
  std::lock_guard lock(mutex_);
  if (!w.queued || !w.woken) return std::nullopt;
  w.woken = false;
  // Under the mutex: a slot that frees while this waiter tries wakes it again after it has
  // failed (wake_next waits for the mutex), so no freed slot is lost.
  auto slot = take();
  if (!slot) {
    wake_after(std::next(w.place), w.owner);
    return std::nullopt;
  }
  w.queued = false;
  fifo_.erase(w.place);
  waiting_.fetch_sub(1, std::memory_order_seq_cst);
  return slot;
}

void connection_queue::leave(waiter& w) {
  std::lock_guard lock(mutex_);
  if (!w.queued) return;
  w.queued = false;
  const auto next = fifo_.erase(w.place);
  waiting_.fetch_sub(1, std::memory_order_seq_cst);
  // A wake it did not use is a slot nobody takes otherwise: the next waiter gets it.
  if (w.woken) wake_after(next, nullptr);
}

void connection_queue::wake_next() {
  std::lock_guard lock(mutex_);
  wake_after(fifo_.begin(), nullptr);
}

void connection_queue::wake_after(std::list<std::shared_ptr<waiter>>::iterator from,
                                  const void* other_than) {
  for (auto it = from; it != fifo_.end(); ++it) {
    if ((*it)->woken || (other_than && (*it)->owner == other_than)) continue;
    wake(*it);
    return;
  }
}

void connection_queue::wake(const std::shared_ptr<waiter>& w) {
  w->woken = true;
  // On the waiter's own thread, which alone touches its timer; a waiter that has left by then
  // is not touched.
  boost::asio::post(w->executor, [w] {
    if (!w->done) w->timer->cancel();
  });
}

void connection_queue::waited(double seconds) {
  add_duration(waits_, wait_sum_us_, seconds);
}

void connection_queue::refused(close_reason why) {
  (why == close_reason::queue_full ? refused_full_ : refused_timeout_)
      .fetch_add(1, std::memory_order_relaxed);
}

connection_queue::counts connection_queue::read() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  counts c;
  c.waiting = waiting_.load(relaxed);
  c.refused_full = refused_full_.load(relaxed);
  c.refused_timeout = refused_timeout_.load(relaxed);
  for (std::size_t i = 0; i < c.waits.size(); ++i) c.waits[i] = waits_[i].load(relaxed);
  c.wait_sum = static_cast<double>(wait_sum_us_.load(relaxed)) / 1e6;
  return c;
}

}  // namespace zcproxy
