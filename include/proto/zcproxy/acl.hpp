// Client admission: pure logic, no sockets.
//
// cidr / parse_cidr: an address block as written in the config ("10.0.0.0/8", "::1").
// acl: allow/deny lists checked once per accepted connection. Immutable once built, so one acl
//   may be shared by every worker thread; permits() is const and safe to call concurrently.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zcproxy {

// An address block. IPv4 uses bytes[0..3] (the rest is zero); every bit past `prefix` is zero.
struct cidr {
  std::array<unsigned char, 16> bytes{};
  unsigned prefix = 0;  // 0..32 (IPv4) or 0..128 (IPv6)
  bool v6 = false;

  // `ip` (4 or 16 network-order bytes) is inside this block. A 4-byte address never matches an
  // IPv6 block and a 16-byte one never matches an IPv4 block: no mapping here (see acl).
  bool contains(std::span<const unsigned char> ip) const;
  bool operator==(const cidr&) const = default;
};

// "10.0.0.0/8", "2001:db8::/32"; a bare address is a single host: "192.168.1.7" = /32,
// "::1" = /128. Strict, because a typo in an access rule must not quietly widen or narrow it:
//   - the prefix is plain decimal digits: no sign, no spaces, no leading zeros ("/08");
//   - host bits must be zero: "10.0.0.1/8" is refused (as Python's ip_network does by default)
//     rather than masked to 10.0.0.0/8 (as Go's net.ParseCIDR and iptables do), since the
//     writer may have meant the host 10.0.0.1;
//   - the address is what inet_pton accepts: dotted quad without leading zeros, or RFC 4291
//     text; no brackets, no zone ("fe80::1%eth0").
// On failure returns nullopt and, when `why` is given, stores the reason there.
std::optional<cidr> parse_cidr(std::string_view text, std::string* why = nullptr);

// "10.0.0.0/8", "2001:db8::/32"; always with the prefix, even for a host ("::1/128").
std::string to_string(const cidr& c);

// Who may connect: a client matching any `deny` block is refused; otherwise, when `allow` is
// not empty, it must match an `allow` block; when `allow` is empty everyone not denied is let in.
//
// An IPv4-mapped IPv6 client (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4 peer)
// is checked as the IPv4 address a.b.c.d; likewise a rule inside ::ffff:0:0/96 with a prefix of
// at least 96 is stored as the IPv4 block it describes (::ffff:10.0.0.0/104 = 10.0.0.0/8).
// Other IPv6 blocks never match IPv4 clients, even ::/0, and IPv4 blocks never match IPv6 ones.
class acl {
 public:
  acl() = default;  // permits everyone
  // Throws std::invalid_argument when a block's prefix is out of range for its family.
  // Host bits, if a hand-built cidr has any, are cleared.
  acl(std::vector<cidr> allow, std::vector<cidr> deny);

  // `ip`: the client's address in network order, 4 or 16 bytes (as asio's to_bytes() gives).
  // Any other length is refused: an address we cannot read is not let in.
  bool permits(std::span<const unsigned char> ip) const;
  // Same, from text ("10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1"); text that is not an IP
  // address is refused.
  bool permits(std::string_view ip_text) const;

  // Nothing is ever refused.
  bool permits_all() const { return allow_.empty() && deny_.empty(); }
  const std::vector<cidr>& allow() const { return allow_; }
  const std::vector<cidr>& deny() const { return deny_; }

 private:
  std::vector<cidr> allow_;
  std::vector<cidr> deny_;
};

}  // namespace zcproxy
