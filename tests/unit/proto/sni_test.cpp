#include "zcproxy/sni.hpp"

#include <catch2/catch.hpp>
#include <cctype>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <vector>

using Catch::Matchers::Contains;
using zcproxy::sni::client_hello;
using zcproxy::sni::default_max_hello_bytes;
using zcproxy::sni::matches;
using zcproxy::sni::parse_client_hello;
using zcproxy::sni::parse_status;
using zcproxy::sni::route;

namespace {

// A ClientHello captured from a real client (see tests/data/tls/README.md).
std::string captured(const std::string& name) {
  const std::string path = std::string(ZCPROXY_SOURCE_DIR) + "/tests/data/tls/" + name;
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

client_hello parse(const std::string& bytes, std::size_t max_bytes = default_max_hello_bytes) {
  return parse_client_hello(std::span<const char>(bytes.data(), bytes.size()), max_bytes);
}

// Big-endian integers and length-prefixed vectors, as TLS encodes them.
std::string u8(std::size_t v) {
  return std::string(1, static_cast<char>(v & 0xff));
}
std::string u16(std::size_t v) {
  return u8(v >> 8) + u8(v);
}
std::string u24(std::size_t v) {
  return u8(v >> 16) + u16(v);
}
std::string vec8(const std::string& s) {
  return u8(s.size()) + s;
}
std::string vec16(const std::string& s) {
  return u16(s.size()) + s;
}

std::string extension(std::size_t type, const std::string& body) {
  return u16(type) + vec16(body);
}
std::string host_name_entry(const std::string& name) {
  return u8(0) + vec16(name);
}
std::string sni_extension(const std::string& name) {
  return extension(0, vec16(host_name_entry(name)));
}
// supported_versions {TLS 1.3, TLS 1.2}: an ordinary extension next to server_name.
const std::string versions_extension = extension(43, vec8(u16(0x0304) + u16(0x0303)));

// The ClientHello body, field by field, each with its length prefix, so a test can break one.
struct hello_fields {
  std::string version = u16(0x0303);
  std::string random = std::string(32, 'r');
  std::string session_id = vec8(std::string(32, 's'));
  std::string cipher_suites = vec16(u16(0x1301) + u16(0x1302));
  std::string compression = vec8(u8(0));
  std::string extensions = vec16(sni_extension("api.example.com") + versions_extension);

  std::string body() const {
    return version + random + session_id + cipher_suites + compression + extensions;
  }
};

std::string handshake(const std::string& body, std::size_t type = 1) {
  return u8(type) + u24(body.size()) + body;
}
std::string record(const std::string& fragment, std::size_t type = 22) {
  return u8(type) + u16(0x0301) + vec16(fragment);
}
std::string hello(const hello_fields& f) {
  return record(handshake(f.body()));
}
std::string hello_with_extensions(const std::string& extensions) {
  hello_fields f;
  f.extensions = vec16(extensions);
  return hello(f);
}

// `message` (a handshake message) cut into handshake records at the given offsets.
std::string in_records(const std::string& message, const std::vector<std::size_t>& cuts) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    out += record(message.substr(from, cut - from));
    from = cut;
  }
  return out + record(message.substr(from));
}

// The handshake message inside a captured single-record ClientHello.
std::string message_of(const std::string& single_record) {
  REQUIRE(single_record.size() > 5);
  REQUIRE(static_cast<unsigned char>(single_record[3]) * 256u +
              static_cast<unsigned char>(single_record[4]) ==
          single_record.size() - 5);
  return single_record.substr(5);
}

struct capture {
  const char* file;
  const char* server_name;
};
const capture captures[] = {
    {"openssl_tls13_sni.bin", "api.example.com"},
    {"openssl_tls12_sni.bin", "api.example.com"},
    {"openssl_tls13_mixed_case_sni.bin", "api.example.com"},  // sent as API.Example.COM
    {"openssl_no_sni.bin", ""},
    {"curl_sni.bin", "api.example.com"},
};

}  // namespace

TEST_CASE("sni: captured ClientHellos parse with their server name", "[sni]") {
  for (const auto& c : captures) {
    INFO(c.file);
    auto r = parse(captured(c.file));
    CHECK(r.status == parse_status::complete);
    CHECK(r.server_name == c.server_name);
    CHECK(r.reason.empty());
  }
}

TEST_CASE("sni: every prefix of a captured ClientHello is incomplete", "[sni]") {
  for (const auto& c : captures) {
    INFO(c.file);
    const auto bytes = captured(c.file);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      auto r = parse(bytes.substr(0, n));
      REQUIRE(r.status == parse_status::incomplete);
      CHECK(r.server_name.empty());
    }
  }
}

TEST_CASE("sni: bytes after the ClientHello are not examined", "[sni]") {
  const auto bytes = captured("curl_sni.bin");
  // A middlebox-compatibility ChangeCipherSpec record, then bytes that are no TLS at all.
  auto r = parse(bytes + record(u8(1), 20) + "GET / HTTP/1.1\r\n");
  CHECK(r.status == parse_status::complete);
  CHECK(r.server_name == "api.example.com");
  // Trailing bytes inside the ClientHello's own record are not counted against the cap either.
  const auto message = message_of(bytes);
  auto same_record = record(message + std::string(1000, 'x'));
  CHECK(parse(same_record, bytes.size()).status == parse_status::complete);
}

TEST_CASE("sni: a ClientHello split across two records parses", "[sni]") {
  const auto message = message_of(captured("openssl_tls13_sni.bin"));
  // Cuts inside the handshake header, at its end, inside the random and the extensions.
  for (std::size_t cut :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{4}, std::size_t{5},
        std::size_t{40}, message.size() / 2, message.size() - 1}) {
    INFO("cut at " << cut);
    const auto bytes = in_records(message, {cut});
    auto r = parse(bytes);
    CHECK(r.status == parse_status::complete);
    CHECK(r.server_name == "api.example.com");
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      REQUIRE(parse(bytes.substr(0, n)).status == parse_status::incomplete);
    }
  }
}

TEST_CASE("sni: a ClientHello sent one byte per record parses", "[sni]") {
  const auto message = message_of(captured("curl_sni.bin"));
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < message.size(); ++i) cuts.push_back(i);
  const auto bytes = in_records(message, cuts);
  REQUIRE(bytes.size() == 6 * message.size());
  auto r = parse(bytes);
  CHECK(r.status == parse_status::complete);
  CHECK(r.server_name == "api.example.com");
  // The cap counts every record header: exactly enough passes, one byte less does not.
  CHECK(parse(bytes, bytes.size()).status == parse_status::complete);
  auto capped = parse(bytes, bytes.size() - 1);
  CHECK(capped.status == parse_status::invalid);
  CHECK_THAT(capped.reason, Contains("ClientHello larger than"));
}

TEST_CASE("sni: a ClientHello longer than one record is reassembled", "[sni]") {
  // A padding extension (21) pushes the message past 2^14, the most one record may carry.
  const auto message =
      handshake(hello_fields{.extensions = vec16(extension(21, std::string(20000, '\0')) +
                                                 sni_extension("big.example.com"))}
                    .body());
  REQUIRE(message.size() > (1u << 14));
  const auto bytes = in_records(message, {1u << 14});
  auto r = parse(bytes, 64 * 1024);
  CHECK(r.status == parse_status::complete);
  CHECK(r.server_name == "big.example.com");

  auto capped = parse(bytes);
  CHECK(capped.status == parse_status::invalid);
  CHECK(capped.reason == "ClientHello larger than 16384 bytes");
  // Rejected from the declared length alone: the record and handshake headers suffice.
  CHECK(parse(bytes.substr(0, 9)).status == parse_status::invalid);
  CHECK(parse(bytes.substr(0, 8)).status == parse_status::incomplete);
}

TEST_CASE("sni: the size cap is inclusive", "[sni]") {
  const auto bytes = captured("openssl_tls13_sni.bin");
  CHECK(parse(bytes, bytes.size()).status == parse_status::complete);
  auto r = parse(bytes, bytes.size() - 1);
  CHECK(r.status == parse_status::invalid);
  CHECK(r.reason == "ClientHello larger than " + std::to_string(bytes.size() - 1) + " bytes");
}

TEST_CASE("sni: a synthetic ClientHello parses", "[sni]") {
  auto r = parse(hello(hello_fields{}));
  CHECK(r.status == parse_status::complete);
  CHECK(r.server_name == "api.example.com");
}

TEST_CASE("sni: a ClientHello without extensions or server_name has no server name", "[sni]") {
  hello_fields no_extensions;
  no_extensions.extensions.clear();  // TLS 1.0 style: the field is absent
  auto r = parse(hello(no_extensions));
  CHECK(r.status == parse_status::complete);
  CHECK(r.server_name.empty());

  auto without_sni = parse(hello_with_extensions(versions_extension));
  CHECK(without_sni.status == parse_status::complete);
  CHECK(without_sni.server_name.empty());

  auto empty_block = parse(hello_with_extensions(""));
  CHECK(empty_block.status == parse_status::complete);
  CHECK(empty_block.server_name.empty());
}

TEST_CASE("sni: a 255-byte server name is accepted and lower-cased", "[sni]") {
  std::string name = std::string(63, 'A') + "." + std::string(63, 'b') + "." +
                     std::string(63, 'C') + "." + std::string(60, 'd') + "_-9";
  REQUIRE(name.size() == 255);
  auto r = parse(hello_with_extensions(sni_extension(name)));
  CHECK(r.status == parse_status::complete);
  std::string lower = name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CHECK(r.server_name == lower);
}

TEST_CASE("sni: server name entries of unknown type are skipped", "[sni]") {
  const auto list = u8(7) + vec16("opaque") + host_name_entry("api.example.com");
  auto r = parse(hello_with_extensions(extension(0, vec16(list))));
  CHECK(r.status == parse_status::complete);
  CHECK(r.server_name == "api.example.com");
}

TEST_CASE("sni: not TLS is recognised from the first bytes", "[sni]") {
  const std::vector<std::string> others = {
      "GET / HTTP/1.1\r\n",
      "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
      "PROXY TCP4 192.0.2.1 192.0.2.2 5000 443\r\n",
      "G",                  // one byte is enough
      u8(0x16) + u8(0x02),  // handshake type, but no TLS version major
      u8(0x16) + u8(0x00) + u8(0x00),
      record(std::string(10, 'x'), 23),                // application data first: no handshake
      record(u16(0x0228), 21),                         // an alert first
      u8(0x80) + u8(0x2e) + u8(0x01) + u8(3) + u8(1),  // SSLv2-compatible ClientHello
      std::string(1, '\0'),
  };
  for (const auto& bytes : others) {
    INFO("bytes: " << bytes);
    auto r = parse(bytes);
    CHECK(r.status == parse_status::not_tls);
  }
  // Prefixes of a handshake record header wait for more.
  CHECK(parse("").status == parse_status::incomplete);
  CHECK(parse(u8(0x16)).status == parse_status::incomplete);
  CHECK(parse(u8(0x16) + u8(0x03)).status == parse_status::incomplete);
  CHECK(parse(u8(0x16) + u8(0x03) + u8(0x01) + u8(0x01)).status == parse_status::incomplete);
}

TEST_CASE("sni: malformed ClientHellos are invalid with a reason", "[sni]") {
  struct malformed {
    const char* what;
    std::string bytes;
    const char* reason;  // a part of the expected reason
  };
  const auto good_body = hello_fields{}.body();
  const auto good_message = handshake(good_body);
  const auto two_records_then = [&](std::size_t type, std::size_t major) {
    auto second = record(good_message.substr(10), type);
    second[1] = static_cast<char>(major);
    return record(good_message.substr(0, 10)) + second;
  };
  const std::vector<malformed> cases = {
      // record layer
      {"empty record", record(""), "empty handshake record"},
      {"record longer than 2^14 + 2048", u8(22) + u16(0x0303) + u16(18433) + good_message,
       "record length 18433 exceeds 18432"},
      {"application data record inside the ClientHello", two_records_then(23, 3),
       "record of type 23 inside the ClientHello"},
      {"alert record inside the ClientHello", two_records_then(21, 3), "record of type 21"},
      {"second record not TLS 3.x", two_records_then(22, 2), "record version major 2"},
      {"empty second record", record(good_message.substr(0, 10)) + record(""),
       "empty handshake record"},
      // handshake layer
      {"ServerHello instead of ClientHello", record(handshake(good_body, 2)),
       "handshake type 2 is not ClientHello"},
      {"Certificate instead of ClientHello", record(handshake(good_body, 11)), "handshake type 11"},
      {"handshake length beyond the cap", record(u8(1) + u24(0x4000)),
       "ClientHello larger than 16384 bytes"},
      {"handshake length shorter than its body", record(u8(1) + u24(40) + good_body),
       "session id runs past the end of the ClientHello"},
      {"empty handshake message", record(handshake("")),
       "client version runs past the end of the ClientHello"},
      // ClientHello fields
      {"client version 2.0", hello(hello_fields{.version = u16(0x0200)}), "client version major 2"},
      {"random cut short", record(handshake(u16(0x0303) + std::string(20, 'r'))),
       "client random runs past"},
      {"session id longer than 32", hello(hello_fields{.session_id = vec8(std::string(33, 's'))}),
       "session id length 33 exceeds 32"},
      {"session id overrunning the message",
       record(handshake(u16(0x0303) + std::string(32, 'r') + u8(32) + std::string(10, 's'))),
       "session id runs past the end of the ClientHello"},
      {"odd cipher suites length", hello(hello_fields{.cipher_suites = vec16("\x13\x01\x13")}),
       "cipher suites length 3"},
      {"no cipher suites", hello(hello_fields{.cipher_suites = u16(0)}), "cipher suites length 0"},
      {"cipher suites overrunning the message",
       hello(hello_fields{.cipher_suites = u16(0x1000) + u16(0x1301), .extensions = ""}),
       "cipher suites runs past the end of the ClientHello"},
      {"no compression methods", hello(hello_fields{.compression = u8(0)}),
       "no compression methods"},
      {"compression methods overrunning the message",
       hello(hello_fields{.compression = u8(200) + u8(0), .extensions = ""}),
       "compression methods runs past"},
      // extension list
      {"extensions length beyond the message",
       hello(hello_fields{.extensions = u16(100) + sni_extension("api.example.com")}),
       "extensions length 100 does not match the 24 bytes left"},
      {"bytes after the extensions",
       hello(hello_fields{.extensions = vec16(sni_extension("api.example.com")) + "xx"}),
       "does not match"},
      {"one byte where the extensions length belongs", hello(hello_fields{.extensions = u8(0)}),
       "extensions length runs past the end of the ClientHello"},
      {"extension header cut short", hello_with_extensions(u16(43) + u8(0)),
       "extension length runs past the end of the extensions"},
      {"extension overrunning the list",
       hello_with_extensions(u16(16) + u16(50) + std::string(10, 'h')),
       "extension 0x0010 runs past the end of the extensions"},
      {"server_name extension overrunning the list",
       hello_with_extensions(u16(0) + u16(200) + vec16(host_name_entry("api.example.com"))),
       "extension 0x0000 runs past the end of the extensions"},
      {"two server_name extensions",
       hello_with_extensions(sni_extension("a.example.com") + sni_extension("b.example.com")),
       "more than one server_name extension"},
      // server_name extension
      {"server_name extension without a body", hello_with_extensions(extension(0, "")),
       "server_name list length runs past the end of the extension"},
      {"empty server_name list", hello_with_extensions(extension(0, u16(0))),
       "empty server_name list"},
      {"server_name list length beyond the extension",
       hello_with_extensions(extension(0, u16(100) + host_name_entry("api.example.com"))),
       "server_name list length 100 does not match the extension's 18 bytes"},
      {"server name overrunning the list",
       hello_with_extensions(extension(0, vec16(u8(0) + u16(50) + "api.example.com"))),
       "server name runs past the end of the server_name list"},
      {"server name entry cut short",
       hello_with_extensions(extension(0, vec16(host_name_entry("api.example.com") + u8(0)))),
       "server name length runs past the end of the server_name list"},
      {"two host names",
       hello_with_extensions(extension(
           0, vec16(host_name_entry("a.example.com") + host_name_entry("b.example.com")))),
       "more than one host_name"},
      // the host name itself
      {"zero-length server name", hello_with_extensions(sni_extension("")), "empty server name"},
      {"server name with a NUL byte",
       hello_with_extensions(sni_extension(std::string("api\0.example.com", 16))), "NUL byte"},
      {"server name with a space", hello_with_extensions(sni_extension("api example.com")),
       "byte 0x20"},
      {"server name with a slash", hello_with_extensions(sni_extension("api.example.com/x")),
       "byte 0x2f"},
      {"server name with a colon (an IPv6 literal)", hello_with_extensions(sni_extension("::1")),
       "byte 0x3a"},
      {"server name in UTF-8",
       hello_with_extensions(sni_extension("b\xc3\xbc"
                                           "cher.example")),
       "byte 0xc3"},
      {"server name longer than 255", hello_with_extensions(sni_extension(std::string(256, 'a'))),
       "server name length 256 exceeds 255"},
  };
  REQUIRE(cases.size() >= 15);
  for (const auto& c : cases) {
    INFO(c.what);
    auto r = parse(c.bytes);
    CHECK(r.status == parse_status::invalid);
    CHECK_THAT(r.reason, Contains(c.reason));
    CHECK(r.server_name.empty());
    // No prefix is ever complete: a prefix waits for more or is already known to be invalid.
    for (std::size_t n = 0; n < c.bytes.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      auto p = parse(c.bytes.substr(0, n));
      REQUIRE((p.status == parse_status::incomplete || p.status == parse_status::invalid));
    }
  }
}

TEST_CASE("sni: malformed lengths are rejected before the rest arrives", "[sni]") {
  // Header of a record that is too long: five bytes suffice.
  CHECK(parse(u8(22) + u16(0x0301) + u16(0xffff)).status == parse_status::invalid);
  // A session id length of 33, with nothing after it yet.
  const auto bytes = hello(hello_fields{.session_id = vec8(std::string(33, 's'))});
  const std::size_t through_length_byte = 5 + 4 + 2 + 32 + 1;
  CHECK(parse(bytes.substr(0, through_length_byte - 1)).status == parse_status::incomplete);
  CHECK(parse(bytes.substr(0, through_length_byte)).status == parse_status::invalid);
  // A wrong handshake type, from the first byte of the message.
  CHECK(parse(record(handshake(hello_fields{}.body(), 2)).substr(0, 6)).status ==
        parse_status::invalid);
}

TEST_CASE("sni: mutated ClientHellos give the same verdict on every prefix", "[sni]") {
  // Random byte changes hit lengths, types and names. Whatever the verdict on the whole input, a
  // prefix must either wait for more or already give that same verdict: the parser never reads
  // past what it was given (run under ASan to see that) and never changes its mind later. Only the
  // reason may differ: a later record's header can be judged before an earlier field.
  std::mt19937 rng(20261125);
  for (const auto& c : captures) {
    INFO(c.file);
    const auto original = captured(c.file);
    for (int round = 0; round < 200; ++round) {
      auto bytes = original;
      const int changes = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < changes; ++i) {
        // Favour the first 100 bytes, where the record, handshake and early field lengths are.
        const std::size_t at = rng() % 2 ? rng() % 100 : rng() % bytes.size();
        bytes[at] = static_cast<char>(rng() % 4 == 0 ? bytes[at] ^ 0x80 : rng());
      }
      const auto whole = parse(bytes);
      for (std::size_t n = 0; n < bytes.size(); ++n) {
        const auto p = parse(bytes.substr(0, n));
        if (p.status == parse_status::incomplete) continue;
        INFO("round " << round << ", prefix of " << n << " bytes: " << p.reason << " / "
                      << whole.reason);
        REQUIRE(p.status == whole.status);
        REQUIRE(p.server_name == whole.server_name);
      }
    }
  }
}

TEST_CASE("sni: matches compares exact names case-insensitively", "[sni]") {
  CHECK(matches("api.example.com", "api.example.com"));
  CHECK(matches("API.Example.COM", "api.example.com"));
  CHECK(matches("api.example.com", "API.EXAMPLE.COM"));
  CHECK_FALSE(matches("api.example.com", "www.example.com"));
  CHECK_FALSE(matches("api.example.com", "api.example.co"));
  CHECK_FALSE(matches("api.example.com", "xapi.example.com"));
  CHECK_FALSE(matches("api.example.com", ""));
  CHECK_FALSE(matches("", ""));
}

TEST_CASE("sni: a wildcard matches names below its suffix at any depth", "[sni]") {
  CHECK(matches("*.example.com", "api.example.com"));
  CHECK(matches("*.example.com", "a.b.example.com"));
  CHECK(matches("*.Example.COM", "API.example.com"));
  CHECK(matches("*.com", "example.com"));
  CHECK_FALSE(matches("*.example.com", "example.com"));
  CHECK_FALSE(matches("*.example.com", "badexample.com"));
  CHECK_FALSE(matches("*.example.com", ".example.com"));
  CHECK_FALSE(matches("*.example.com", "example.com.evil.org"));
  CHECK_FALSE(matches("*.example.com", ""));
  // Only a leading "*." is special; any other '*' is literal and matches no valid host name.
  CHECK_FALSE(matches("*", "api.example.com"));
  CHECK_FALSE(matches("*.", "api.example.com"));
  CHECK_FALSE(matches("api.*.com", "api.example.com"));
  CHECK_FALSE(matches("*example.com", "api.example.com"));
}

TEST_CASE("sni: route prefers an exact name to any wildcard", "[sni]") {
  CHECK(route({"*.example.com", "api.example.com"}, "api.example.com") == 1u);
  CHECK(route({"api.example.com", "*.example.com"}, "api.example.com") == 0u);
  CHECK(route({"*.example.com", "api.example.com"}, "www.example.com") == 0u);
  CHECK(route({"*.api.example.com", "*.example.com", "API.example.com"}, "api.EXAMPLE.com") == 2u);
}

TEST_CASE("sni: route picks the longest matching wildcard", "[sni]") {
  const std::vector<std::string> patterns = {"*.com", "*.b.example.com", "*.example.com"};
  CHECK(route(patterns, "a.b.example.com") == 1u);
  CHECK(route(patterns, "x.a.b.example.com") == 1u);
  CHECK(route(patterns, "c.example.com") == 2u);
  CHECK(route(patterns, "b.example.com") == 2u);  // "*.b.example.com" needs one more label
  CHECK(route(patterns, "example.com") == 0u);
  CHECK(route(patterns, "example.org") == std::nullopt);
}

TEST_CASE("sni: route handles ties, no match and no name", "[sni]") {
  CHECK(route({"*.example.com", "*.EXAMPLE.com"}, "a.example.com") == 0u);
  CHECK(route({"a.example.com", "A.example.com"}, "a.example.com") == 0u);
  CHECK(route({"*.example.com"}, "example.com") == std::nullopt);
  CHECK(route({"*.example.com", "example.com"}, "example.com") == 1u);
  CHECK(route({}, "a.example.com") == std::nullopt);
  CHECK(route({"*.example.com", "a.example.com"}, "") == std::nullopt);
}

TEST_CASE("sni: a captured ClientHello routes by its server name", "[sni]") {
  const std::vector<std::string> patterns = {"*.example.com", "api.example.com", "*.example.org"};
  auto r = parse(captured("curl_sni.bin"));
  REQUIRE(r.status == parse_status::complete);
  CHECK(route(patterns, r.server_name) == 1u);
  auto mixed = parse(captured("openssl_tls13_mixed_case_sni.bin"));
  REQUIRE(mixed.status == parse_status::complete);
  CHECK(route(patterns, mixed.server_name) == 1u);
  auto none = parse(captured("openssl_no_sni.bin"));
  REQUIRE(none.status == parse_status::complete);
  CHECK(route(patterns, none.server_name) == std::nullopt);
}

TEST_CASE("sni: normalize_pattern lower-cases names and wildcards", "[sni]") {
  CHECK(zcproxy::sni::normalize_pattern("API.Example.com") == "api.example.com");
  CHECK(zcproxy::sni::normalize_pattern("*.Example.COM") == "*.example.com");
  CHECK(zcproxy::sni::normalize_pattern("localhost") == "localhost");
}

TEST_CASE("sni: normalize_pattern refuses what no server name could match", "[sni]") {
  for (const char* bad : {"", "*.", "*", "a*.example.com", "*.*.example.com", "*example.com",
                          "api.example.com:443", "https://api.example.com", "api example.com"}) {
    INFO(bad);
    CHECK_FALSE(zcproxy::sni::normalize_pattern(bad));
  }
}
