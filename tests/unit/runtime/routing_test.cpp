#include "runtime/routing.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>

#include "runtime/generation.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/sni.hpp"
#include "zcproxy/upstream.hpp"

using zcproxy::close_reason;
using zcproxy::sni_routes;
using zcproxy::detail::route_client;
using zcproxy::detail::route_for;
namespace sni = zcproxy::sni;

namespace {

// api.example.com -> api, *.example.com -> web; `default_route` the default route ("" for none).
sni_routes routes(std::string default_route) {
  return {{"api.example.com", "*.example.com"}, {"api", "web"}, std::move(default_route)};
}

sni::client_hello hello_for(std::string server_name) {
  return {sni::parse_status::complete, std::move(server_name), ""};
}

const sni::client_hello not_tls{sni::parse_status::not_tls, "", ""};
const sni::client_hello malformed{sni::parse_status::invalid, "",
                                  "session id length 33 exceeds 32"};

}  // namespace

TEST_CASE("routing: a server name goes to the first route whose pattern matches it", "[routing]") {
  for (const std::string default_route : {"", "default"}) {
    INFO("default route: " << default_route);
    auto exact = route_for(routes(default_route), false, hello_for("api.example.com"));
    REQUIRE(exact.upstream == std::optional<std::string>("api"));
    CHECK(exact.why.empty());
    auto wildcard = route_for(routes(default_route), false, hello_for("www.example.com"));
    REQUIRE(wildcard.upstream == std::optional<std::string>("web"));
    CHECK(wildcard.why.empty());
  }
}

TEST_CASE("routing: a name no pattern matches, or no name, goes to the default route",
          "[routing]") {
  CHECK(route_for(routes("default"), false, hello_for("other.org")).upstream ==
        std::optional<std::string>("default"));
  CHECK(route_for(routes("default"), false, hello_for("")).upstream ==
        std::optional<std::string>("default"));
  // non_tls_to_default is about bytes that are not a ClientHello only.
  CHECK(route_for(routes("default"), true, hello_for("other.org")).upstream ==
        std::optional<std::string>("default"));
}

TEST_CASE("routing: without a default route, an unmatched name or no name is closed, and why",
          "[routing]") {
  auto unmatched = route_for(routes(""), false, hello_for("other.org"));
  CHECK_FALSE(unmatched.upstream);
  CHECK(unmatched.why == "no route for server name other.org, and no default route");
  auto nameless = route_for(routes(""), true, hello_for(""));
  CHECK_FALSE(nameless.upstream);
  CHECK(nameless.why == "a ClientHello without a server name, and no default route");
}

TEST_CASE(
    "routing: bytes that are not a ClientHello go to the default route with non_tls: "
    "default, else are closed",
    "[routing]") {
  CHECK(route_for(routes("default"), true, not_tls).upstream ==
        std::optional<std::string>("default"));
  CHECK(route_for(routes("default"), true, malformed).upstream ==
        std::optional<std::string>("default"));

  auto plain = route_for(routes("default"), false, not_tls);
  CHECK_FALSE(plain.upstream);
  CHECK(plain.why == "not TLS, and non_tls is close");
  auto bad = route_for(routes("default"), false, malformed);
  CHECK_FALSE(bad.upstream);
  CHECK(bad.why ==
        "a malformed ClientHello (session id length 33 exceeds 32), and non_tls is close");
}

TEST_CASE(
    "routing: route_client finds the routed upstream in its generation, or closes with "
    "no_route",
    "[routing]") {
  zcproxy::generation gen{zcproxy::config{}};
  for (const char* name : {"api", "default"}) {
    zcproxy::upstream_config u;
    u.name = name;
    u.endpoints.push_back({*zcproxy::parse_address("127.0.0.1:9000")});
    gen.upstreams.push_back(std::make_shared<zcproxy::upstream>(u, 1));
  }
  zcproxy::listener_config l;
  l.routes = routes("default");

  auto api = route_client(gen, l, hello_for("api.example.com"));
  REQUIRE(api);
  CHECK((*api)->config().name == "api");
  auto other = route_client(gen, l, hello_for("other.org"));
  REQUIRE(other);
  CHECK((*other)->config().name == "default");

  // A route to an upstream the generation does not have ("web"): no route.
  auto missing = route_client(gen, l, hello_for("www.example.com"));
  REQUIRE_FALSE(missing);
  CHECK(missing.reason() == close_reason::no_route);

  auto plain = route_client(gen, l, not_tls);
  REQUIRE_FALSE(plain);
  CHECK(plain.reason() == close_reason::no_route);
  CHECK(plain.why() == "not TLS, and non_tls is close");
}
