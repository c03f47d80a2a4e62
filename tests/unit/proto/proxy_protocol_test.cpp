#include "zcproxy/proxy_protocol.hpp"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::string_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using zcproxy::address;
namespace pp = zcproxy::proxy_protocol;
using pp::status;

CATCH_REGISTER_ENUM(zcproxy::proxy_protocol::status, zcproxy::proxy_protocol::status::complete,
                    zcproxy::proxy_protocol::status::incomplete,
                    zcproxy::proxy_protocol::status::invalid)
CATCH_REGISTER_ENUM(zcproxy::proxy_protocol::family, zcproxy::proxy_protocol::family::unspec,
                    zcproxy::proxy_protocol::family::tcp4, zcproxy::proxy_protocol::family::tcp6,
                    zcproxy::proxy_protocol::family::unix_socket)

namespace Catch {
template <>
struct StringMaker<zcproxy::address> {
  static std::string convert(const zcproxy::address& a) {
    return (a.v6 ? "[" + a.ip + "]" : a.ip) + ":" + std::to_string(a.port);
  }
};
}  // namespace Catch

namespace {

// Always through std::string: a string literal would bring its terminating NUL along.
pp::result parse(const std::string& data, std::size_t max_size = pp::default_max_size) {
  return pp::parse(data, max_size);
}

status status_of(const std::string& data) {
  return parse(data).status;
}

// A header that must parse; its fields for the test to check.
pp::header parsed(const std::string& data) {
  const auto r = parse(data);
  INFO("error: " << r.error);
  REQUIRE(r.status == status::complete);
  return r.header;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header: signature, version/command, family/transport, `length` big-endian, `body`.
std::string v2(int ver_cmd, int fam, const std::string& body, std::size_t length) {
  return signature + bytes({ver_cmd, fam, int(length >> 8), int(length & 0xff)}) + body;
}
std::string v2(int ver_cmd, int fam, const std::string& body) {
  return v2(ver_cmd, fam, body, body.size());
}

std::string tlv(int type, const std::string& value) {
  return bytes({type, int(value.size() >> 8), int(value.size() & 0xff)}) + value;
}

// 192.168.0.1:56324 -> 10.0.0.1:443, as v2's IPv4 address block.
const std::string v4_block = bytes({192, 168, 0, 1, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb});
// [2001:db8::1]:1234 -> [::1]:80, as v2's IPv6 address block.
const std::string v6_block = bytes({0x20, 0x01, 0x0d, 0xb8}) + std::string(11, '\0') + "\x01" +
                             std::string(15, '\0') + "\x01" + bytes({0x04, 0xd2, 0x00, 80});

std::string sun_path(const std::string& path) {
  auto padded = path;
  padded.resize(108, '\0');
  return padded;
}

const std::string ffff_v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";  // the longest: 39 chars
const std::string v1_tcp4 = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
const std::string v1_tcp6 = "PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:10.0.0.1 0 65535\r\n";
const std::string v1_unknown_longest =
    "PROXY UNKNOWN " + ffff_v6 + " " + ffff_v6 + " 65535 65535\r\n";  // the spec's 107 bytes

}  // namespace

TEST_CASE("v1 TCP4 header is parsed and the payload after it left alone", "[proxy_protocol]") {
  const auto data = v1_tcp4 + "GET / HTTP/1.1\r\n\r\n";
  const auto h = parsed(data);
  CHECK(h.version == 1);
  CHECK(h.command == pp::command::proxy);
  CHECK(h.family == pp::family::tcp4);
  CHECK(h.transport == pp::transport::stream);
  CHECK(h.source == address{"192.168.0.1", 56324, false});
  CHECK(h.destination == address{"192.168.0.11", 443, false});
  CHECK(h.has_ip_addresses());
  CHECK(h.tlvs.empty());
  CHECK(h.size == v1_tcp4.size());
  CHECK(data.substr(h.size) == "GET / HTTP/1.1\r\n\r\n");
}

TEST_CASE("v1 TCP6 header is parsed with its addresses normalized", "[proxy_protocol]") {
  const auto h = parsed(v1_tcp6);
  CHECK(h.family == pp::family::tcp6);
  CHECK(h.transport == pp::transport::stream);
  CHECK(h.source == address{"2001:db8::1", 0, true});
  CHECK(h.destination == address{"::ffff:10.0.0.1", 65535, true});
  CHECK(h.size == v1_tcp6.size());
}

TEST_CASE("v1 UNKNOWN header leaves the connection's own addresses", "[proxy_protocol]") {
  REQUIRE(v1_unknown_longest.size() == 107);
  for (const auto& line :
       {"PROXY UNKNOWN\r\n"s, "PROXY UNKNOWN anything \t at all\r\n"s, v1_unknown_longest}) {
    INFO(line);
    const auto h = parsed(line + "payload");
    CHECK(h.version == 1);
    CHECK(h.command == pp::command::local);
    CHECK(h.family == pp::family::unspec);
    CHECK_FALSE(h.has_ip_addresses());
    CHECK(h.size == line.size());
  }
}

TEST_CASE("v1 longest TCP6 line is accepted", "[proxy_protocol]") {
  const auto line = "PROXY TCP6 " + ffff_v6 + " " + ffff_v6 + " 65535 65535\r\n";
  REQUIRE(line.size() == 104);
  const auto h = parsed(line);
  CHECK(h.source == address{ffff_v6, 65535, true});
  CHECK(h.size == 104);
}

TEST_CASE("v2 TCP4 header is parsed and the payload after it left alone", "[proxy_protocol]") {
  const auto data = v2(0x21, 0x11, v4_block) + "payload";
  const auto h = parsed(data);
  CHECK(h.version == 2);
  CHECK(h.command == pp::command::proxy);
  CHECK(h.family == pp::family::tcp4);
  CHECK(h.transport == pp::transport::stream);
  CHECK(h.source == address{"192.168.0.1", 56324, false});
  CHECK(h.destination == address{"10.0.0.1", 443, false});
  CHECK(h.has_ip_addresses());
  CHECK(h.size == 28);
  CHECK(data.substr(h.size) == "payload");
}

TEST_CASE("v2 TCP6 header is parsed", "[proxy_protocol]") {
  const auto h = parsed(v2(0x21, 0x21, v6_block));
  CHECK(h.family == pp::family::tcp6);
  CHECK(h.source == address{"2001:db8::1", 1234, true});
  CHECK(h.destination == address{"::1", 80, true});
  CHECK(h.size == 16 + 36);
}

TEST_CASE("v2 UNIX header gives the socket paths", "[proxy_protocol]") {
  const auto h = parsed(v2(0x21, 0x31, sun_path("/run/client.sock") + sun_path("/run/zc.sock")));
  CHECK(h.family == pp::family::unix_socket);
  CHECK(h.transport == pp::transport::stream);
  CHECK(h.source_path == "/run/client.sock");
  CHECK(h.destination_path == "/run/zc.sock");
  CHECK_FALSE(h.has_ip_addresses());
  CHECK(h.size == 16 + 216);

  // An abstract name starts with NUL: it keeps it and loses only the padding.
  const auto abstract = parsed(v2(0x21, 0x32, sun_path("\0client"s) + sun_path("")));
  CHECK(abstract.transport == pp::transport::dgram);
  CHECK(abstract.source_path == "\0client"s);
  CHECK(abstract.destination_path.empty());
}

TEST_CASE("v2 UDP is accepted and flagged as dgram for the caller to refuse", "[proxy_protocol]") {
  const auto h = parsed(v2(0x21, 0x12, v4_block));
  CHECK(h.family == pp::family::tcp4);
  CHECK(h.transport == pp::transport::dgram);
  CHECK(h.source == address{"192.168.0.1", 56324, false});
}

TEST_CASE("v2 PROXY with UNSPEC family skips its address block", "[proxy_protocol]") {
  const auto h = parsed(v2(0x21, 0x00, "opaque"s) + "payload");
  CHECK(h.command == pp::command::proxy);
  CHECK(h.family == pp::family::unspec);
  CHECK_FALSE(h.has_ip_addresses());
  CHECK(h.tlvs.empty());
  CHECK(h.size == 16 + 6);
}

TEST_CASE("v2 LOCAL ignores family and addresses", "[proxy_protocol]") {
  const auto empty = parsed(pp::encode_v2_local());
  CHECK(empty.command == pp::command::local);
  CHECK(empty.family == pp::family::unspec);
  CHECK(empty.size == 16);

  // Receivers must not assume a LOCAL block is empty, nor look at its family (spec 2.2).
  const auto with_block = parsed(v2(0x20, 0x11, v4_block) + "payload");
  CHECK(with_block.command == pp::command::local);
  CHECK(with_block.family == pp::family::unspec);
  CHECK_FALSE(with_block.has_ip_addresses());
  CHECK(with_block.size == 28);
  CHECK(parsed(v2(0x20, 0xff, "xyz"s)).size == 19);
}

TEST_CASE("v2 TLVs are walked and exposed in order", "[proxy_protocol]") {
  const auto body = v4_block + tlv(0x01, "h2") + tlv(0x02, "example.com") + tlv(0x04, "");
  const auto data = v2(0x21, 0x11, body) + "GET";
  const auto h = parsed(data);
  CHECK(h.source == address{"192.168.0.1", 56324, false});
  REQUIRE(h.tlvs.size() == 3);
  CHECK(h.tlvs[0] == pp::tlv{0x01, "h2"});
  CHECK(h.tlvs[1] == pp::tlv{0x02, "example.com"});
  CHECK(h.tlvs[2] == pp::tlv{0x04, ""});
  CHECK(h.size == 16 + body.size());
  CHECK(data.substr(h.size) == "GET");
}

TEST_CASE("encode then parse gives the same addresses back", "[proxy_protocol]") {
  const std::vector<std::pair<address, address>> pairs = {
      {{"192.0.2.7", 40000, false}, {"198.51.100.1", 443, false}},
      {{"2001:db8::7", 0, true}, {"::1", 65535, true}},
  };
  for (const auto& [src, dst] : pairs) {
    for (const auto& encoded : {pp::encode_v1(src, dst), pp::encode_v2(src, dst)}) {
      INFO(src.ip << " -> " << dst.ip << ", " << encoded.size() << " bytes");
      const auto h = parsed(encoded + "data");
      CHECK(h.command == pp::command::proxy);
      CHECK(h.transport == pp::transport::stream);
      CHECK(h.family == (src.v6 ? pp::family::tcp6 : pp::family::tcp4));
      CHECK(h.source == src);
      CHECK(h.destination == dst);
      CHECK(h.size == encoded.size());
    }
  }
  CHECK(parsed(pp::encode_v2_local()).command == pp::command::local);
}

TEST_CASE("encoders write the spec's bytes", "[proxy_protocol]") {
  const address src{"192.168.0.1", 56324, false}, dst{"10.0.0.1", 443, false};
  CHECK(pp::encode_v1(src, dst) == "PROXY TCP4 192.168.0.1 10.0.0.1 56324 443\r\n");
  CHECK(pp::encode_v2(src, dst) == v2(0x21, 0x11, v4_block));
  CHECK(pp::encode_v2({"2001:db8::1", 1234, true}, {"::1", 80, true}) == v2(0x21, 0x21, v6_block));
  CHECK(pp::encode_v2_local() == signature + bytes({0x20, 0x00, 0x00, 0x00}));
  // A Unix socket on either side: no address to carry. v2 says LOCAL (0x20), not PROXY with
  // family UNSPEC (0x21 0x00), which HAProxy refuses.
  address unix_side;
  unix_side.local = true;
  unix_side.path = "/run/app.sock";
  for (const auto& [a, b] : {std::pair{unix_side, dst}, std::pair{src, unix_side}}) {
    CHECK(pp::encode_v1(a, b) == "PROXY UNKNOWN\r\n");
    CHECK(pp::encode_v2(a, b) == signature + bytes({0x20, 0x00, 0x00, 0x00}));
  }
  // IPv6 goes out in canonical form, whatever the config wrote.
  CHECK(pp::encode_v1({"2001:DB8:0::1", 1, true}, {"::1", 2, true}) ==
        "PROXY TCP6 2001:db8::1 ::1 1 2\r\n");
}

TEST_CASE("mixed families are sent as TCP6 with the IPv4 address mapped", "[proxy_protocol]") {
  const address v4{"192.0.2.1", 1000, false}, v6{"2001:db8::2", 443, true};
  CHECK(pp::encode_v1(v4, v6) == "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1000 443\r\n");
  const auto h = parsed(pp::encode_v2(v6, v4));
  CHECK(h.family == pp::family::tcp6);
  CHECK(h.source == v6);
  CHECK(h.destination == address{"::ffff:192.0.2.1", 1000, true});
}

TEST_CASE("encoding an address that is not an IP literal is refused", "[proxy_protocol]") {
  const address good{"127.0.0.1", 1, false}, name{"localhost", 1, false};
  const address wrong_family{"::1", 1, false};  // IPv6 text, flagged IPv4
  CHECK_THROWS_AS(pp::encode_v1(name, good), std::invalid_argument);
  CHECK_THROWS_AS(pp::encode_v2(good, wrong_family), std::invalid_argument);
}

TEST_CASE("every prefix of a valid header is incomplete and the whole one complete",
          "[proxy_protocol]") {
  const std::vector<std::string> headers = {
      v1_tcp4,
      v1_tcp6,
      "PROXY UNKNOWN\r\n",
      v1_unknown_longest,
      v2(0x21, 0x11, v4_block),
      v2(0x21, 0x21, v6_block),
      v2(0x21, 0x31, sun_path("/a") + sun_path("/b")),
      v2(0x21, 0x00, ""),
      v2(0x20, 0x11, v4_block),
      v2(0x21, 0x11, v4_block + tlv(0x02, "example.com") + tlv(0xe0, "")),
  };
  for (const auto& header : headers) {
    INFO("header: " << header);
    for (std::size_t n = 0; n < header.size(); ++n) {
      INFO("first " << n << " bytes");
      const auto r = parse(header.substr(0, n));
      INFO("error: " << r.error);
      CHECK(r.status == status::incomplete);
    }
    CHECK(parsed(header).size == header.size());
    CHECK(parsed(header + "\r\n\r\n\0payload"s).size == header.size());
  }
}

TEST_CASE("non-PROXY clients are refused at their first byte", "[proxy_protocol]") {
  CHECK(status_of("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n") == status::invalid);
  CHECK(status_of("G") == status::invalid);
  CHECK(status_of(bytes({0x16, 0x03, 0x01, 0x02, 0x00})) == status::invalid);  // TLS ClientHello
  CHECK(status_of("SSH-2.0-OpenSSH_9.6\r\n") == status::invalid);
  CHECK(status_of(bytes({0x00, 0x01, 0x02, 0xff, 0xfe, 0x80})) == status::invalid);  // garbage
  CHECK(status_of("\r\n\r\nX") == status::invalid);  // v2 signature, wrong at byte 5
  CHECK(status_of(signature.substr(0, 11) + "X" + bytes({0x21, 0x11, 0, 12}) + v4_block) ==
        status::invalid);                        // v2 signature, wrong at its last byte
  CHECK(status_of("PROXX") == status::invalid);  // v1 prefix, wrong at byte 5
  CHECK(status_of("") == status::incomplete);    // nothing yet: no verdict
}

TEST_CASE("malformed v1 headers are invalid", "[proxy_protocol]") {
  CHECK(status_of("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);   // lower case
  CHECK(status_of("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);   // lower case
  CHECK(status_of("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);  // double space
  CHECK(status_of("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);  // double space
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n") == status::invalid);  // double space
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n") == status::invalid);  // trailing space
  CHECK(status_of("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);  // tab
  CHECK(status_of("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);   // protocol
  CHECK(status_of("PROXY\r\n") == status::invalid);                            // no protocol
  CHECK(status_of("PROXY \r\n") == status::invalid);                           // no protocol
  CHECK(status_of("PROXY UNKNOWNX\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n") == status::invalid);       // LF alone
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET") == status::invalid);    // CR alone
  CHECK(status_of("PROXY UNKNOWN " + std::string(93, 'x')) == status::invalid);  // 107, no CRLF
  CHECK(status_of("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n") ==
        status::invalid);  // CRLF ends at byte 108
  CHECK(status_of("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);  // heading zero
  CHECK(status_of("PROXY TCP4 localhost 5.6.7.8 1 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 ::1 ::1 1 2\r\n") == status::invalid);           // IPv6 in TCP4
  CHECK(status_of("PROXY TCP4 1.2.3.4 ::1 1 2\r\n") == status::invalid);       // IPv6 in TCP4
  CHECK(status_of("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n") == status::invalid);   // IPv4 in TCP6
  CHECK(status_of("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n") == status::invalid);  // zone id
  CHECK(status_of("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"s) == status::invalid);  // NUL
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n") == status::invalid);  // heading zero
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 http 2\r\n") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n") == status::invalid);      // port missing
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n") == status::invalid);  // extra field
  CHECK(status_of("PROXY TCP4\r\n") == status::invalid);
}

TEST_CASE("malformed v2 headers are invalid", "[proxy_protocol]") {
  CHECK(status_of(v2(0x11, 0x11, v4_block)) == status::invalid);  // version 1
  CHECK(status_of(v2(0x01, 0x11, v4_block)) == status::invalid);  // version 0
  CHECK(status_of(v2(0x31, 0x11, v4_block)) == status::invalid);  // version 3
  CHECK(status_of(v2(0x22, 0x11, v4_block)) == status::invalid);  // command 2
  CHECK(status_of(v2(0x2f, 0x11, v4_block)) == status::invalid);  // command 15
  CHECK(status_of(v2(0x21, 0x41, v4_block)) == status::invalid);  // family 4
  CHECK(status_of(v2(0x21, 0xf1, v4_block)) == status::invalid);  // family 15
  CHECK(status_of(v2(0x21, 0x13, v4_block)) == status::invalid);  // transport 3
  CHECK(status_of(v2(0x21, 0x10, v4_block)) == status::invalid);  // IPv4 without transport
  CHECK(status_of(v2(0x21, 0x01, v4_block)) == status::invalid);  // stream without family
  CHECK(status_of(v2(0x21, 0x11, v4_block.substr(0, 11))) == status::invalid);  // short
  CHECK(status_of(v2(0x21, 0x21, v4_block)) == status::invalid);  // 12 bytes for IPv6's 36
  CHECK(status_of(v2(0x21, 0x31, std::string(215, '\0'))) == status::invalid);  // UNIX: 216
  CHECK(status_of(v2(0x21, 0x11, v4_block + bytes({0x01, 0x00, 0x05}) + "h2")) ==
        status::invalid);  // TLV overruns the header
  CHECK(status_of(v2(0x21, 0x11, v4_block + bytes({0x01, 0x00, 0x03}) + "h2") + "X") ==
        status::invalid);  // TLV overruns into the payload
  CHECK(status_of(v2(0x21, 0x11, v4_block + tlv(0x01, "h2") + bytes({0x02, 0x00}))) ==
        status::invalid);  // TLV head cut short
  CHECK(status_of(v2(0x21, 0x11, v4_block + bytes({0x04}))) == status::invalid);
  CHECK(status_of(v2(0x21, 0x11, v4_block, 600)) == status::invalid);    // oversized
  CHECK(status_of(v2(0x21, 0x11, v4_block, 65535)) == status::invalid);  // oversized
}

TEST_CASE("malformed headers are refused as soon as the bad byte arrives", "[proxy_protocol]") {
  CHECK(status_of("PROXY TCPX") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4x") == status::invalid);
  CHECK(status_of("PROXY TCP4 ::") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 65536") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 08") == status::invalid);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1\r") == status::invalid);  // CR after 4 fields
  CHECK(status_of("PROXY TCP4 1.2.3.4\r") == status::invalid);
  CHECK(status_of(signature + bytes({0x11})) == status::invalid);                    // version
  CHECK(status_of(signature + bytes({0x23})) == status::invalid);                    // command
  CHECK(status_of(signature + bytes({0x21, 0x41})) == status::invalid);              // family
  CHECK(status_of(signature + bytes({0x21, 0x11, 0x00, 11})) == status::invalid);    // short
  CHECK(status_of(signature + bytes({0x21, 0x11, 0x02, 0x58})) == status::invalid);  // 616
  // ...while the same beginnings with nothing wrong yet wait for more.
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 6553") == status::incomplete);
  CHECK(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r") == status::incomplete);
  CHECK(status_of("PROXY UNKN") == status::incomplete);
  CHECK(status_of(signature + bytes({0x20, 0x41})) == status::incomplete);  // LOCAL: any family
}

TEST_CASE("invalid headers say why", "[proxy_protocol]") {
  CHECK(parse("GET / HTTP/1.1\r\n").error == "not a PROXY protocol header");
  CHECK_THAT(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n").error,
             StartsWith("malformed v1 header: bad destination port"));
  CHECK_THAT(parse("PROXY TCP4 ::1 5.6.7.8 1 2\r\n").error,
             StartsWith("malformed v1 header: bad source address"));
  CHECK_THAT(parse("PROXY UNKNOWN " + std::string(93, 'x')).error, Contains("no CRLF"));
  CHECK_THAT(parse(v2(0x11, 0x11, v4_block)).error, StartsWith("unsupported v2 version"));
  CHECK_THAT(parse(v2(0x22, 0x11, v4_block)).error, StartsWith("unsupported v2 command"));
  CHECK_THAT(parse(v2(0x21, 0x41, v4_block)).error, StartsWith("unsupported v2 address family"));
  CHECK_THAT(parse(v2(0x21, 0x21, v4_block)).error, StartsWith("v2 address block too short"));
  CHECK_THAT(parse(v2(0x21, 0x11, v4_block, 600)).error, StartsWith("oversized"));
  CHECK_THAT(parse(v2(0x21, 0x11, v4_block + bytes({1, 0, 5}))).error, Contains("overruns"));
}

TEST_CASE("max_size bounds the header and is never waited past", "[proxy_protocol]") {
  const auto header = v2(0x21, 0x11, v4_block + tlv(0xe0, "x"));  // 32 bytes
  CHECK(parse(header, 32).status == status::complete);
  CHECK(parse(header, 31).status == status::invalid);
  CHECK(parse(header.substr(0, 16), 31).status == status::invalid);  // known from the length

  CHECK(parse(v1_tcp4, v1_tcp4.size()).status == status::complete);
  CHECK(parse(v1_tcp4, v1_tcp4.size() - 1).status == status::invalid);
  CHECK(parse(v1_tcp4.substr(0, 30), 30).status == status::invalid);  // 30 bytes, no CRLF
  CHECK(parse(v1_unknown_longest, 1000).status == status::complete);  // v1 stays at 107
  CHECK(parse(pp::encode_v2_local(), 0).status == status::complete);  // below 16 counts as 16
}
