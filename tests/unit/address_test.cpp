#include "zcproxy/address.hpp"

#include <catch2/catch.hpp>
#include <string>

using Catch::Matchers::Contains;
using zcproxy::address;
using zcproxy::parse_address;

TEST_CASE("address: parse_address keeps the canonical IP spelling", "[address]") {
  auto a = parse_address("[::0001]:443");
  REQUIRE(a);
  CHECK(*a == address{"::1", 443, true});
  CHECK(a->to_string() == "[::1]:443");
}

TEST_CASE("address: a Unix socket path prints back as written", "[address]") {
  auto a = parse_address("unix:/run/app.sock");
  REQUIRE(a);
  CHECK(a->local);
  CHECK(a->path == "/run/app.sock");
  CHECK(a->to_string() == "unix:/run/app.sock");
}

TEST_CASE("address: a malformed address says why", "[address]") {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty address"},
      {"unix:", "missing the socket's path"},
      {"unix:run/app.sock", "must be absolute"},
      {"[::1:80", "missing ']'"},
      {"[::1]80", "missing ':port'"},
      {"127.0.0.1", "missing ':port'"},
      {"::1:80", "must be in brackets"},
      {"localhost:80", "host names are not accepted"},
      {"[127.0.0.1]:80", "is not an IPv6 address"},
      {"127.0.0.1:http", "is not a number"},
      {"127.0.0.1:65536", "out of range"},
  };
  for (const auto& [text, why] : cases) {
    INFO(text);
    std::string reason;
    CHECK_FALSE(parse_address(text, reason));
    CHECK_THAT(reason, Contains(why));
    CHECK_FALSE(parse_address(text));
  }
  std::string reason;
  CHECK_FALSE(parse_address("unix:/" + std::string(107, 'a'), reason));
  CHECK_THAT(reason, Contains("at most 107 bytes, got 108"));
}
