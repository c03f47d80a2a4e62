// within(): the operation's result when it ends first, expired when the deadline passes first,
// the timer's error (not expired) when the timer is cancelled, and the deadline left as it was.
#include "zcproxy/deadline.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <tuple>

using namespace std::chrono_literals;
namespace asio = boost::asio;
using zcproxy::deadline_result;
using zcproxy::use_tuple;
using zcproxy::within;

namespace {

using wait_result = deadline_result<std::tuple<boost::system::error_code>>;

// Races `op` (a timer's wait, expiring after `op_after`) against `deadline`, set `limit` from now;
// `cancel_after`, when given, cancels the deadline's timer that long after the start.
wait_result race(std::chrono::milliseconds op_after, std::chrono::milliseconds limit,
                 std::optional<std::chrono::milliseconds> cancel_after = std::nullopt) {
  asio::io_context io;
  asio::steady_timer op(io, op_after), deadline(io), canceller(io);
  std::optional<wait_result> out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        out = co_await within(op.async_wait(use_tuple), deadline, limit);
        canceller.cancel();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  if (cancel_after) {
    canceller.expires_after(*cancel_after);
    canceller.async_wait([&](boost::system::error_code ec) {
      if (!ec) deadline.cancel();
    });
  }
  io.run_for(5s);
  REQUIRE(out);
  return *out;
}

}  // namespace

TEST_CASE("within: an operation that ends first gives its result", "[deadline]") {
  const auto start = std::chrono::steady_clock::now();
  const wait_result r = race(10ms, 3000ms);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  REQUIRE(r);
  CHECK_FALSE(std::get<0>(*r.done));
  CHECK_FALSE(r.expired());
}

TEST_CASE("within: a deadline that passes first is expired, at the deadline", "[deadline]") {
  const auto start = std::chrono::steady_clock::now();
  const wait_result r = race(3000ms, 100ms);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(r);
  CHECK(r.expired());
  CHECK_FALSE(r.timer_error);
  CHECK(took >= 100ms);
  CHECK(took < 2s);
}

TEST_CASE("within: a cancelled timer ends the wait at once, not as expired", "[deadline]") {
  const auto start = std::chrono::steady_clock::now();
  const wait_result r = race(3000ms, 3000ms, 50ms);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK_FALSE(r);
  CHECK_FALSE(r.expired());
  CHECK(r.timer_error == asio::error::operation_aborted);
}

TEST_CASE("within: the deadline stays for the next wait on the same timer", "[deadline]") {
  asio::io_context io;
  asio::steady_timer first(io, 10ms), second(io, 3000ms), deadline(io);
  std::optional<wait_result> a, b;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        a = co_await within(first.async_wait(use_tuple), deadline, 200ms);
        b = co_await within(second.async_wait(use_tuple), deadline);
        second.cancel();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run_for(5s);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a);
  CHECK(b->expired());
  CHECK(took >= 200ms);
  CHECK(took < 2s);
}
