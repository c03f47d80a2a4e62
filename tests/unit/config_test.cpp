#include "zcproxy/config.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "support/process.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using zcproxy::address;
using zcproxy::balance_policy;
using zcproxy::config_error;
using zcproxy::endpoint_config;
using zcproxy::engine_mode;
using zcproxy::load_config_string;

namespace {

// The smallest valid listeners/upstreams pair; tests append it to focus on one other key.
constexpr const char* minimal = R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)";

// The binary, started with `yaml` as its config file, refuses to start: exit code 2, and every
// one of `errors` on stderr (naming the file instead of t.yaml).
void check_binary_refuses(const std::string& yaml, const std::vector<std::string>& errors) {
  test::temp_dir d;
  const std::string path = d.file("t.yaml");
  std::ofstream(path) << yaml;
  test::process zc({"-c", path}, d.file("out"), d.file("err"));
  CHECK(zc.wait() == 2);
  const std::string err = test::slurp(d.file("err"));
  CHECK_THAT(err, StartsWith("zcproxy: invalid config:\n"));
  for (std::string e : errors) {
    if (e.rfind("t.yaml:", 0) == 0) e.replace(0, 6, path);
    CHECK_THAT(err, Contains("  " + e + "\n"));
  }
}

// Errors reported for `yaml`, named "t.yaml" in messages; fails the test if it was accepted.
// Every config refused here is also refused by the binary at start-up, with the same errors.
std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    load_config_string(yaml, "t.yaml");
  } catch (const config_error& e) {
    check_binary_refuses(yaml, e.errors());
    return e.errors();
  }
  FAIL("config was accepted:\n" << yaml);
  return {};
}

// A valid config around one upstream `app` whose keys are `body` (indented four spaces, from line
// 5 of the document), so a test's line:col are easy to read off.
std::string with_upstream(const std::string& body) {
  return "listeners:\n  - { name: web, bind: \"127.0.0.1:8080\", upstream: app }\nupstreams:\n"
         "  app:\n" +
         body;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

// ---- valid configs ----------------------------------------------------------------------------

TEST_CASE("the example config parses with the documented values", "[config]") {
  auto c = zcproxy::load_config_file(ZCPROXY_SOURCE_DIR "/conf/zcproxy.yaml");
  CHECK(c.source == ZCPROXY_SOURCE_DIR "/conf/zcproxy.yaml");
  CHECK(c.threads == 0);
  CHECK(c.effective_threads() >= 1);
  CHECK(c.log.level == "info");
  CHECK(c.log.access_log);
  CHECK(c.relay.engine == engine_mode::adaptive);
  CHECK(c.relay.pipe_size == 1u << 20);
  CHECK(c.relay.max_pipes == 4096);
  CHECK(c.relay.buffer_size == 1u << 20);
  CHECK(c.drain_timeout == 10s);
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].name == "web");
  CHECK(c.listeners[0].bind == address{"127.0.0.1", 8080, false});
  CHECK(c.listeners[0].upstream == "app");
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].name == "app");
  REQUIRE(c.upstreams[0].endpoints.size() == 1);
  CHECK(c.upstreams[0].endpoints[0].at.to_string() == "127.0.0.1:5201");
  CHECK(c.upstreams[0].endpoints[0].weight == 1);
  CHECK(c.upstreams[0].balance == balance_policy::round_robin);
  CHECK(c.upstreams[0].timeouts.connect == 3s);
  CHECK(c.upstreams[0].timeouts.idle == 10min);
  CHECK(c.upstreams[0].timeouts.max_duration == 0ms);
  CHECK(c.upstreams[0].max_connect_attempts == 0);
  CHECK(c.upstreams[0].max_fails == 0);
  CHECK(c.upstreams[0].fail_timeout == 10s);
  CHECK(c.upstreams[0].health_check == zcproxy::health_check_config{});
  CHECK(c.listeners[0].timeouts == zcproxy::timeouts_config{});
  const auto* app = c.find_upstream(c.listeners[0].upstream);
  REQUIRE(app != nullptr);
  CHECK(app->name == "app");
  CHECK(c.find_upstream("nope") == nullptr);
}

TEST_CASE("absent keys take their defaults", "[config]") {
  auto c = load_config_string(minimal, "min.yaml");
  CHECK(c.source == "min.yaml");
  CHECK(c.threads == 0);
  CHECK(c.log.level == "info");
  CHECK(c.log.access_log == true);
  CHECK(c.log.access_format == zcproxy::access_log_format::text);
  CHECK(c.log.access_file.empty());  // stdout
  CHECK(c.relay.engine == engine_mode::adaptive);
  CHECK(c.relay.pipe_size == 1u << 20);
  CHECK(c.relay.max_pipes == 4096);
  CHECK(c.relay.buffer_size == 1u << 20);
  CHECK(c.drain_timeout == 10s);
  REQUIRE(c.upstreams.size() == 1);
  const auto& u = c.upstreams[0];
  REQUIRE(u.endpoints.size() == 1);
  CHECK(u.endpoints[0].weight == 1);
  CHECK(u.balance == balance_policy::round_robin);
  CHECK_FALSE(u.health_check.enabled);
  CHECK(u.health_check == zcproxy::health_check_config{});
  CHECK(u.health_check.interval == 2s);
  CHECK(u.health_check.timeout == 1s);
  CHECK(u.health_check.rise == 2);
  CHECK(u.health_check.fall == 3);
  CHECK(u.health_check.send.empty());
  CHECK(u.health_check.expect.empty());
  CHECK(u.max_fails == 0);
  CHECK(u.fail_timeout == 10s);
  CHECK(u.max_connect_attempts == 0);
  CHECK(u.timeouts == zcproxy::timeouts_config{});
  CHECK(c.listeners[0].timeouts == zcproxy::timeouts_config{});
  auto t = timeouts_for(c.listeners[0], u);
  CHECK(t.connect == 3s);
  CHECK(t.idle == 10min);
  CHECK(t.max_duration == 0ms);
}

TEST_CASE("every key can be set", "[config]") {
  auto c = load_config_string(R"(threads: 4
log: { level: "off", access_log: false, access_format: json, access_file: /tmp/zcproxy.log }
relay: { engine: copy, pipe_size: 64KiB, max_pipes: 0, buffer_size: 16KB }
drain_timeout: 0s
listeners:
  - { name: a, bind: "0.0.0.0:0", upstream: app }
  - { name: b, bind: "0.0.0.0:0", upstream: db }
  - { name: c, bind: "[::1]:8443", upstream: app }
upstreams:
  app:
    endpoints: ["127.0.0.1:9000", "[::1]:9001"]
    connect_timeout: 250ms
  db: { endpoints: ["10.0.0.1:5432"], connect_timeout: 1h }
)");
  CHECK(c.threads == 4);
  CHECK(c.effective_threads() == 4);
  CHECK(c.log.level == "off");
  CHECK_FALSE(c.log.access_log);
  CHECK(c.log.access_format == zcproxy::access_log_format::json);
  CHECK(c.log.access_file == "/tmp/zcproxy.log");
  CHECK(c.relay.engine == engine_mode::copy);
  CHECK(c.relay.pipe_size == 64 * 1024);
  CHECK(c.relay.max_pipes == 0);
  CHECK(c.relay.buffer_size == 16000);
  CHECK(c.drain_timeout == 0ms);
  REQUIRE(c.listeners.size() == 3);
  // Two listeners on port 0 do not clash: each gets its own ephemeral port.
  CHECK(c.listeners[1].bind.port == 0);
  CHECK(c.listeners[2].bind == address{"::1", 8443, true});
  CHECK(c.listeners[2].bind.to_string() == "[::1]:8443");
  REQUIRE(c.upstreams.size() == 2);
  CHECK(c.upstreams[0].endpoints.size() == 2);
  CHECK(c.upstreams[0].timeouts.connect == 250ms);
  CHECK(c.find_upstream("db")->timeouts.connect == 1h);

  CHECK(load_config_string(std::string("relay: { engine: splice }\n") + minimal).relay.engine ==
        engine_mode::splice);
  CHECK(load_config_string(std::string("relay: { engine: auto }\n") + minimal).relay.engine ==
        engine_mode::automatic);
  CHECK(load_config_string(std::string("relay: { engine: adaptive }\n") + minimal).relay.engine ==
        engine_mode::adaptive);
}

TEST_CASE("engine modes print as they are written in the config", "[config]") {
  CHECK(zcproxy::to_string(engine_mode::automatic) == "auto");
  CHECK(zcproxy::to_string(engine_mode::splice) == "splice");
  CHECK(zcproxy::to_string(engine_mode::copy) == "copy");
  CHECK(zcproxy::to_string(engine_mode::adaptive) == "adaptive");
}

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

TEST_CASE("listeners and upstreams take connect, idle and max duration timeouts", "[config]") {
  auto c = load_config_string(R"(listeners:
  - { name: a, bind: "127.0.0.1:8080", upstream: app }
  - name: b
    bind: "127.0.0.1:8081"
    upstream: app
    connect_timeout: 1ms
    idle_timeout: 0s
    max_connection_duration: 720h
  - { name: c, bind: "127.0.0.1:8082", upstream: db, idle_timeout: 1ms }
upstreams:
  app:
    endpoints: ["127.0.0.1:9000"]
    connect_timeout: 1h
    idle_timeout: 168h
    max_connection_duration: 0s
  db:
    endpoints: ["127.0.0.1:5432"]
    max_connection_duration: 30m
)");
  REQUIRE(c.listeners.size() == 3);
  CHECK(c.listeners[0].timeouts == zcproxy::timeouts_config{});
  CHECK(c.listeners[1].timeouts.connect == 1ms);
  CHECK(c.listeners[1].timeouts.idle == 0ms);
  CHECK(c.listeners[1].timeouts.max_duration == 720h);
  CHECK(c.listeners[2].timeouts.idle == 1ms);
  CHECK_FALSE(c.listeners[2].timeouts.connect);
  const auto& app = *c.find_upstream("app");
  const auto& db = *c.find_upstream("db");
  CHECK(app.timeouts.connect == 1h);
  CHECK(app.timeouts.idle == 168h);
  CHECK(app.timeouts.max_duration == 0ms);
  CHECK(db.timeouts.max_duration == 30min);
  CHECK_FALSE(db.timeouts.connect);
  CHECK_FALSE(db.timeouts.idle);

  // The listener's value wins, then the upstream's, then the default.
  auto a = timeouts_for(c.listeners[0], app);
  CHECK(a.connect == 1h);
  CHECK(a.idle == 168h);
  CHECK(a.max_duration == 0ms);
  auto b = timeouts_for(c.listeners[1], app);
  CHECK(b.connect == 1ms);
  CHECK(b.idle == 0ms);  // no idle timeout
  CHECK(b.max_duration == 720h);
  auto d = timeouts_for(c.listeners[2], db);
  CHECK(d.connect == 3s);
  CHECK(d.idle == 1ms);
  CHECK(d.max_duration == 30min);
}

// ---- scalar parsers ---------------------------------------------------------------------------

TEST_CASE("parse_size accepts bytes and binary/decimal units", "[config]") {
  auto [text, bytes] = GENERATE(table<const char*, std::size_t>({
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"4KiB", 4096},
      {"4K", 4096},
      {"64 KiB", 65536},
      {"1MiB", 1 << 20},
      {"1M", 1 << 20},
      {"2GiB", std::size_t{2} << 30},
      {"1G", std::size_t{1} << 30},
      {"16KB", 16000},
      {"16kB", 16000},
      {"3MB", 3000000},
      {"1GB", 1000000000},
      {"18446744073709551615", 18446744073709551615ull},
  }));
  INFO(text);
  CHECK(zcproxy::parse_size(text) == bytes);
}

TEST_CASE("parse_size rejects junk, negatives and overflow", "[config]") {
  auto text = GENERATE("", " ", "KiB", "-1", "-1KiB", "+1", "1.5MiB", "1XB", "1 MiB ", " 1MiB",
                       "1MiBs", "1kib", "0x10", "18446744073709551616", "17179869184GiB", "1e3");
  INFO('"' << text << '"');
  CHECK_FALSE(zcproxy::parse_size(text).has_value());
}

TEST_CASE("parse_duration needs a unit", "[config]") {
  auto [text, ms] = GENERATE(table<const char*, std::chrono::milliseconds>({
      {"0ms", 0ms},
      {"0s", 0ms},
      {"500ms", 500ms},
      {"3s", 3s},
      {"1m", 1min},
      {"90m", 90min},
      {"24h", 24h},
      {"10 s", 10s},
  }));
  INFO(text);
  CHECK(zcproxy::parse_duration(text) == ms);
}

TEST_CASE("parse_duration rejects bare numbers, junk, negatives and overflow", "[config]") {
  auto text = GENERATE("", "10", "s", "-1s", "+1s", "1.5s", "1d", "1sec", "1 h ", "1ms5", "1S",
                       "99999999999999999999ms", "9223372036854775807h", "9223372036854775808ms");
  INFO('"' << text << '"');
  CHECK_FALSE(zcproxy::parse_duration(text).has_value());
}

TEST_CASE("parse_address accepts IPv4 and bracketed IPv6 literals", "[config]") {
  auto [text, ip, port, v6] = GENERATE(table<const char*, const char*, int, bool>({
      {"127.0.0.1:9000", "127.0.0.1", 9000, false},
      {"0.0.0.0:0", "0.0.0.0", 0, false},
      {"255.255.255.255:65535", "255.255.255.255", 65535, false},
      {"[::1]:80", "::1", 80, true},
      {"[::]:8080", "::", 8080, true},
      {"[2001:db8::0001]:443", "2001:db8::1", 443, true},  // stored in canonical form
      {"[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1, true},
  }));
  INFO(text);
  auto a = zcproxy::parse_address(text);
  REQUIRE(a.has_value());
  CHECK(a->ip == ip);
  CHECK(a->port == port);
  CHECK(a->v6 == v6);
}

TEST_CASE("parse_address rejects host names, bad ports and malformed text", "[config]") {
  auto text =
      GENERATE("", "127.0.0.1", "127.0.0.1:", ":80", "localhost:80", "example.com:443",
               "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:8O", "127.0.0.1: 80",
               "256.0.0.1:80", "1.2.3:80", "::1:80", "[::1]", "[::1]80", "[::1:80",
               "[127.0.0.1]:80", "[fe80::1%eth0]:80", "[]:80", "127.0.0.1:99999999999999999999");
  INFO('"' << text << '"');
  CHECK_FALSE(zcproxy::parse_address(text).has_value());
}

TEST_CASE("address::to_string brackets IPv6", "[config]") {
  CHECK(address{"10.1.2.3", 80, false}.to_string() == "10.1.2.3:80");
  CHECK(address{"::1", 9000, true}.to_string() == "[::1]:9000");
}

// ---- bad configs: one kind of mistake each ----------------------------------------------------

TEST_CASE("unknown top-level key is reported with the allowed keys", "[config]") {
  auto errors = errors_of(std::string("thread: 4\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:1: thread: unknown key; expected one of: ") &&
                            Contains("threads, log, relay, drain_timeout, listeners, upstreams"));
}

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
        "access_format, access_file");
  CHECK_THAT(errors[1], StartsWith("t.yaml:4:3: relay.pipe_sz: unknown key") &&
                            Contains("expected one of: engine, pipe_size, max_pipes, buffer_size"));
  CHECK(errors[2] ==
        "t.yaml:6:57: listeners[0].tls: unknown key; expected one of: name, bind, "
        "upstream, connect_timeout, idle_timeout, max_connection_duration, "
        "allow, deny, max_connections, max_connections_per_ip, accept_proxy, proxy_timeout, "
        "rate_limit, routes, sni_timeout, non_tls, fallback_response, mirror");
  CHECK(errors[3] ==
        "t.yaml:8:41: upstreams.app.weight: unknown key; expected one of: endpoints, "
        "balance, health_check, max_fails, fail_timeout, max_connect_attempts, "
        "connect_timeout, idle_timeout, max_connection_duration, resolve, send_proxy");
}

TEST_CASE("a scalar where a map is expected is a type error", "[config]") {
  auto errors = errors_of(std::string("log: debug\nrelay: [copy]\n") + minimal);
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] ==
        R"(t.yaml:1:6: log: expected a map with keys level, access_log, access_format, )"
        R"(access_file, got "debug")");
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:8: relay: expected a map with keys engine") &&
                            Contains("got a sequence"));
}

TEST_CASE("listeners and upstreams of the wrong type are reported", "[config]") {
  auto errors = errors_of(R"(listeners:
  web: { bind: "127.0.0.1:8080", upstream: app }
upstreams:
  - app
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:3: listeners: expected a non-empty sequence of "
                                   "listeners") &&
                            Contains("got a map"));
  CHECK_THAT(errors[1],
             StartsWith("t.yaml:4:3: upstreams: expected a non-empty map of upstream name") &&
                 Contains("got a sequence"));
}

TEST_CASE("a listener naming a missing upstream is reported", "[config]") {
  auto errors = errors_of(R"(listeners:
  - name: web
    bind: "127.0.0.1:8080"
    upstream: api
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
  db: { endpoints: ["127.0.0.1:5432"] }
)");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        R"(t.yaml:4:15: listeners[0].upstream: no upstream named "api"; expected one of: app, db)");
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

TEST_CASE("duplicate listener names are reported", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
  - { name: web, bind: "127.0.0.1:8081", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == R"(t.yaml:3:13: listeners[1].name: duplicate listener name "web" )"
                     "(also used by listeners[0]); expected unique names");
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

TEST_CASE("a key given twice is reported", "[config]") {
  auto errors = errors_of(std::string("threads: 2\nthreads: 4\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith(R"(t.yaml:2:1: threads: duplicate key "threads")") &&
                            Contains("first given at line 1"));
}

TEST_CASE("two listeners on the same address are reported", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: a, bind: "127.0.0.1:8080", upstream: app }
  - { name: b, bind: "[::1]:8080", upstream: app }
  - { name: c, bind: "127.0.0.1:8080", upstream: app }
  - { name: d, bind: "0.0.0.0:8081", upstream: app }
  - { name: e, bind: "127.0.0.2:8081", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:4:22: listeners[2].bind: address 127.0.0.1:8080 is "
                                   R"(already bound by listener "a" (listeners[0])") &&
                            Contains("expected a distinct address:port for each listener"));
  // The wildcard address overlaps every specific address on the same port.
  CHECK_THAT(errors[1], StartsWith("t.yaml:6:22: listeners[4].bind: address 127.0.0.2:8081") &&
                            Contains(R"(listener "d")"));
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

TEST_CASE("an unknown relay engine is reported", "[config]") {
  auto errors = errors_of(std::string("relay:\n  engine: zerocopy\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK(
      errors[0] ==
      R"(t.yaml:2:11: relay.engine: expected one of: auto, splice, copy, adaptive, got "zerocopy")");
}

TEST_CASE("bad log level, access_log and thread count are reported", "[config]") {
  auto errors = errors_of(std::string(R"(threads: 1025
log:
  level: verbose
  access_log: maybe
)") + minimal);
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:10: threads: expected an integer from 0 to 1024") &&
                            Contains(R"(got "1025")"));
  CHECK(errors[1] ==
        "t.yaml:3:10: log.level: expected one of: trace, debug, info, warn, error, "
        R"(critical, off, got "verbose")");
  CHECK(errors[2] == R"(t.yaml:4:15: log.access_log: expected true or false, got "maybe")");
}

TEST_CASE("upgrade_socket is an absolute path in a directory that exists", "[config][upgrade]") {
  CHECK(load_config_string(std::string("upgrade_socket: /tmp/zcproxy-upgrade.sock\n") + minimal)
            .upgrade_socket == "/tmp/zcproxy-upgrade.sock");
  CHECK(load_config_string(minimal).upgrade_socket.empty());  // off
  auto error_for = [](const std::string& value) {
    auto errors = errors_of("upgrade_socket: " + value + "\n" + minimal);
    INFO(joined(errors));
    REQUIRE(errors.size() == 1);
    return errors[0];
  };
  const std::string expected =
      "t.yaml:1:17: upgrade_socket: expected an absolute path of at most 107 bytes in an existing "
      "directory, e.g. /run/zcproxy/upgrade.sock, got ";
  CHECK(error_for("upgrade.sock") == expected + R"("upgrade.sock": not an absolute path)");
  CHECK(
      error_for("/nonexistent-zcproxy/upgrade.sock") ==
      expected +
          R"("/nonexistent-zcproxy/upgrade.sock": directory /nonexistent-zcproxy does not exist)");
  const std::string long_path = "/tmp/" + std::string(110, 'x');
  CHECK(error_for(long_path) ==
        expected + "\"" + long_path + "\": longer than a Unix socket address holds");
  CHECK(error_for("/tmp/") == expected + R"("/tmp/": names a directory, not a file)");
  CHECK(error_for("[/tmp/a]") ==
        "t.yaml:1:17: upgrade_socket: expected an absolute path of at "
        "most 107 bytes in an existing directory, e.g. "
        "/run/zcproxy/upgrade.sock, got a sequence");
}

TEST_CASE("bad access_format and access_file are reported", "[config]") {
  // One error per document: a key may appear once.
  auto error_for = [](const std::string& log) {
    auto errors = errors_of("log: " + log + "\n" + minimal);
    INFO(joined(errors));
    REQUIRE(errors.size() == 1);
    return errors[0];
  };
  CHECK(error_for("{ access_format: xml }") ==
        R"(t.yaml:1:23: log.access_format: expected one of: text, json, got "xml")");
  CHECK(error_for("{ access_format: [json] }") ==
        "t.yaml:1:23: log.access_format: expected one of: text, json, got a sequence");
  const std::string expected =
      "expected an absolute file path in an existing directory, e.g. "
      "/var/log/zcproxy/access.log, got ";
  CHECK(error_for("{ access_file: access.log }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("access.log": not an absolute path)");
  CHECK(error_for("{ access_file: /nonexistent-zcproxy/access.log }") ==
        "t.yaml:1:21: log.access_file: " + expected +
            R"("/nonexistent-zcproxy/access.log": directory /nonexistent-zcproxy: )"
            "No such file or directory");
  const std::string readme = ZCPROXY_SOURCE_DIR "/README.md";
  CHECK(error_for("{ access_file: \"" + readme + "/access.log\" }") ==
        "t.yaml:1:21: log.access_file: " + expected + "\"" + readme + "/access.log\": " + readme +
            " is not a directory");
  CHECK(error_for("{ access_file: /tmp/ }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("/tmp/": names a directory, not a file)");
  CHECK(error_for("{ access_file: /tmp }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("/tmp": it is a directory)");
  CHECK(error_for("{ access_file: \"\" }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("": not an absolute path)");
  CHECK(error_for("{ access_file: { path: /tmp/a.log } }") ==
        "t.yaml:1:21: log.access_file: " + expected + "a map");
  // A file in the root directory, and one that does not exist yet, are fine.
  CHECK(load_config_string("log: { access_file: /zcproxy-access.log }\n" + std::string(minimal))
            .log.access_file == "/zcproxy-access.log");
}

TEST_CASE("empty listeners, upstreams and endpoints are reported", "[config]") {
  auto errors = errors_of(R"(listeners: []
upstreams: {}
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:12: listeners: expected a non-empty sequence") &&
                            Contains("got an empty sequence"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:12: upstreams: expected a non-empty map") &&
                            Contains("got an empty map"));

  errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app:
    endpoints: []
)");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:5:16: upstreams.app.endpoints: expected a non-empty "
                                   "sequence of endpoints") &&
                            Contains("got an empty sequence"));
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

TEST_CASE("an empty document is an error: listeners and upstreams are required", "[config]") {
  for (const char* text : {"", "# nothing but a comment\n"}) {
    auto errors = errors_of(text);
    REQUIRE(errors.size() == 2);
    CHECK_THAT(errors[0], StartsWith("t.yaml:1:1: listeners: required key is missing; expected a "
                                     "non-empty sequence of listeners"));
    CHECK_THAT(errors[1], StartsWith("t.yaml:1:1: upstreams: required key is missing"));
  }
  auto errors = errors_of("- just\n- a list\n");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:1: (top level): expected a map with keys threads") &&
                            Contains("got a sequence"));
}

TEST_CASE("YAML syntax errors are reported with their position", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:3:") && Contains(": (yaml): syntax error: ") &&
                            Contains("expected valid YAML"));

  errors = errors_of(std::string("threads: 1: 2\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:11: (yaml): syntax error: "));

  errors = errors_of(std::string(minimal) + "---\nthreads: 2\n");  // points at the ---
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:5:1: (yaml): a second document starts here; expected "
                                   "a single YAML document"));
}

TEST_CASE(
    "fallback_response is read when the config loads: missing, unreadable or too large is "
    "an error",
    "[config][fallback]") {
  test::temp_dir d;
  d.file("503.http", "HTTP/1.1 503 x\r\n\r\n");
  auto with_fallback = [](const std::string& file) {
    return "listeners:\n  - { name: web, bind: \"127.0.0.1:8080\", upstream: app, "
           "fallback_response: " +
           file + " }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:9000\"] }\n";
  };
  // Relative to the config file's directory.
  auto c = load_config_string(with_fallback("503.http"), d.path + "/zcproxy.yaml");
  REQUIRE(c.listeners[0].fallback);
  CHECK(c.listeners[0].fallback_path == d.path + "/503.http");
  CHECK(c.listeners[0].fallback->size == 18);
  c = load_config_string(with_fallback(d.path + "/503.http"), "elsewhere.yaml");
  REQUIRE(c.listeners[0].fallback);
  CHECK_FALSE(load_config_string(std::string(minimal)).listeners[0].fallback);

  std::string big(zcproxy::max_fallback_bytes + 1, 'x');
  d.file("big.http", big);
  d.file("exact.http", big.substr(1));
  CHECK(load_config_string(with_fallback(d.path + "/exact.http")).listeners[0].fallback->size ==
        zcproxy::max_fallback_bytes);
  auto errors = errors_of(with_fallback(d.path + "/big.http"));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:76: listeners[0].fallback_response: expected a file "
                                   "of at most 1 MiB") &&
                            Contains("big.http is larger than 1 MiB"));
  errors = errors_of(with_fallback(d.path + "/missing.http"));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Contains("missing.http: No such file or directory"));
  errors = errors_of(with_fallback(d.path));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Contains(": Is a directory"));
}

TEST_CASE("admin: is off unless given, and on loopback unless said otherwise",
          "[config][security]") {
  CHECK_FALSE(load_config_string(std::string(minimal)).admin.enabled);
  for (const char* head : {"admin:\n", "admin: {}\n", "admin: { reload: true }\n"}) {
    INFO(head);
    const auto c = load_config_string(std::string(head) + minimal);
    CHECK(c.admin.enabled);
    CHECK(c.admin.bind.to_string() == "127.0.0.1:9901");
  }
  CHECK(load_config_string(std::string("admin: { bind: \"[::1]:9000\" }\n") + minimal)
            .admin.bind.to_string() == "[::1]:9000");
  const auto errors = errors_of(std::string("admin: yes\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:8: admin: expected a map with keys bind, allow, deny, "
                                   "reload"));
}

TEST_CASE("admin.token_file: read at load, only from a file no one else may read",
          "[config][security]") {
  test::temp_dir d;
  const std::string token = "f00dfeedf00dfeed-0123456789";
  auto with_token_file = [&](const std::string& path) {
    return "admin: { token_file: \"" + path + "\" }\n" + std::string(minimal);
  };
  auto file = [&](const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = d.file(name, text);
    ::chmod(path.c_str(), mode);
    return path;
  };
  CHECK(load_config_string(std::string("admin: {}\n") + minimal).admin.token.empty());
  for (mode_t mode : {0600, 0400}) {
    const auto c = load_config_string(with_token_file(file("good", token + "\n", mode)));
    CHECK(c.admin.token == token);  // the first line, without its newline
  }
  struct bad_case {
    std::string path, why;
  };
  const bad_case bad[] = {
      {file("shared", token, 0640), "group or others may access it"},
      {file("everyone", token, 0604), "group or others may access it"},
      {file("short", "0123456789abcde\n", 0600), "not 16 or more printable characters"},
      {file("spaced", "0123456789 abcdef\n", 0600), "not 16 or more printable characters"},
      {file("empty", "\n", 0600), "not 16 or more printable characters"},
      {d.path + "/missing", "No such file or directory"},
      {d.path, "not a regular file"},
      {"relative/token", "not an absolute path"},
  };
  for (const auto& c : bad) {
    INFO(c.path);
    const auto errors = errors_of(with_token_file(c.path));
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], StartsWith("t.yaml:1:22: admin.token_file: expected an absolute path"));
    CHECK_THAT(errors[0], Contains(c.why));
  }
}

TEST_CASE("user and group are resolved when the config loads, and core_dumps is off by default",
          "[config][security]") {
  auto c = load_config_string(std::string(minimal));
  CHECK_FALSE(c.run_as);
  CHECK_FALSE(c.core_dumps);

  c = load_config_string(std::string("user: nobody\ncore_dumps: true\n") + minimal);
  REQUIRE(c.run_as);
  CHECK(c.run_as->user == "nobody");
  CHECK(c.run_as->uid == 65534);
  CHECK(c.run_as->gid == 65534);  // nobody's primary group
  CHECK(c.core_dumps);

  c = load_config_string(std::string("user: nobody\ngroup: root\n") + minimal);
  REQUIRE(c.run_as);
  CHECK(c.run_as->gid == 0);
  // Numbers need no passwd or group entry (a container's uid), but then the group must be said.
  c = load_config_string(std::string("user: 4242\ngroup: 4343\n") + minimal);
  REQUIRE(c.run_as);
  CHECK(c.run_as->uid == 4242);
  CHECK(c.run_as->gid == 4343);

  auto errors = errors_of(std::string("user: no-such-user-zc\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected a user of this system, got "
                                   "\"no-such-user-zc\""));
  errors = errors_of(std::string("user: nobody\ngroup: no-such-group-zc\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:8: group: expected a group of this system"));
  errors = errors_of(std::string("group: nogroup\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:8: group: expected user: as well"));
  errors = errors_of(std::string("user: 4242\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected group: too"));
  // 2^32 would wrap round to uid 0.
  errors = errors_of(std::string("user: 4294967296\ngroup: 1\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected a uid below 4294967295"));
  errors = errors_of(std::string("user: nobody\ngroup: 4294967296\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:8: group: expected a gid below 4294967295"));
  errors = errors_of(std::string("user: [a]\ncore_dumps: sometimes\n") + minimal);
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected a user name or numeric uid"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:13: core_dumps: expected true or false"));
}

TEST_CASE("input that makes yaml-cpp's LoadAll loop for ever is an error, not a hang", "[config]") {
  // yaml-cpp 0.7's LoadAll never returns on these (the fuzzer found it): each must come back
  // with an error within the test's time limit.
  for (const char* text : {",", "\n,\n", ",\n,\n,", "threads: 1\n,\n"}) {
    INFO("input: " << text);
    CHECK_FALSE(errors_of(text).empty());
  }
}

TEST_CASE("a missing or unreadable file is reported with the system's reason", "[config]") {
  try {
    zcproxy::load_config_file("/nonexistent/zcproxy.yaml");
    FAIL("a missing file was accepted");
  } catch (const config_error& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0] == "/nonexistent/zcproxy.yaml: cannot read: No such file or directory");
    CHECK(std::string(e.what()) == e.errors()[0]);
  }
  try {
    zcproxy::load_config_file(ZCPROXY_SOURCE_DIR "/conf");
    FAIL("a directory was accepted");
  } catch (const config_error& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0] == ZCPROXY_SOURCE_DIR "/conf: cannot read: Is a directory");
  }
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

// ---- reporting --------------------------------------------------------------------------------

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

TEST_CASE("the edge keys of a listener and an upstream parse, and bad values are reported",
          "[config]") {
  const std::string ok = R"(listeners:
  - name: edge
    bind: "127.0.0.1:0"
    upstream: app
    allow: ["10.0.0.0/8", "2001:db8::/32"]
    deny: ["10.0.0.13"]
    max_connections: 100
    max_connections_per_ip: 5
    accept_proxy: true
    proxy_timeout: 2s
    rate_limit: { upload: 10MiB/s, download: 512KiB/s }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"], send_proxy: v2 }
)";
  auto c = load_config_string(ok, "edge.yaml");
  const auto& l = c.listeners[0];
  REQUIRE(l.allow.size() == 2);
  CHECK(zcproxy::to_string(l.allow[1]) == "2001:db8::/32");
  REQUIRE(l.deny.size() == 1);
  CHECK(zcproxy::to_string(l.deny[0]) == "10.0.0.13/32");
  CHECK(l.max_connections == 100);
  CHECK(l.max_connections_per_ip == 5);
  CHECK(l.accept_proxy);
  CHECK(l.proxy_timeout == 2s);
  CHECK(l.upload_rate == 10u << 20);
  CHECK(l.download_rate == 512u << 10);
  CHECK(c.upstreams[0].send_proxy == zcproxy::proxy_protocol_version::v2);

  const std::string bad = R"(listeners:
  - name: edge
    bind: "127.0.0.1:0"
    upstream: app
    allow: ["10.0.0.1/8"]
    accept_proxy: maybe
    rate_limit: { upload: 10MiB }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"], send_proxy: v3 }
)";
  std::vector<std::string> errors;
  try {
    load_config_string(bad, "t.yaml");
  } catch (const zcproxy::config_error& e) {
    errors = e.errors();
  }
  REQUIRE(errors.size() == 4);
  CHECK_THAT(errors[0],
             StartsWith("t.yaml:5:13: listeners[0].allow[0]: expected an address block") &&
                 Contains("host bits"));
  CHECK_THAT(errors[1],
             StartsWith("t.yaml:6:19: listeners[0].accept_proxy: expected true or false"));
  CHECK_THAT(errors[2], StartsWith("t.yaml:7:27: listeners[0].rate_limit.upload: expected a rate"));
  CHECK_THAT(errors[3], StartsWith("t.yaml:9:53: upstreams.app.send_proxy: expected one of: off, "
                                   "v1, v2"));
}

TEST_CASE("config: routes by server name, sni_timeout and non_tls", "[config][sni]") {
  const auto c = load_config_string(R"(listeners:
  - name: tls
    bind: "127.0.0.1:0"
    routes:
      - { sni: API.example.com, upstream: api }
      - { sni: "*.example.com", upstream: web }
      - { default: web }
    sni_timeout: 2s
    non_tls: default
upstreams:
  api: { endpoints: ["127.0.0.1:9000"] }
  web: { endpoints: ["127.0.0.1:9001"] }
)");
  const auto& l = c.listeners[0];
  CHECK(l.upstream.empty());
  CHECK(l.routes.patterns == std::vector<std::string>{"api.example.com", "*.example.com"});
  CHECK(l.routes.upstreams == std::vector<std::string>{"api", "web"});
  CHECK(l.routes.fallback == "web");
  CHECK(l.sni_timeout == 2s);
  CHECK(l.non_tls_to_default);
  CHECK(l.destination() == "routes api.example.com -> api, *.example.com -> web, default -> web");

  const auto errors = errors_of(R"(listeners:
  - { name: a, bind: "127.0.0.1:0", upstream: api, routes: [{default: api}] }
  - { name: b, bind: "127.0.0.1:0", routes: [] }
  - { name: c, bind: "127.0.0.1:0", routes: [{sni: "a*.example.com", upstream: api}, {sni: x.test}, {default: api, sni: y.test}] }
  - { name: d, bind: "127.0.0.1:0", routes: [{sni: x.test, upstream: nope}, {sni: X.test, upstream: api}, {default: api}, {default: api}] }
  - { name: e, bind: "127.0.0.1:0", routes: [{sni: x.test, upstream: api}], non_tls: default, sni_timeout: 0s }
  - { name: f, bind: "127.0.0.1:0", upstream: api, non_tls: close }
  - { name: g, bind: "127.0.0.1:0" }
upstreams:
  api: { endpoints: ["127.0.0.1:9000"] }
)");
  REQUIRE(errors.size() == 12);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:60: listeners[0].routes: expected either upstream or "
                                   "routes, not both"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:3:45: listeners[1].routes: expected a non-empty "
                                   "sequence of {sni: NAME, upstream: UPSTREAM}") &&
                            Contains("got an empty sequence"));
  CHECK_THAT(errors[2], StartsWith("t.yaml:4:52: listeners[2].routes[0].sni: expected a server "
                                   "name") &&
                            Contains("got \"a*.example.com\""));
  CHECK_THAT(errors[3], StartsWith("t.yaml:4:86: listeners[2].routes[1].upstream: required key is "
                                   "missing"));
  CHECK_THAT(errors[4], StartsWith("t.yaml:4:101: listeners[2].routes[2]: expected {default: "
                                   "UPSTREAM} alone"));
  CHECK_THAT(errors[5], StartsWith("t.yaml:5:70: listeners[3].routes[0].upstream: no upstream "
                                   "named \"nope\"; expected one of: api"));
  CHECK_THAT(errors[6], StartsWith("t.yaml:5:83: listeners[3].routes[1].sni: duplicate server "
                                   "name \"X.test\""));
  CHECK_THAT(errors[7], StartsWith("t.yaml:5:133: listeners[3].routes[3].default: expected at most "
                                   "one default route"));
  CHECK_THAT(errors[8], StartsWith("t.yaml:6:86: listeners[4].non_tls: expected close: default "
                                   "needs a {default: UPSTREAM} entry in routes"));
  CHECK_THAT(errors[9], StartsWith("t.yaml:6:108: listeners[4].sni_timeout: expected a duration "
                                   "from 1ms to 1h"));
  CHECK_THAT(errors[10], StartsWith("t.yaml:7:61: listeners[5].non_tls: applies only to a "
                                    "listener with routes"));
  CHECK_THAT(errors[11], StartsWith("t.yaml:8:5: listeners[6].upstream: required key is missing; "
                                    "expected the name of an entry in upstreams (or routes: by "
                                    "TLS server name)"));
}

TEST_CASE("config: Unix domain socket listeners and endpoints", "[config][unix]") {
  const auto c = load_config_string(R"(listeners:
  - { name: a, bind: "unix:/run/zcproxy/in.sock", upstream: app }
  - { name: b, bind: "unix:/run/zcproxy/pp.sock", upstream: app, accept_proxy: true, allow: ["10.0.0.0/8"] }
upstreams:
  app: { endpoints: ["unix:/run/app.sock", "127.0.0.1:9000"] }
)");
  CHECK(c.listeners[0].bind.local);
  CHECK(c.listeners[0].bind.path == "/run/zcproxy/in.sock");
  CHECK(c.listeners[0].bind.to_string() == "unix:/run/zcproxy/in.sock");
  CHECK(c.upstreams[0].endpoints[0].at.local);
  CHECK(c.upstreams[0].endpoints[0].at.to_string() == "unix:/run/app.sock");
  CHECK_FALSE(c.upstreams[0].endpoints[1].at.local);
  CHECK(zcproxy::parse_address("unix:/a") == zcproxy::parse_address("unix:/a"));

  const auto errors = errors_of(R"(listeners:
  - { name: a, bind: "unix:", upstream: app }
  - { name: b, bind: "unix:run/app.sock", upstream: app }
  - { name: c, bind: "unix:/run/in.sock", upstream: app, deny: ["10.0.0.0/8"] }
  - { name: d, bind: "unix:/run/in.sock", upstream: app }
upstreams:
  app: { endpoints: ["unix:/)" + std::string(108, 'x') +
                                R"("] }
)");
  REQUIRE(errors.size() == 5);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:22: listeners[0].bind: expected an IP literal and "
                                   "port") &&
                            Contains("missing the socket's path"));
  CHECK_THAT(errors[1], Contains("listeners[1].bind:") && Contains("must be absolute"));
  CHECK_THAT(errors[2], StartsWith("t.yaml:4:64: listeners[2].deny: applies only to an IP "
                                   "listener, or a Unix socket one with accept_proxy"));
  CHECK_THAT(errors[3], StartsWith("t.yaml:5:22: listeners[3].bind: address unix:/run/in.sock is "
                                   "already bound by listener \"c\""));
  CHECK_THAT(errors[4], StartsWith("t.yaml:7:22: upstreams.app.endpoints[0]:") &&
                            Contains("at most 107 bytes, got 109"));
}

TEST_CASE("config: the README's configuration example is a valid config", "[config]") {
  const std::string readme = test::slurp(ZCPROXY_SOURCE_DIR "/README.md");
  const auto section = readme.find("## Configuration");
  REQUIRE(section != std::string::npos);
  const auto start = readme.find("```yaml\n", section);
  REQUIRE(start != std::string::npos);
  const auto end = readme.find("```", start + 8);
  REQUIRE(end != std::string::npos);
  const std::string yaml = readme.substr(start + 8, end - start - 8);
  try {
    // Read as a file in conf/, so its relative fallback_response is conf/503.http.
    const auto c = load_config_string(yaml, ZCPROXY_SOURCE_DIR "/conf/README.yaml");
    CHECK(c.admin.enabled);
    CHECK_FALSE(c.listeners.back().routes.patterns.empty());
  } catch (const zcproxy::config_error& e) {
    for (const auto& line : e.errors()) UNSCOPED_INFO(line);
    FAIL("the README's example has errors");
  }
}
