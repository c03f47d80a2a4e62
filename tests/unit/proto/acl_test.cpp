#include "zcproxy/acl.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using zcproxy::acl;
using zcproxy::cidr;
using zcproxy::parse_cidr;
using namespace std::chrono_literals;

namespace {

// Network-order bytes of an IP literal (4 or 16), as a socket reports a peer.
std::vector<unsigned char> ip(const std::string& text) {
  std::array<unsigned char, 16> b{};
  bool v6 = text.find(':') != std::string::npos;
  REQUIRE(inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), b.data()) == 1);
  return {b.begin(), b.begin() + (v6 ? 16 : 4)};
}

cidr block(const std::string& text) {
  std::string why;
  auto c = parse_cidr(text, &why);
  INFO(why);
  REQUIRE(c);
  return *c;
}

std::vector<cidr> blocks(std::initializer_list<const char*> texts) {
  std::vector<cidr> out;
  for (auto t : texts) out.push_back(block(t));
  return out;
}

bool contains(const std::string& c, const std::string& addr) {
  return block(c).contains(ip(addr));
}

}  // namespace

// ---- parse_cidr -------------------------------------------------------------------------------

TEST_CASE("parse_cidr reads IPv4 and IPv6 blocks and bare hosts", "[acl]") {
  struct row {
    const char* text;
    const char* canonical;
    unsigned prefix;
    bool v6;
  };
  const row rows[] = {
      {"10.0.0.0/8", "10.0.0.0/8", 8, false},
      {"192.168.1.7", "192.168.1.7/32", 32, false},
      {"192.168.1.7/32", "192.168.1.7/32", 32, false},
      {"0.0.0.0/0", "0.0.0.0/0", 0, false},
      {"128.0.0.0/1", "128.0.0.0/1", 1, false},
      {"10.0.0.0/31", "10.0.0.0/31", 31, false},
      {"255.255.255.255", "255.255.255.255/32", 32, false},
      {"2001:db8::/32", "2001:db8::/32", 32, true},
      {"2001:DB8:0:0:0:0:0:0/32", "2001:db8::/32", 32, true},
      {"::1", "::1/128", 128, true},
      {"::/0", "::/0", 0, true},
      {"fe80::/10", "fe80::/10", 10, true},
      {"2001:db8::/64", "2001:db8::/64", 64, true},
      {"::ffff:10.0.0.1", "::ffff:10.0.0.1/128", 128, true},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    std::string why = "untouched";
    auto c = parse_cidr(r.text, &why);
    REQUIRE(c);
    CHECK(why == "untouched");
    CHECK(c->prefix == r.prefix);
    CHECK(c->v6 == r.v6);
    CHECK(zcproxy::to_string(*c) == r.canonical);
    // The canonical text reads back as the same block.
    CHECK(parse_cidr(zcproxy::to_string(*c)) == c);
  }
}

TEST_CASE("parse_cidr stores network-order bytes with the unused tail zero", "[acl]") {
  auto v4 = block("192.168.0.0/16");
  CHECK(v4.bytes == std::array<unsigned char, 16>{192, 168});
  auto v6 = block("2001:db8::/32");
  CHECK(v6.bytes == std::array<unsigned char, 16>{0x20, 0x01, 0x0d, 0xb8});
}

TEST_CASE("parse_cidr refuses malformed text and says why", "[acl]") {
  const char* bad[] = {
      "",                               // nothing
      "/8",                             // no address
      "10.0.0.0/",                      // no prefix after '/'
      "10.0.0.0/33",                    // past 32 for IPv4
      "::/129",                         // past 128 for IPv6
      "2001:db8::/200",                 //
      "10.0.0.0/+8",                    // sign
      "10.0.0.0/-1",                    //
      "10.0.0.0/08",                    // leading zero
      "10.0.0.0/ 8",                    // space
      "10.0.0.0 /8",                    //
      " 10.0.0.0/8",                    //
      "10.0.0.0/8 ",                    //
      "10.0.0.0/8/8",                   // two prefixes
      "10.0.0.0/x",                     //
      "10.0.0.0/8.0",                   //
      "10.0.0.0/99999999999999999999",  // would overflow
      "10.0.0",                         // short dotted quad
      "10.0.0.256",                     // octet out of range
      "1.2.3.4.5",                      //
      "010.0.0.0/8",                    // leading zero in an octet
      "0x0a.0.0.0/8",                   // hex
      "localhost",                      // a name, not an address
      "[::1]/128",                      // brackets
      "fe80::1%eth0",                   // zone
      "2001:db8:::/32",                 //
      "2001:db8::g/32",                 //
      "1:2:3:4:5:6:7:8:9",              // nine groups
      "10.0.0.1/8",                     // host bits set
      "10.0.0.0/0",                     //
      "192.168.1.1/31",                 //
      "2001:db8::1/32",                 //
      "::1/127",                        //
  };
  for (const char* text : bad) {
    CAPTURE(text);
    std::string why;
    CHECK_FALSE(parse_cidr(text, &why));
    CHECK_FALSE(why.empty());
    CHECK_FALSE(parse_cidr(text));  // no `why`: still refused, nothing written
  }
}

TEST_CASE("parse_cidr reasons name the problem", "[acl]") {
  std::string why;
  CHECK_FALSE(parse_cidr("10.0.0.0/33", &why));
  CHECK_THAT(why, Catch::Contains("out of range for IPv4 (0..32)"));
  CHECK_FALSE(parse_cidr("::/129", &why));
  CHECK_THAT(why, Catch::Contains("out of range for IPv6 (0..128)"));
  CHECK_FALSE(parse_cidr("10.0.0.0/+8", &why));
  CHECK_THAT(why, Catch::Contains("not a plain decimal number"));
  CHECK_FALSE(parse_cidr("10.0.0.0/", &why));
  CHECK_THAT(why, Catch::Contains("expected a prefix length"));
  CHECK_FALSE(parse_cidr("10.0.0.256/8", &why));
  CHECK_THAT(why, Catch::Contains("'10.0.0.256' is not an IPv4"));
  // Host bits: refused, and the message offers the network the writer may have meant.
  CHECK_FALSE(parse_cidr("10.1.2.3/8", &why));
  CHECK_THAT(why, Catch::Contains("host bits") && Catch::Contains("10.0.0.0/8"));
  CHECK_FALSE(parse_cidr("2001:db8::1/64", &why));
  CHECK_THAT(why, Catch::Contains("2001:db8::/64"));
}

// ---- cidr::contains ---------------------------------------------------------------------------

TEST_CASE("cidr matching is exact at IPv4 prefix boundaries", "[acl]") {
  // /0: every IPv4 address.
  CHECK(contains("0.0.0.0/0", "0.0.0.0"));
  CHECK(contains("0.0.0.0/0", "255.255.255.255"));
  // /1: the top bit alone decides.
  CHECK(contains("128.0.0.0/1", "128.0.0.0"));
  CHECK(contains("128.0.0.0/1", "255.255.255.255"));
  CHECK_FALSE(contains("128.0.0.0/1", "127.255.255.255"));
  CHECK(contains("0.0.0.0/1", "127.255.255.255"));
  CHECK_FALSE(contains("0.0.0.0/1", "128.0.0.0"));
  // /8 and a prefix inside a byte (/9, /23).
  CHECK(contains("10.0.0.0/8", "10.255.255.255"));
  CHECK_FALSE(contains("10.0.0.0/8", "11.0.0.0"));
  CHECK_FALSE(contains("10.0.0.0/8", "9.255.255.255"));
  CHECK(contains("10.128.0.0/9", "10.255.0.1"));
  CHECK_FALSE(contains("10.128.0.0/9", "10.127.255.255"));
  CHECK(contains("192.168.2.0/23", "192.168.3.255"));
  CHECK_FALSE(contains("192.168.2.0/23", "192.168.4.0"));
  CHECK_FALSE(contains("192.168.2.0/23", "192.168.1.255"));
  // /31: a pair.
  CHECK(contains("10.0.0.0/31", "10.0.0.0"));
  CHECK(contains("10.0.0.0/31", "10.0.0.1"));
  CHECK_FALSE(contains("10.0.0.0/31", "10.0.0.2"));
  CHECK_FALSE(contains("10.0.0.2/31", "10.0.0.1"));
  // /32: one host.
  CHECK(contains("10.0.0.1/32", "10.0.0.1"));
  CHECK_FALSE(contains("10.0.0.1/32", "10.0.0.0"));
  CHECK_FALSE(contains("10.0.0.1/32", "10.0.0.2"));
  CHECK_FALSE(contains("10.0.0.1", "11.0.0.1"));
}

TEST_CASE("cidr matching is exact at IPv6 prefix boundaries", "[acl]") {
  CHECK(contains("::/0", "::"));
  CHECK(contains("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK(contains("8000::/1", "8000::"));
  CHECK_FALSE(contains("8000::/1", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  // /64: the interface identifier is free, the subnet is not.
  CHECK(contains("2001:db8::/64", "2001:db8::"));
  CHECK(contains("2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff"));
  CHECK_FALSE(contains("2001:db8::/64", "2001:db8:0:1::"));
  CHECK_FALSE(contains("2001:db8::/64", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
  // /65: one more bit.
  CHECK(contains("2001:db8::/65", "2001:db8::7fff:ffff:ffff:ffff"));
  CHECK_FALSE(contains("2001:db8::/65", "2001:db8::8000:0:0:0"));
  // /127: a pair.
  CHECK(contains("2001:db8::/127", "2001:db8::"));
  CHECK(contains("2001:db8::/127", "2001:db8::1"));
  CHECK_FALSE(contains("2001:db8::/127", "2001:db8::2"));
  CHECK_FALSE(contains("2001:db8::2/127", "2001:db8::1"));
  // /128: one host.
  CHECK(contains("::1", "::1"));
  CHECK_FALSE(contains("::1", "::"));
  CHECK_FALSE(contains("::1", "::2"));
  CHECK_FALSE(contains("::1", "8000::1"));
}

TEST_CASE("cidr matching never crosses address families by itself", "[acl]") {
  CHECK_FALSE(contains("0.0.0.0/0", "::"));
  CHECK_FALSE(contains("0.0.0.0/0", "::ffff:10.0.0.1"));  // mapping is the acl's job
  CHECK_FALSE(contains("::/0", "0.0.0.0"));
  CHECK_FALSE(contains("::/0", "10.0.0.1"));
  std::vector<unsigned char> odd(5, 0);
  CHECK_FALSE(block("0.0.0.0/0").contains(odd));
  CHECK_FALSE(block("::/0").contains(odd));
  CHECK_FALSE(block("::/0").contains({}));
}

// ---- acl --------------------------------------------------------------------------------------

TEST_CASE("acl with an empty allow list permits everyone not denied", "[acl]") {
  acl everyone;
  CHECK(everyone.permits_all());
  CHECK(everyone.permits(ip("10.0.0.1")));
  CHECK(everyone.permits(ip("2001:db8::1")));
  CHECK(everyone.permits("203.0.113.9"));

  acl no_bad({}, blocks({"203.0.113.0/24", "2001:db8:bad::/48"}));
  CHECK_FALSE(no_bad.permits_all());
  CHECK(no_bad.permits("10.0.0.1"));
  CHECK(no_bad.permits("203.0.114.0"));
  CHECK_FALSE(no_bad.permits("203.0.113.0"));
  CHECK_FALSE(no_bad.permits("203.0.113.255"));
  CHECK(no_bad.permits("2001:db8:bae::1"));  // just past the /48
  CHECK_FALSE(no_bad.permits("2001:db8:bad:ffff::1"));
  CHECK_FALSE(no_bad.permits("2001:db8:bad::1"));
  CHECK(no_bad.permits("2001:db8::1"));
}

TEST_CASE("acl with an allow list permits only what it lists", "[acl]") {
  acl a(blocks({"10.0.0.0/8", "192.168.1.7", "2001:db8::/32"}), {});
  CHECK(a.permits("10.1.2.3"));
  CHECK(a.permits("192.168.1.7"));
  CHECK_FALSE(a.permits("192.168.1.8"));
  CHECK_FALSE(a.permits("11.0.0.0"));
  CHECK(a.permits("2001:db8:ffff::1"));
  CHECK_FALSE(a.permits("2001:db9::1"));
  CHECK_FALSE(a.permits("::1"));
}

TEST_CASE("acl checks deny before allow", "[acl]") {
  acl a(blocks({"10.0.0.0/8", "2001:db8::/32"}),
        blocks({"10.1.0.0/16", "10.2.3.4", "2001:db8::/64"}));
  CHECK(a.permits("10.0.0.1"));
  CHECK_FALSE(a.permits("10.1.0.0"));
  CHECK_FALSE(a.permits("10.1.255.255"));
  CHECK(a.permits("10.2.3.5"));
  CHECK_FALSE(a.permits("10.2.3.4"));
  CHECK(a.permits("2001:db8:0:1::1"));
  CHECK_FALSE(a.permits("2001:db8::1"));
  // A block both allowed and denied is denied, whatever the order of the lists.
  acl both(blocks({"10.0.0.0/8"}), blocks({"10.0.0.0/8"}));
  CHECK_FALSE(both.permits("10.0.0.1"));
  acl wide_deny(blocks({"10.1.2.3"}), blocks({"0.0.0.0/0"}));
  CHECK_FALSE(wide_deny.permits("10.1.2.3"));
}

TEST_CASE("acl checks IPv4-mapped IPv6 clients as IPv4", "[acl]") {
  acl a(blocks({"10.0.0.0/8"}), blocks({"10.9.0.0/16"}));
  // What a dual-stack socket reports for an IPv4 peer.
  CHECK(a.permits(ip("::ffff:10.1.2.3")));
  CHECK(a.permits("::ffff:10.1.2.3"));
  CHECK(a.permits("::FFFF:0a01:0203"));
  CHECK_FALSE(a.permits(ip("::ffff:10.9.0.1")));  // denied as 10.9.0.1
  CHECK_FALSE(a.permits(ip("::ffff:11.0.0.1")));  // not allowed as 11.0.0.1

  // Rules written in mapped form are IPv4 rules.
  acl mapped_rules(blocks({"::ffff:10.0.0.0/104"}), blocks({"::ffff:10.9.0.1"}));
  REQUIRE(mapped_rules.allow().size() == 1);
  CHECK(mapped_rules.allow()[0] == block("10.0.0.0/8"));
  CHECK(mapped_rules.deny()[0] == block("10.9.0.1/32"));
  CHECK(mapped_rules.permits("10.1.2.3"));
  CHECK(mapped_rules.permits("::ffff:10.1.2.3"));
  CHECK_FALSE(mapped_rules.permits("10.9.0.1"));
  CHECK_FALSE(mapped_rules.permits("::ffff:10.9.0.1"));
  acl all_v4(blocks({"::ffff:0:0/96"}), {});
  CHECK(all_v4.allow()[0] == block("0.0.0.0/0"));
  CHECK(all_v4.permits("192.0.2.1"));
  CHECK_FALSE(all_v4.permits("2001:db8::1"));
}

TEST_CASE("acl never matches IPv6 blocks to IPv4 clients or IPv4 blocks to IPv6 ones", "[acl]") {
  acl v6_only(blocks({"::/0"}), {});
  CHECK(v6_only.permits("2001:db8::1"));
  CHECK_FALSE(v6_only.permits("10.0.0.1"));
  CHECK_FALSE(v6_only.permits("::ffff:10.0.0.1"));  // mapped: an IPv4 client
  acl v4_only(blocks({"0.0.0.0/0"}), {});
  CHECK(v4_only.permits("10.0.0.1"));
  CHECK(v4_only.permits("::ffff:10.0.0.1"));
  CHECK_FALSE(v4_only.permits("2001:db8::1"));
  CHECK_FALSE(v4_only.permits("::"));
  // IPv4-compatible (::a.b.c.d, deprecated) is not mapped: it is an IPv6 address.
  CHECK_FALSE(v4_only.permits("::10.0.0.1"));
  // A v6 block that merely covers the mapped range (prefix < 96) stays IPv6.
  acl covers_mapped(blocks({"::/80"}), {});
  CHECK(covers_mapped.allow()[0].v6);
  CHECK_FALSE(covers_mapped.permits("::ffff:10.0.0.1"));
  CHECK(covers_mapped.permits("::1"));
  // Deny lists do not cross either.
  acl deny_v6(blocks({}), blocks({"::/0"}));
  CHECK(deny_v6.permits("10.0.0.1"));
  CHECK(deny_v6.permits("::ffff:10.0.0.1"));
  CHECK_FALSE(deny_v6.permits("::1"));
}

TEST_CASE("acl refuses addresses it cannot read", "[acl]") {
  acl everyone;
  std::vector<unsigned char> five(5, 10);
  CHECK_FALSE(everyone.permits(std::span<const unsigned char>(five)));
  CHECK_FALSE(everyone.permits(std::span<const unsigned char>()));
  CHECK_FALSE(everyone.permits(std::string_view("")));
  CHECK_FALSE(everyone.permits("not an address"));
  CHECK_FALSE(everyone.permits("10.0.0.1:80"));
  CHECK_FALSE(everyone.permits("[::1]"));
  CHECK_FALSE(everyone.permits("10.0.0.0/8"));
  CHECK_FALSE(everyone.permits(std::string(200, '1')));
}

TEST_CASE("acl constructor checks prefixes and clears host bits", "[acl]") {
  cidr too_long;
  too_long.prefix = 33;
  CHECK_THROWS_AS(acl({too_long}, {}), std::invalid_argument);
  cidr too_long6;
  too_long6.v6 = true;
  too_long6.prefix = 129;
  CHECK_THROWS_AS(acl({}, {too_long6}), std::invalid_argument);

  cidr sloppy;  // hand-built, host bits set: 10.1.2.3/8
  sloppy.bytes = {10, 1, 2, 3, 99};
  sloppy.prefix = 8;
  acl a({sloppy}, {});
  CHECK(a.allow()[0] == block("10.0.0.0/8"));
  CHECK(a.permits("10.200.0.1"));
}
