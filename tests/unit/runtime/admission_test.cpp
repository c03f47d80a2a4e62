#include "runtime/admission.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "zcproxy/acl.hpp"
#include "zcproxy/address.hpp"
#include "zcproxy/socket.hpp"

using zcproxy::acl;
using zcproxy::address;
using zcproxy::cidr;
using zcproxy::detail::permitted;

namespace {

std::vector<cidr> blocks(std::initializer_list<const char*> texts) {
  std::vector<cidr> out;
  for (const char* t : texts) {
    auto c = zcproxy::parse_cidr(t);
    REQUIRE(c);
    out.push_back(*c);
  }
  return out;
}

// Whether `access` lets in a client at `ip:port` (its address bytes as the session makes them).
bool lets_in(const acl& access, const std::string& text) {
  const auto peer = zcproxy::parse_address(text);
  REQUIRE(peer);
  return permitted(access, peer, zcproxy::ip_bytes(*peer));
}

address unix_client() {
  address a;
  a.local = true;
  return a;
}

}  // namespace

TEST_CASE("admission: with no rules, every client is let in", "[admission]") {
  const acl open;
  CHECK(lets_in(open, "192.0.2.7:5000"));
  CHECK(lets_in(open, "[2001:db8::1]:5000"));
  CHECK(permitted(open, unix_client(), ""));
  CHECK(permitted(open, std::nullopt, ""));
}

TEST_CASE("admission: deny refuses its blocks, allow admits only its own", "[admission]") {
  const acl deny_only({}, blocks({"192.0.2.0/24"}));
  CHECK_FALSE(lets_in(deny_only, "192.0.2.7:5000"));
  CHECK(lets_in(deny_only, "198.51.100.1:5000"));

  const acl allow_only(blocks({"10.0.0.0/8", "2001:db8::/32"}), {});
  CHECK(lets_in(allow_only, "10.1.2.3:5000"));
  CHECK(lets_in(allow_only, "[2001:db8::1]:5000"));
  CHECK_FALSE(lets_in(allow_only, "192.0.2.7:5000"));
  CHECK_FALSE(lets_in(allow_only, "[2001:db9::1]:5000"));

  // deny wins over allow.
  const acl both(blocks({"10.0.0.0/8"}), blocks({"10.9.0.0/16"}));
  CHECK(lets_in(both, "10.1.2.3:5000"));
  CHECK_FALSE(lets_in(both, "10.9.0.1:5000"));
}

TEST_CASE("admission: a Unix socket's client is refused by an allow list only", "[admission]") {
  CHECK_FALSE(permitted(acl(blocks({"10.0.0.0/8"}), {}), unix_client(), ""));
  CHECK(permitted(acl({}, blocks({"10.0.0.0/8"})), unix_client(), ""));
}

TEST_CASE("admission: a client whose address is not known is refused by any rule", "[admission]") {
  CHECK_FALSE(permitted(acl(blocks({"10.0.0.0/8"}), {}), std::nullopt, ""));
  CHECK_FALSE(permitted(acl({}, blocks({"10.0.0.0/8"})), std::nullopt, ""));
}
