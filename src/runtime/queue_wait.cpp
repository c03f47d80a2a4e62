// The queue phase: a client whose upstream's endpoints are all at max_connections_per_endpoint
// waits for a slot (HAProxy's backend queue). It holds its socket and its place (shared with a
// wake in flight), nothing else: no upstream socket, no buffer, no pipe.
#include <chrono>
#include <memory>

#include "session_state.hpp"
#include "zcproxy/connection_queue.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy::detail {
namespace asio = boost::asio;

namespace {

// How a wait ended without a slot, counted by the queue.
outcome<std::size_t> refused(connection_queue& q, close_reason why) {
  if (why == close_reason::queue_full || why == close_reason::queue_timeout) q.refused(why);
  return why;
}

}  // namespace

asio::awaitable<outcome<std::size_t>> wait_for_slot(session_state& s, upstream& u,
                                                    std::uint64_t client_hash) {
  connection_queue* q = u.queue();
  if (!q) co_return close_reason::queue_full;  // no limit: nothing to wait for (not reached)
  const queue_config limits = u.config().queue.value_or(queue_config{});
  const auto entered = std::chrono::steady_clock::now();
  auto w = std::make_shared<connection_queue::waiter>(s.client.get_executor(), *s.timer, &u);
  if (!q->join(w, limits.max)) co_return refused(*q, close_reason::queue_full);
  // A client that resets while it waits leaves at once (EPOLLERR/EPOLLHUP end this wait).
  s.client.async_wait(stream_socket::wait_error, [w](boost::system::error_code ec) {
    if (ec || w->done) return;
    w->interrupted = true;
    w->timer->cancel();
  });
  const auto deadline = entered + limits.timeout;
  auto take = [&] { return u.take_slot(client_hash, upstream::clock::now()); };
  outcome<std::size_t> result = close_reason::queue_timeout;
  for (;;) {
    if (s.shutting_down || w->interrupted) {
      result = s.shutting_down ? close_reason::shutdown : close_reason::reset;
      break;
    }
    if (auto slot = q->try_take(*w, take)) {
      result = *slot;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    s.timer->expires_at(deadline);
    co_await s.timer->async_wait(use_tuple);  // a wake, the deadline or a stop
  }
  w->done = true;
  q->leave(*w);
  boost::system::error_code ec;
  s.client.cancel(ec);  // the wait for a reset
  q->waited(std::chrono::duration<double>(std::chrono::steady_clock::now() - entered).count());
  if (!result) co_return refused(*q, result.reason());
  co_return result;
}

}  // namespace zcproxy::detail
