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
