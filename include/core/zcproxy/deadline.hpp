// An operation raced against a timer set to a deadline: `co_await (op || timer.async_wait(...))`,
// with the variant it gives read in one place. The timer's expiry is left as it was, so a caller
// that sets one deadline for a whole step (a preface, a fallback response) can wait on it again.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <optional>
#include <utility>

#include "zcproxy/use_tuple.hpp"

namespace zcproxy {

// How a wait within a deadline ended: the operation's result, or the timer's end.
template <class T>
struct deadline_result {
  std::optional<T> done;  // the operation's result, when it ended first
  // Otherwise why the timer's wait ended: empty when the deadline passed, operation_aborted when
  // the timer was cancelled (a stop, or a wake-up).
  boost::system::error_code timer_error;

  explicit operator bool() const { return done.has_value(); }
  bool expired() const { return !done && !timer_error; }
};

// Waits for `op` until `timer`'s expiry; whichever ends first cancels the other (the operation's
// cancellation, not a close: a socket stays open). `timer` must outlive the wait.
template <class T>
boost::asio::awaitable<deadline_result<T>> within(boost::asio::awaitable<T> op,
                                                  boost::asio::steady_timer& timer) {
  using namespace boost::asio::experimental::awaitable_operators;
  auto r = co_await (std::move(op) || timer.async_wait(use_tuple));
  if (r.index() == 0) co_return deadline_result<T>{std::move(std::get<0>(r)), {}};
  co_return deadline_result<T>{std::nullopt, std::get<0>(std::get<1>(r))};
}

// The same, with `timer` set to expire `limit` from now first.
template <class T>
boost::asio::awaitable<deadline_result<T>> within(boost::asio::awaitable<T> op,
                                                  boost::asio::steady_timer& timer,
                                                  std::chrono::milliseconds limit) {
  timer.expires_after(limit);
  return within(std::move(op), timer);
}

}  // namespace zcproxy
