// src/config/listeners.cpp: the listeners: section: names, bind addresses, the edge keys and
// Unix sockets.
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
using zcproxy::load_config_string;

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
