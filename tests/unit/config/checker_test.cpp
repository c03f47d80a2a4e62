// src/config/checker.cpp: what every section shares: unknown, duplicate and missing keys, the
// value checks (addresses, sizes, durations, timeouts) and errors reported at once, in file order.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "zcproxy/config.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using test::errors_of;
using test::joined;
using test::minimal;
using zcproxy::config_error;
using zcproxy::load_config_string;

TEST_CASE("unknown keys are reported at every level", "[config]") {
  auto errors = errors_of(R"(log: { level: info, colour: true }
relay:
  engine: auto
  pipe_sz: 64KiB
listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app, tls: true }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"], weight: 2 }
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 4);
  CHECK(errors[0] ==
        "t.yaml:1:21: log.colour: unknown key; expected one of: level, access_log, "
        "access_format, access_file, on_connect, interval");
  CHECK_THAT(errors[1], StartsWith("t.yaml:4:3: relay.pipe_sz: unknown key") &&
                            Contains("expected one of: engine, pipe_size, max_pipes, buffer_size"));
  CHECK(errors[2] ==
        "t.yaml:6:57: listeners[0].tls: unknown key; expected one of: name, bind, "
        "upstream, connect_timeout, idle_timeout, max_connection_duration, "
        "allow, deny, max_connections, max_connections_per_ip, accept_proxy, proxy_timeout, "
        "rate_limit, routes, sni_timeout, non_tls, fallback_response, mirror");
  CHECK(errors[3] ==
        "t.yaml:8:41: upstreams.app.weight: unknown key; expected one of: endpoints, "
        "balance, hash_balance_factor, slow_start, health_check, max_fails, fail_timeout, "
        "max_connect_attempts, "
        "connect_timeout, idle_timeout, max_connection_duration, resolve, send_proxy, source, "
        "max_connections_per_endpoint, queue");
}

TEST_CASE("a scalar where a map is expected is a type error", "[config]") {
  auto errors = errors_of(std::string("log: debug\nrelay: [copy]\n") + minimal);
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] ==
        R"(t.yaml:1:6: log: expected a map with keys level, access_log, access_format, )"
        R"(access_file, on_connect, interval, got "debug")");
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:8: relay: expected a map with keys engine") &&
                            Contains("got a sequence"));
}

TEST_CASE("an unbracketed IPv6 address and a missing port are rejected", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "::1:8080", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1"] }
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:24: listeners[0].bind: expected an IP literal") &&
                            Contains("an IPv6 address must be in brackets, e.g. [::1]:9000"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:4:22: upstreams.app.endpoints[0]: expected an IP "
                                   "literal") &&
                            Contains("missing ':port'"));
}

TEST_CASE("ports out of range are rejected, and port 0 is for listeners only", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:65536", upstream: app }
  - { name: any, bind: "127.0.0.1:0", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:0", "[::1]:99999"] }
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:24: listeners[0].bind: ") &&
                            Contains("port 65536 is out of range 0..65535"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:5:22: upstreams.app.endpoints[0]: expected a port "
                                   "from 1 to 65535") &&
                            Contains(R"(got "127.0.0.1:0")"));
  CHECK_THAT(errors[2], StartsWith("t.yaml:5:37: upstreams.app.endpoints[1]: ") &&
                            Contains("port 99999 is out of range"));
}

TEST_CASE("a key given twice is reported", "[config]") {
  auto errors = errors_of(std::string("threads: 2\nthreads: 4\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(R"(t.yaml:2:1: threads: duplicate key "threads")") &&
                            Contains("first given at line 1"));
}

TEST_CASE("malformed and out-of-range sizes are reported", "[config]") {
  auto errors = errors_of(std::string(R"(relay:
  pipe_size: 1XB
  buffer_size: 128MiB
  max_pipes: lots
)") + minimal);
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:14: relay.pipe_size: expected a size in bytes, e.g. "
                                   "65536, 64KiB or 1MiB") &&
                            Contains(R"(got "1XB")"));
  CHECK(errors[1] == R"(t.yaml:3:16: relay.buffer_size: expected a size from 1KiB to 64MiB, )"
                     R"(got "128MiB")");
  CHECK_THAT(errors[2], StartsWith("t.yaml:4:14: relay.max_pipes: expected an integer from 0 to "
                                   "1000000") &&
                            Contains(R"(got "lots")"));

  errors = errors_of(std::string("relay: { pipe_size: 1KiB }\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:21: relay.pipe_size: expected a size from 4KiB to "
                                   "1GiB"));
}

TEST_CASE("durations need a unit and a sane range", "[config]") {
  auto errors = errors_of(R"(drain_timeout: 10
listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app:
    endpoints: ["127.0.0.1:9000"]
    connect_timeout: 0ms
  db:
    endpoints: ["127.0.0.1:5432"]
    connect_timeout: -3s
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:16: drain_timeout: expected a duration with a unit, "
                                   "e.g. 500ms, 10s, 1m or 1h") &&
                            Contains(R"(got "10")"));
  CHECK(errors[1] == R"(t.yaml:7:22: upstreams.app.connect_timeout: expected a duration from )"
                     R"(1ms to 1h, got "0ms")");
  CHECK_THAT(errors[2], StartsWith("t.yaml:10:22: upstreams.db.connect_timeout: expected a "
                                   "duration with a unit"));

  errors = errors_of(std::string("drain_timeout: 25h\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        R"(t.yaml:1:16: drain_timeout: expected a duration from 0s to 24h, got "25h")");
}

TEST_CASE("missing required keys point at the map that lacks them", "[config]") {
  auto errors = errors_of(R"(listeners:
  - name: web
    upstream: app
  - { bind: "127.0.0.1:8081" }
upstreams:
  app:
    connect_timeout: 1s
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 4);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:5: listeners[0].bind: required key is missing; "
                                   "expected an IP literal and port"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:4:5: listeners[1].name: required key is missing"));
  CHECK_THAT(errors[2], StartsWith("t.yaml:4:5: listeners[1].upstream: required key is missing"));
  CHECK_THAT(errors[3], StartsWith("t.yaml:7:5: upstreams.app.endpoints: required key is "
                                   "missing; expected a non-empty sequence of endpoints"));
}

TEST_CASE("listener and upstream timeouts out of range or malformed are reported", "[config]") {
  auto errors = errors_of(R"(listeners:
  - name: web
    bind: "127.0.0.1:8080"
    upstream: app
    connect_timeout: 0ms
    idle_timeout: 169h
    max_connection_duration: 721h
upstreams:
  app:
    endpoints: ["127.0.0.1:9000"]
    connect_timeout: 2h
    idle_timeout: 10
    max_connection_duration: [1h]
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 6);
  CHECK(errors[0] ==
        "t.yaml:5:22: listeners[0].connect_timeout: expected a duration from 1ms to "
        R"(1h, got "0ms")");
  CHECK(errors[1] ==
        "t.yaml:6:19: listeners[0].idle_timeout: expected a duration from 0s to 168h "
        R"((7 days; 0s = no idle timeout), got "169h")");
  CHECK(errors[2] ==
        "t.yaml:7:30: listeners[0].max_connection_duration: expected a duration from "
        R"(0s to 720h (30 days; 0s = no limit), got "721h")");
  CHECK(errors[3] ==
        "t.yaml:11:22: upstreams.app.connect_timeout: expected a duration from 1ms "
        R"(to 1h, got "2h")");
  CHECK_THAT(errors[4], StartsWith("t.yaml:12:19: upstreams.app.idle_timeout: expected a duration "
                                   "with a unit") &&
                            Contains(R"(got "10")"));
  CHECK_THAT(errors[5], StartsWith("t.yaml:13:30: upstreams.app.max_connection_duration: expected "
                                   "a duration with a unit") &&
                            Contains("got a sequence"));
}

TEST_CASE("every problem is reported at once, in file order", "[config]") {
  auto errors = errors_of(R"(threads: many
relay: { engine: fast, pipe_size: 1TiB }
drain_timeout: 5
listeners:
  - { name: web, bind: "localhost:80", upstream: api }
  - { name: web, bind: "127.0.0.1:80", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:99999"], connect_timeout: 2h }
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 9);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:10: threads: "));
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:18: relay.engine: "));
  CHECK_THAT(errors[2], StartsWith("t.yaml:2:35: relay.pipe_size: "));
  CHECK_THAT(errors[3], StartsWith("t.yaml:3:16: drain_timeout: "));
  CHECK_THAT(errors[4], StartsWith("t.yaml:5:24: listeners[0].bind: "));
  CHECK_THAT(errors[5], StartsWith("t.yaml:5:50: listeners[0].upstream: "));
  CHECK_THAT(errors[6], StartsWith("t.yaml:6:13: listeners[1].name: "));
  CHECK_THAT(errors[7], StartsWith("t.yaml:8:22: upstreams.app.endpoints[0]: "));
  CHECK_THAT(errors[8], StartsWith("t.yaml:8:59: upstreams.app.connect_timeout: "));

  // what() carries every line, so a caller that only logs what() loses nothing.
  try {
    load_config_string("threads: x\nlog: 1\n", "t.yaml");
    FAIL("accepted");
  } catch (const config_error& e) {
    REQUIRE(e.errors().size() == 4);
    std::string expected;
    for (const auto& line : e.errors()) expected += (expected.empty() ? "" : "\n") + line;
    CHECK(std::string(e.what()) == expected);
  }
}
