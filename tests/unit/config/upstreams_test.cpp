// src/config/upstreams.cpp: the upstreams: section: endpoints, balance, health checks, passive
// checks and resolve:.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "zcproxy/config.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using test::errors_of;
using test::joined;
using test::with_upstream;
using zcproxy::address;
using zcproxy::balance_policy;
using zcproxy::endpoint_config;
using zcproxy::load_config_string;

TEST_CASE("endpoints take a weight in map form, a bare address weighs 1", "[config]") {
  auto c = load_config_string(with_upstream(R"(    endpoints:
      - "127.0.0.1:9000"
      - { address: "127.0.0.1:9001", weight: 3 }
      - address: "[::1]:9002"
        weight: 256
      - { address: "[::1]:9003" }
      - { weight: 1, address: "10.0.0.1:9000" }
)"));
  REQUIRE(c.upstreams.size() == 1);
  const auto& e = c.upstreams[0].endpoints;
  REQUIRE(e.size() == 5);
  CHECK(e[0] == endpoint_config{address{"127.0.0.1", 9000, false}, 1});
  CHECK(e[1] == endpoint_config{address{"127.0.0.1", 9001, false}, 3});
  CHECK(e[2] == endpoint_config{address{"::1", 9002, true}, 256});
  CHECK(e[3] == endpoint_config{address{"::1", 9003, true}, 1});
  CHECK(e[4] == endpoint_config{address{"10.0.0.1", 9000, false}, 1});
}

TEST_CASE("every balance policy is accepted and prints as written", "[config]") {
  auto [text, policy] = GENERATE(table<const char*, balance_policy>({
      {"round_robin", balance_policy::round_robin},
      {"least_conn", balance_policy::least_conn},
      {"random", balance_policy::random},
      {"source_hash", balance_policy::source_hash},
  }));
  INFO(text);
  auto c = load_config_string(with_upstream(
      "    endpoints: [\"127.0.0.1:9000\"]\n    balance: " + std::string(text) + "\n"));
  CHECK(c.upstreams[0].balance == policy);
  CHECK(zcproxy::to_string(policy) == text);
}

TEST_CASE("passive checks and connect attempts can be set", "[config]") {
  auto c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_fails: 1000
    fail_timeout: 24h
    max_connect_attempts: 1000
)"));
  const auto& u = c.upstreams[0];
  CHECK(u.max_fails == 1000);
  CHECK(u.fail_timeout == 24h);
  CHECK(u.max_connect_attempts == 1000);

  c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_fails: 0
    fail_timeout: 1ms
    max_connect_attempts: 0
)"));
  CHECK(c.upstreams[0].max_fails == 0);
  CHECK(c.upstreams[0].fail_timeout == 1ms);
  CHECK(c.upstreams[0].max_connect_attempts == 0);
}

TEST_CASE("a health_check map enables checks, unset fields take their defaults", "[config]") {
  auto c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    health_check:
      interval: 5s
      timeout: 5s
      rise: 1
      fall: 100
      send: "PING\r\n"
      expect: "+PONG"
)"));
  auto hc = c.upstreams[0].health_check;
  CHECK(hc.enabled);
  CHECK(hc.interval == 5s);
  CHECK(hc.timeout == 5s);  // equal to the interval is allowed
  CHECK(hc.rise == 1);
  CHECK(hc.fall == 100);
  CHECK(hc.send == "PING\r\n");
  CHECK(hc.expect == "+PONG");

  // An empty map and `true` both mean: check, with every default.
  for (const char* value : {"{}", "true"}) {
    INFO(value);
    c = load_config_string(with_upstream(
        "    endpoints: [\"127.0.0.1:9000\"]\n    health_check: " + std::string(value) + "\n"));
    zcproxy::health_check_config defaults;
    defaults.enabled = true;
    CHECK(c.upstreams[0].health_check == defaults);
  }
  c = load_config_string(
      with_upstream("    endpoints: [\"127.0.0.1:9000\"]\n    health_check: false\n"));
  CHECK(c.upstreams[0].health_check == zcproxy::health_check_config{});

  // Without a timeout of its own, a check on a short interval times out at the interval.
  c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    health_check: { interval: 10ms, expect: "220 " }
)"));
  hc = c.upstreams[0].health_check;
  CHECK(hc.interval == 10ms);
  CHECK(hc.timeout == 10ms);
  CHECK(hc.send.empty());
  CHECK(hc.expect == "220 ");
}

TEST_CASE("host names: a listener binds an IP literal, an endpoint may be a name", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "localhost:8080", upstream: app }
upstreams:
  app: { endpoints: ["db.internal:9000"] }
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:24: listeners[0].bind: expected an IP literal and "
                                   "port, e.g. 127.0.0.1:9000 or [::1]:9000") &&
                            Contains(R"(got "localhost:8080")") &&
                            Contains("host names are not accepted"));

  const auto c = load_config_string(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["DB.Internal:9000", {address: "svc_a.test:81", weight: 3}, "10.0.0.1:9000"] }
)");
  const auto& e = c.upstreams.at(0).endpoints;
  REQUIRE(e.size() == 3);
  CHECK(e[0].host == "db.internal");  // lower-cased
  CHECK(e[0].at.port == 9000);
  CHECK(e[0].at.ip.empty());
  CHECK(e[1].host == "svc_a.test");
  CHECK(e[1].weight == 3);
  CHECK(e[2].host.empty());
  CHECK(zcproxy::to_string(e[0]) == "db.internal:9000");

  for (const char* bad :
       {"-db.internal:9000", "db-.internal:9000", "db..internal:9000", "db.internal:0",
        "db.internal:70000", "db.internal", "db internal:80", "1.2.3:80", "db/x:80"}) {
    INFO(bad);
    const auto errs = errors_of(std::string(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: [")") + bad +
                                "\"] }\n");
    REQUIRE(errs.size() == 1);
    CHECK_THAT(errs[0], StartsWith("t.yaml:4:22: upstreams.app.endpoints[0]: expected"));
  }
  errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["db.test:80", "DB.test:80"] }
)");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Contains("duplicate endpoint db.test:80"));
}

TEST_CASE("resolve: defaults, the top level's keys, an upstream's override, and bad values",
          "[config]") {
  const std::string tail = R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["app.test:80"] }
  other: { endpoints: ["other.test:80"], resolve: { family: v6, max_interval: 30s } }
)";
  auto c = load_config_string(tail);
  CHECK(c.upstreams[0].resolve == zcproxy::resolve_config{});
  CHECK(c.upstreams[0].resolve.min_interval == std::chrono::seconds(1));
  CHECK(c.upstreams[0].resolve.max_interval == std::chrono::seconds(10));
  c = load_config_string(
      "resolve: { min_interval: 2s, resolvers: [\"127.0.0.1:5353\", \"[::1]:53\"] }\n" + tail);
  const auto& app = c.upstreams[0].resolve;
  CHECK(app.min_interval == std::chrono::seconds(2));
  REQUIRE(app.resolvers.size() == 2);
  CHECK(app.resolvers[1].to_string() == "[::1]:53");
  const auto& other = c.upstreams[1].resolve;
  CHECK(other.family == zcproxy::address_family::v6);
  CHECK(other.max_interval == std::chrono::seconds(30));
  CHECK(other.min_interval == std::chrono::seconds(2));  // the top level's
  CHECK(other.resolvers == app.resolvers);

  struct bad_case {
    std::string head, error;
  };
  const bad_case bad[] = {
      {"resolve: { min_interval: 20s }\n",
       "t.yaml:1:26: resolve: expected min_interval (20s) to be no longer than max_interval (10s)"},
      {"resolve: { family: v5 }\n", "t.yaml:1:20: resolve.family: expected one of: any, v4, v6"},
      {"resolve: { resolvers: [\"dns.test:53\"] }\n",
       "t.yaml:1:24: resolve.resolvers[0]: expected an IP literal and port"},
      {"resolve: { resolvers: \"127.0.0.1:53\" }\n",
       "t.yaml:1:23: resolve.resolvers: expected a sequence of nameservers"},
      {"resolve: { ttl: 5s }\n",
       "t.yaml:1:12: resolve.ttl: unknown key; expected one of: "
       "min_interval, max_interval, family, resolvers"},
  };
  for (const auto& b : bad) {
    INFO(b.head);
    const auto errs = errors_of(b.head + tail);
    REQUIRE(errs.size() == 1);
    CHECK_THAT(errs[0], StartsWith(b.error));
  }
}

TEST_CASE("duplicate upstream names are reported, not silently merged", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
  db: { endpoints: ["127.0.0.1:5432"] }
  app: { endpoints: ["127.0.0.1:9001"] }
)");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == R"(t.yaml:6:3: upstreams.app: duplicate upstream name "app" )"
                     "(first given at line 4); expected each upstream name once");
}

TEST_CASE("an unknown balance policy is reported", "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    balance: weighted
)"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "t.yaml:6:14: upstreams.app.balance: expected one of: round_robin, "
        R"(least_conn, random, source_hash, got "weighted")");

  errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    balance: [random]
)"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "t.yaml:6:14: upstreams.app.balance: expected one of: round_robin, "
        "least_conn, random, source_hash, got a sequence");
}

TEST_CASE("endpoint weights outside 1..256 are reported", "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints:
      - { address: "127.0.0.1:9000", weight: 0 }
      - { address: "127.0.0.1:9001", weight: 257 }
      - { address: "127.0.0.1:9002", weight: heavy }
      - { address: "127.0.0.1:9003", weight: -1 }
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 4);
  CHECK(
      errors[0] ==
      R"(t.yaml:6:46: upstreams.app.endpoints[0].weight: expected an integer from 1 to 256, got "0")");
  CHECK(errors[1] ==
        R"(t.yaml:7:46: upstreams.app.endpoints[1].weight: expected an integer from 1 to 256, )"
        R"(got "257")");
  CHECK(errors[2] ==
        R"(t.yaml:8:46: upstreams.app.endpoints[2].weight: expected an integer from 1 to 256, )"
        R"(got "heavy")");
  CHECK(errors[3] ==
        R"(t.yaml:9:46: upstreams.app.endpoints[3].weight: expected an integer from 1 to 256, )"
        R"(got "-1")");
}

TEST_CASE("endpoint maps: unknown keys, a missing address, a bad element are reported",
          "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints:
      - { address: "127.0.0.1:9000", wieght: 2 }
      - { weight: 2 }
      - ["127.0.0.1:9002"]
      - { address: "local host:9003" }
      - { address: "127.0.0.1:0" }
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 5);
  CHECK(errors[0] ==
        "t.yaml:6:38: upstreams.app.endpoints[0].wieght: unknown key; expected one "
        "of: address, weight");
  CHECK_THAT(errors[1], StartsWith("t.yaml:7:9: upstreams.app.endpoints[1].address: required key "
                                   "is missing; expected an IP literal and port"));
  CHECK(errors[2] ==
        "t.yaml:8:9: upstreams.app.endpoints[2]: expected an IP literal and port, "
        "e.g. 127.0.0.1:9000 or [::1]:9000, a host name and port, e.g. app.internal:9000, "
        "unix:/path/to.sock, or a map {address, weight}, got a sequence");
  CHECK_THAT(errors[3], StartsWith("t.yaml:9:20: upstreams.app.endpoints[3].address: expected an "
                                   "IP literal and port") &&
                            Contains(R"(got "local host:9003")"));
  CHECK_THAT(errors[4], StartsWith("t.yaml:10:20: upstreams.app.endpoints[4].address: expected a "
                                   "port from 1 to 65535"));

  errors = errors_of(with_upstream("    endpoints: \"127.0.0.1:9000\"\n"));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:5:16: upstreams.app.endpoints: expected a non-empty "
                                   "sequence of endpoints, each an IP literal and port, a host "
                                   "name and port or a map {address, weight}") &&
                            Contains(R"(got "127.0.0.1:9000")"));
}

TEST_CASE("an endpoint given twice in one upstream is reported", "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints:
      - "127.0.0.1:9000"
      - { address: "127.0.0.1:9000", weight: 2 }
      - "[::1]:9000"
      - "[::0001]:9000"
      - "127.0.0.1:9001"
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] ==
        "t.yaml:7:20: upstreams.app.endpoints[1].address: duplicate endpoint "
        "127.0.0.1:9000 (also upstreams.app.endpoints[0]); expected each address "
        "once per upstream (a weight gives an endpoint a bigger share)");
  // Addresses compare in canonical form.
  CHECK_THAT(errors[1], StartsWith("t.yaml:9:9: upstreams.app.endpoints[3]: duplicate endpoint "
                                   "[::1]:9000 (also upstreams.app.endpoints[2]); expected each "
                                   "address once per upstream"));

  // The same address in two upstreams is fine.
  auto c = load_config_string(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
  db: { endpoints: ["127.0.0.1:9000"] }
)");
  CHECK(c.upstreams.size() == 2);
}

TEST_CASE("bad health_check fields are reported", "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    health_check:
      interval: 5ms
      timeout: 2h
      rise: 0
      fall: 101
      send: { text: PING }
      expect:
      retries: 3
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 7);
  CHECK(errors[0] ==
        "t.yaml:7:17: upstreams.app.health_check.interval: expected a duration from "
        R"(10ms to 1h, got "5ms")");
  CHECK(errors[1] ==
        "t.yaml:8:16: upstreams.app.health_check.timeout: expected a duration from "
        R"(1ms to 1h, got "2h")");
  CHECK(errors[2] ==
        "t.yaml:9:13: upstreams.app.health_check.rise: expected an integer from 1 to "
        R"(100 (successes in a row that bring an endpoint back), got "0")");
  CHECK(errors[3] ==
        "t.yaml:10:13: upstreams.app.health_check.fall: expected an integer from 1 "
        R"(to 100 (failures in a row that take an endpoint out), got "101")");
  CHECK(errors[4] == "t.yaml:11:13: upstreams.app.health_check.send: expected a string, got a map");
  CHECK(errors[5] ==
        "t.yaml:12:7: upstreams.app.health_check.expect: expected a string, got an empty value");
  CHECK(errors[6] ==
        "t.yaml:13:7: upstreams.app.health_check.retries: unknown key; expected one "
        "of: interval, timeout, rise, fall, send, expect, send_proxy");
}

TEST_CASE("a health check timeout longer than its interval is reported", "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    health_check: { interval: 1s, timeout: 1500ms }
)"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "t.yaml:6:44: upstreams.app.health_check.timeout: expected a duration from "
        R"(1ms to the interval (1s), got "1500ms")");

  // Against the default interval, 2s.
  errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    health_check: { timeout: 3s }
)"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "t.yaml:6:30: upstreams.app.health_check.timeout: expected a duration from "
        R"(1ms to the interval (2s), got "3s")");
}

TEST_CASE("a health_check that is neither a map nor true/false is reported", "[config]") {
  constexpr const char* expected =
      "upstreams.app.health_check: expected a map with keys interval, timeout, rise, fall, send, "
      "expect, send_proxy, or true or false, got ";
  auto [value, where, got] = GENERATE(table<const char*, const char*, const char*>({
      {" maybe", "t.yaml:6:19: ", R"("maybe")"},
      {" [interval: 1s]", "t.yaml:6:19: ", "a sequence"},
      {"", "t.yaml:6:5: ", "an empty value"},
  }));
  auto errors = errors_of(with_upstream(
      "    endpoints: [\"127.0.0.1:9000\"]\n    health_check:" + std::string(value) + "\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == std::string(where) + expected + got);
}

TEST_CASE("bad max_fails, fail_timeout and max_connect_attempts are reported", "[config]") {
  auto errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_fails: 1001
    fail_timeout: 0ms
    max_connect_attempts: all
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK(errors[0] ==
        "t.yaml:6:16: upstreams.app.max_fails: expected an integer from 0 to 1000 "
        R"((0 = no passive checks), got "1001")");
  CHECK(
      errors[1] ==
      R"(t.yaml:7:19: upstreams.app.fail_timeout: expected a duration from 1ms to 24h, got "0ms")");
  CHECK(errors[2] ==
        "t.yaml:8:27: upstreams.app.max_connect_attempts: expected an integer from 0 "
        R"(to 1000 (0 = every endpoint once), got "all")");

  errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_fails: -1
    fail_timeout: 25h
    max_connect_attempts: [1]
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], StartsWith("t.yaml:6:16: upstreams.app.max_fails: expected an integer") &&
                            Contains(R"(got "-1")"));
  CHECK(
      errors[1] ==
      R"(t.yaml:7:19: upstreams.app.fail_timeout: expected a duration from 1ms to 24h, got "25h")");
  CHECK_THAT(errors[2], StartsWith("t.yaml:8:27: upstreams.app.max_connect_attempts: expected an "
                                   "integer") &&
                            Contains("got a sequence"));
}

TEST_CASE("source: client, a fixed IP, or none, each error saying where and what was expected",
          "[config][source]") {
  using zcproxy::source_kind;
  auto c = load_config_string(with_upstream("    endpoints: [\"127.0.0.1:9000\"]\n"));
  CHECK(c.upstreams[0].source.kind == source_kind::none);
  c = load_config_string(
      with_upstream("    endpoints: [\"127.0.0.1:9000\", \"app.test:80\"]\n    source: client\n"));
  CHECK(c.upstreams[0].source.kind == source_kind::client);
  c = load_config_string(
      with_upstream("    endpoints: [\"127.0.0.1:9000\"]\n    source: 127.0.0.5\n"));
  CHECK(c.upstreams[0].source.kind == source_kind::fixed);
  CHECK(c.upstreams[0].source.fixed.ip == "127.0.0.5");
  CHECK(c.upstreams[0].source.fixed.port == 0);
  c = load_config_string(
      with_upstream("    endpoints: [\"[::1]:9000\"]\n    source: \"::0001\"\n"));
  CHECK(c.upstreams[0].source.fixed.ip == "::1");
  CHECK(c.upstreams[0].source.fixed.v6);

  for (const char* bad : {"clients", "127.0.0.5:80", "[::1]", "1.2.3", "", "unix:/x.sock"}) {
    INFO(bad);
    const auto errs = errors_of(with_upstream(
        "    endpoints: [\"127.0.0.1:9000\"]\n    source: \"" + std::string(bad) + "\"\n"));
    REQUIRE(errs.size() == 1);
    CHECK(errs[0] ==
          "t.yaml:6:13: upstreams.app.source: expected client (the client's own "
          "address: transparent proxying) or an IP literal without a port, e.g. "
          "10.0.0.5 or 2001:db8::5, got \"" +
              std::string(bad) + "\"");
  }
  // What source cannot do with the endpoints: a Unix socket has no source address, and a fixed
  // IP cannot reach an endpoint of the other family.
  auto errs = errors_of(with_upstream(
      "    endpoints: [\"127.0.0.1:9000\", \"unix:/run/app.sock\"]\n    source: client\n"));
  REQUIRE(errs.size() == 1);
  CHECK_THAT(errs[0], StartsWith("t.yaml:6:13: upstreams.app.source: expected an upstream whose "
                                 "endpoints are all IP endpoints") &&
                          Contains("endpoint unix:/run/app.sock is a Unix socket"));
  errs = errors_of(with_upstream(
      "    source: 127.0.0.5\n    endpoints: [\"127.0.0.1:9000\", \"[::1]:9000\"]\n"));
  REQUIRE(errs.size() == 1);
  CHECK_THAT(errs[0], StartsWith("t.yaml:5:13: upstreams.app.source:") &&
                          Contains("endpoint [::1]:9000 is IPv6, the source IPv4"));
}

TEST_CASE("max_connections_per_endpoint and queue: limit, queue bounds, defaults",
          "[config][queue]") {
  auto c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_connections_per_endpoint: 100
    queue: { max: 50, timeout: 2s }
)"));
  const auto& u = c.upstreams[0];
  CHECK(u.max_connections_per_endpoint == 100);
  REQUIRE(u.queue);
  CHECK(u.queue->max == 50);
  CHECK(u.queue->timeout == 2s);

  // A limit alone: no queue (a client finding every endpoint full is refused at once).
  c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_connections_per_endpoint: 1
)"));
  CHECK(c.upstreams[0].max_connections_per_endpoint == 1);
  CHECK_FALSE(c.upstreams[0].queue);
  // queue: {} takes the defaults: max 0 (refuse at once), timeout 5s.
  c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_connections_per_endpoint: 1
    queue: {}
)"));
  REQUIRE(c.upstreams[0].queue);
  CHECK(c.upstreams[0].queue->max == 0);
  CHECK(c.upstreams[0].queue->timeout == 5s);
  // Absent: no limit, no queue.
  c = load_config_string(with_upstream("    endpoints: [\"127.0.0.1:9000\"]\n"));
  CHECK(c.upstreams[0].max_connections_per_endpoint == 0);
  CHECK_FALSE(c.upstreams[0].queue);
}

TEST_CASE("a queue without max_connections_per_endpoint, and bad queue values, are reported",
          "[config][queue]") {
  auto errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    queue: { max: 10 }
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:6:5: upstreams.app.queue: expected "
                                   "max_connections_per_endpoint (1 or more) beside queue") &&
                            Contains("without it none ever is"));
  errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_connections_per_endpoint: 0
    queue: { max: 10 }
)"));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:7:5: upstreams.app.queue: expected "
                                   "max_connections_per_endpoint"));

  errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    max_connections_per_endpoint: many
    queue: { max: -1, timeout: 0s, size: 3 }
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 4);
  CHECK_THAT(errors[0],
             StartsWith("t.yaml:6:35: upstreams.app.max_connections_per_endpoint: expected an "
                        "integer from 0 to 1000000 (0 = no limit)"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:7:19: upstreams.app.queue.max: expected an integer") &&
                            Contains(R"(got "-1")"));
  CHECK(
      errors[2] ==
      R"(t.yaml:7:32: upstreams.app.queue.timeout: expected a duration from 1ms to 1h, got "0s")");
  CHECK_THAT(errors[3], StartsWith("t.yaml:7:36: upstreams.app.queue.size: unknown key; expected "
                                   "one of: max, timeout"));
}

TEST_CASE("slow_start and hash_balance_factor: read, off when absent, bad values reported",
          "[config]") {
  auto c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
)"));
  CHECK(c.upstreams[0].slow_start == 0ms);
  CHECK(c.upstreams[0].hash_balance_factor == 0);
  c = load_config_string(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    balance: source_hash
    slow_start: 30s
    hash_balance_factor: 150
)"));
  CHECK(c.upstreams[0].slow_start == 30s);
  CHECK(c.upstreams[0].hash_balance_factor == 150);

  auto errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    balance: source_hash
    slow_start: 2h
    hash_balance_factor: 99
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] == R"(t.yaml:7:17: upstreams.app.slow_start: expected a duration from 0s to 1h )"
                     R"((0s = off), got "2h")");
  CHECK(errors[1] ==
        "t.yaml:8:26: upstreams.app.hash_balance_factor: expected an integer from "
        R"(100 to 1000 (percent of the mean load; absent = off), got "99")");

  errors = errors_of(with_upstream(R"(    endpoints: ["127.0.0.1:9000"]
    hash_balance_factor: 150
    balance: least_conn
    slow_start: 30
)"));
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] ==
        "t.yaml:6:26: upstreams.app.hash_balance_factor: expected balance: "
        "source_hash beside it (it bounds source_hash's loads), got balance: "
        "least_conn");
  CHECK_THAT(errors[1], StartsWith("t.yaml:8:17: upstreams.app.slow_start: expected a duration"));
}
