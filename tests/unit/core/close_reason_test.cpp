// Close reasons: one name each, in the order the metrics print them; the refusals and timeout
// kinds; a phase's outcome carries its value or why the connection closes.
#include "zcproxy/close_reason.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace zcproxy;

TEST_CASE("close_reason: every reason has its own name, in the metrics' order", "[close_reasons]") {
  const char* const expected[] = {"eof",
                                  "reset",
                                  "shutdown",
                                  "splice_refused",
                                  "connect_failed",
                                  "connect_timeout",
                                  "no_endpoint",
                                  "source_failed",
                                  "denied",
                                  "limit",
                                  "proxy_header",
                                  "sni_timeout",
                                  "client_hello",
                                  "no_route",
                                  "idle_timeout",
                                  "max_duration",
                                  "queue_full",
                                  "queue_timeout",
                                  "fallback"};
  REQUIRE(close_reasons.size() == std::size(expected));
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < close_reasons.size(); ++i) {
    CHECK(index_of(close_reasons[i]) == i);
    CHECK(to_string(close_reasons[i]) == expected[i]);
    seen.insert(to_string(close_reasons[i]));
  }
  CHECK(seen.size() == close_reasons.size());
}

TEST_CASE("close_reason: refusals and timeout kinds", "[close_reasons]") {
  std::set<std::string_view> refusals;
  std::size_t timeouts = 0;
  for (close_reason r : close_reasons) {
    if (is_refusal(r)) refusals.insert(to_string(r));
    if (!timeout_kind(r).empty()) ++timeouts;
  }
  CHECK(refusals == std::set<std::string_view>{"denied", "limit", "proxy_header", "sni_timeout",
                                               "client_hello", "no_route", "queue_full",
                                               "queue_timeout"});
  CHECK(timeouts == 5);
  CHECK(timeout_kind(close_reason::connect_timeout) == "connect");
  CHECK(timeout_kind(close_reason::idle_timeout) == "idle");
  CHECK(timeout_kind(close_reason::max_duration) == "max_duration");
  CHECK(timeout_kind(close_reason::sni_timeout) == "sni");
  CHECK(timeout_kind(close_reason::queue_timeout) == "queue");
}

TEST_CASE("close_reason: an outcome holds a value or why the connection closes",
          "[close_reasons]") {
  const outcome<int> ok = 7;
  REQUIRE(ok);
  CHECK(*outcome<int>(7) == 7);
  const outcome<int> closed{close_reason::no_route, "no route for server name a.example"};
  REQUIRE_FALSE(closed);
  CHECK(closed.reason() == close_reason::no_route);
  CHECK(closed.why() == "no route for server name a.example");
  const outcome<> next = closed.failure();
  CHECK_FALSE(next);
  CHECK(next.reason() == close_reason::no_route);
  CHECK(outcome<>(go_on));

  per_close_reason<int> counts;
  counts[close_reason::fallback] += 2;
  CHECK(counts.values[index_of(close_reason::fallback)] == 2);
  CHECK(counts[close_reason::eof] == 0);
}
