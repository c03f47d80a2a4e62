#include "runtime/connect_policy.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "zcproxy/balancer.hpp"
#include "zcproxy/close_reason.hpp"
#include "zcproxy/config.hpp"

using zcproxy::balance_policy;
using zcproxy::close_reason;
using zcproxy::go_on;
using zcproxy::outcome;
using zcproxy::detail::client_hash_for;
using zcproxy::detail::connect_report;
using zcproxy::detail::refusal;
using zcproxy::detail::refusal_for;
using zcproxy::detail::report_for;

TEST_CASE("connect_policy: only source_hash gets the client's hash", "[connect_policy]") {
  const std::string ip_key("\xc0\x00\x02\x07", 4);  // 192.0.2.7
  CHECK(client_hash_for(balance_policy::source_hash, ip_key) ==
        zcproxy::balancer::hash_client(ip_key));
  CHECK(client_hash_for(balance_policy::source_hash, ip_key) !=
        client_hash_for(balance_policy::source_hash, std::string("\xc0\x00\x02\x08", 4)));
  for (auto p : {balance_policy::round_robin, balance_policy::least_conn, balance_policy::random})
    CHECK(client_hash_for(p, ip_key) == 0);
}

TEST_CASE("connect_policy: what the log gets of a connect's outcome", "[connect_policy]") {
  CHECK(report_for(outcome<>(go_on)) == connect_report::none);
  // A stop is no endpoint's fault.
  CHECK(report_for(outcome<>(close_reason::shutdown)) == connect_report::none);
  // No endpoint was usable, so none was tried: nothing to say about this client.
  CHECK(report_for(outcome<>(close_reason::no_endpoint)) == connect_report::all_down);
  CHECK(report_for(outcome<>(close_reason::connect_failed, "127.0.0.1:9: refused")) ==
        connect_report::unreachable);
  CHECK(report_for(outcome<>(close_reason::connect_timeout, "127.0.0.1:9: timed out")) ==
        connect_report::unreachable);
  // Every endpoint at its limit is no endpoint's failure: the queue's metrics count it.
  CHECK(report_for(outcome<>(close_reason::queue_full)) == connect_report::none);
  CHECK(report_for(outcome<>(close_reason::queue_timeout)) == connect_report::none);
}

TEST_CASE("connect_policy: the fallback response only when no endpoint could be reached",
          "[connect_policy]") {
  for (auto r :
       {close_reason::no_endpoint, close_reason::connect_failed, close_reason::connect_timeout,
        close_reason::queue_full, close_reason::queue_timeout}) {
    INFO(to_string(r));
    CHECK(refusal_for(r, true) == refusal::fallback);
    CHECK(refusal_for(r, false) == refusal::reset);
  }
  for (auto r : {close_reason::denied, close_reason::limit, close_reason::no_route,
                 close_reason::proxy_header, close_reason::shutdown, close_reason::reset}) {
    INFO(to_string(r));
    CHECK(refusal_for(r, true) == refusal::reset);
    CHECK(refusal_for(r, false) == refusal::reset);
  }
}
