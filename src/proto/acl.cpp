#include "zcproxy/acl.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <ratio>
#include <stdexcept>

namespace zcproxy {

namespace detail {
namespace {

constexpr std::size_t max_ip_text = 45;  // INET6_ADDRSTRLEN - 1: "ffff:...:255.255.255.255"

// Clears every bit of `b` past `prefix` within its first `len` bytes; true when any was set.
bool clear_host_bits(std::array<unsigned char, 16>& b, unsigned prefix, unsigned len) {
  bool had = false;
  for (unsigned i = 0; i < len; ++i) {
    unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
    auto mask = static_cast<unsigned char>(0xff00u >> keep);
    if (b[i] & ~mask) had = true;
    b[i] &= mask;
  }
  return had;
}

// ::ffff:0:0/96, the IPv4-mapped block (RFC 4291 2.5.5.2).
bool is_v4_mapped(std::span<const unsigned char> ip) {
  static constexpr unsigned char head[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return ip.size() == 16 && std::memcmp(ip.data(), head, sizeof head) == 0;
}

// Text to network-order bytes; the family is chosen by the presence of ':'. 0 when malformed.
std::size_t parse_ip(std::string_view text, std::array<unsigned char, 16>& out) {
  if (text.empty() || text.size() > max_ip_text) return 0;
  char buf[max_ip_text + 1];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  bool v6 = text.find(':') != std::string_view::npos;
  out = {};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, out.data()) != 1) return 0;
  return v6 ? 16 : 4;
}

}  // namespace
}  // namespace detail

bool cidr::contains(std::span<const unsigned char> ip) const {
  if (ip.size() != (v6 ? 16u : 4u)) return false;
  std::size_t whole = prefix / 8;
  if (std::memcmp(ip.data(), bytes.data(), whole) != 0) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff00u >> rest);
  return (ip[whole] & mask) == (bytes[whole] & mask);
}

std::optional<cidr> parse_cidr(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<cidr> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  // Appended, not `"'" + std::string(text) + "'"`: GCC 12 warns about that one (-Wrestrict, a
  // known false positive of its inlined operator+, GCC bug 105329).
  std::string quoted(1, '\'');
  quoted.append(text).push_back('\'');
  auto slash = text.find('/');
  auto addr = text.substr(0, slash);
  if (addr.empty())
    return fail(quoted + ": expected an IPv4 or IPv6 address, optionally with /prefix");

  cidr c;
  std::size_t len = detail::parse_ip(addr, c.bytes);
  if (len == 0)
    return fail(quoted + ": '" + std::string(addr) +
                "' is not an IPv4 (a.b.c.d) or IPv6 address (no brackets, no zone)");
  c.v6 = len == 16;
  const unsigned max = c.v6 ? 128 : 32;
  const char* family = c.v6 ? "IPv6" : "IPv4";

  c.prefix = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty()) return fail(quoted + ": expected a prefix length after '/'");
    bool all_digits =
        std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!all_digits)
      return fail(quoted + ": prefix length '" + std::string(digits) +
                  "' is not a plain decimal number");
    if (digits.size() > 1 && digits[0] == '0')
      return fail(quoted + ": prefix length '" + std::string(digits) + "' has a leading zero");
    unsigned value = 0;
    for (char ch : digits) {
      value = value * 10 + unsigned(ch - '0');
      if (value > max) break;  // also stops overflow on long digit strings
    }
    if (value > max)
      return fail(quoted + ": prefix length " + std::string(digits) + " is out of range for " +
                  family + " (0.." + std::to_string(max) + ")");
    c.prefix = value;
  }

  if (detail::clear_host_bits(c.bytes, c.prefix, static_cast<unsigned>(len)))
    // Refused, not masked: "10.0.0.1/8" may have meant the host as well as the network.
    return fail(quoted + ": host bits are set past /" + std::to_string(c.prefix) +
                "; write the network, " + to_string(c) + ", or the host alone");
  return c;
}

std::string to_string(const cidr& c) {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(c.v6 ? AF_INET6 : AF_INET, c.bytes.data(), buf, sizeof buf))
    return "<bad cidr>";  // cannot happen: the buffer fits either family
  return std::string(buf) + "/" + std::to_string(c.prefix);
}

acl::acl(std::vector<cidr> allow, std::vector<cidr> deny)
    : allow_(std::move(allow)), deny_(std::move(deny)) {
  for (auto* list : {&allow_, &deny_}) {
    for (auto& c : *list) {
      if (c.prefix > (c.v6 ? 128u : 32u))
        throw std::invalid_argument("acl: prefix /" + std::to_string(c.prefix) +
                                    " is out of range for " + (c.v6 ? "IPv6" : "IPv4"));
      detail::clear_host_bits(c.bytes, c.prefix, c.v6 ? 16 : 4);
      if (!c.v6) std::fill(c.bytes.begin() + 4, c.bytes.end(), 0);
      // A block inside ::ffff:0:0/96 is an IPv4 block: clients in it are checked as IPv4.
      if (c.v6 && c.prefix >= 96 && detail::is_v4_mapped(c.bytes)) {
        std::array<unsigned char, 16> v4{};
        std::copy_n(c.bytes.begin() + 12, 4, v4.begin());
        c = cidr{v4, c.prefix - 96, false};
      }
    }
  }
}

bool acl::permits(std::span<const unsigned char> ip) const {
  if (ip.size() != 4 && ip.size() != 16) return false;
  // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; the rules speak of a.b.c.d.
  if (detail::is_v4_mapped(ip)) ip = ip.subspan(12);
  auto match = [ip](const cidr& c) { return c.contains(ip); };
  if (std::any_of(deny_.begin(), deny_.end(), match)) return false;
  return allow_.empty() || std::any_of(allow_.begin(), allow_.end(), match);
}

bool acl::permits(std::string_view ip_text) const {
  std::array<unsigned char, 16> b;
  std::size_t len = detail::parse_ip(ip_text, b);
  if (len == 0) return false;
  return permits(std::span<const unsigned char>(b.data(), len));
}

}  // namespace zcproxy
