// The HAProxy PROXY protocol, v1 (a text line) and v2 (binary): the original client and server
// addresses, sent by a proxy ahead of the client's first byte.
// Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
// Pure functions over bytes: no I/O, no state, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zcproxy/address.hpp"

namespace zcproxy::proxy_protocol {

// proxy: the header carries the client's addresses. local: the sender connected on its own
// behalf (a health check, or v1 "UNKNOWN"): use the connection's own addresses.
enum class command { proxy, local };

// tcp4/tcp6 keep v1's names; with transport::dgram they mean UDP over IPv4/IPv6.
// (Not `unix`: GNU dialects predefine it as a macro.)
enum class family { unspec, tcp4, tcp6, unix_socket };

// dgram (UDP, SOCK_DGRAM) is accepted by parse() so the caller can say why it refuses it.
enum class transport { unspec, stream, dgram };

// A v2 Type-Length-Value extension: PP2_TYPE_ALPN (0x01), PP2_TYPE_AUTHORITY (0x02), ...
struct tlv {
  std::uint8_t type = 0;
  std::string value;
  bool operator==(const tlv&) const = default;
};

struct header {
  int version = 0;  // 1 or 2
  proxy_protocol::command command = proxy_protocol::command::local;
  proxy_protocol::family family = proxy_protocol::family::unspec;
  proxy_protocol::transport transport = proxy_protocol::transport::unspec;
  address source;  // tcp4/tcp6: ip as inet_ntop writes it ("2001:db8::1"), port
  address destination;
  std::string source_path;  // unix_socket: sun_path without its NUL padding
  std::string destination_path;
  std::vector<tlv> tlvs;  // v2 with command::proxy only, in wire order
  std::size_t size = 0;   // bytes the header takes: the client's payload starts at data[size]

  // Whether source/destination are the client's IP endpoints; if not, use the connection's own.
  bool has_ip_addresses() const {
    return command == proxy_protocol::command::proxy &&
           (family == proxy_protocol::family::tcp4 || family == proxy_protocol::family::tcp6);
  }
};

enum class status {
  complete,    // `header` is filled in; skip header.size bytes
  incomplete,  // a valid beginning so far: read more and parse everything again
  invalid,     // `error` says why; drop the connection
};

struct result {
  proxy_protocol::status status = proxy_protocol::status::incomplete;
  proxy_protocol::header header;  // when complete
  std::string error;              // when invalid: "malformed v1 header: ...", "oversized ...", ...
};

// Headers bigger than this are refused: v2's 16 fixed bytes, 216 of AF_UNIX addresses and room
// for TLVs. v1 lines are limited to 107 bytes by the spec anyway.
inline constexpr std::size_t default_max_size = 536;

// The PROXY header at the start of `data`, v1 or v2. A header is refused at its first byte that
// cannot belong to a valid one (an HTTP or TLS client at its first byte), so `incomplete` means
// "valid so far"; with max_size bytes in hand the answer is never `incomplete`. A max_size
// below 16 (no v2 header fits) counts as 16.
result parse(std::span<const char> data, std::size_t max_size = default_max_size);

// Headers for a TCP connection from `source` to `destination`. When one is IPv6 and the other
// IPv4, the IPv4 one is mapped (::ffff:a.b.c.d) and both go as TCP6, as HAProxy does.
// A Unix socket on either side has no address to carry: v1 says UNKNOWN, v2 LOCAL (as HAProxy
// sends it, and the only form it accepts: it refuses PROXY with family UNSPEC).
// Throws std::invalid_argument when an address's ip is not a literal of its family (a bug).
std::string encode_v1(const address& source, const address& destination);
std::string encode_v2(const address& source, const address& destination);
// v2 LOCAL with no address: the receiver uses the connection's own (for health checks).
std::string encode_v2_local();

}  // namespace zcproxy::proxy_protocol
