// src/config/routes.cpp: a listener's routes by TLS server name.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "zcproxy/config.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using test::errors_of;
using zcproxy::load_config_string;

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
  CHECK(l.routes.default_route == "web");
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
