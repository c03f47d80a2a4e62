#include "zcproxy/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace zcproxy::proxy_protocol {
namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
// "PROXY UNKNOWN" + two full-length IPv6 addresses + two 5-digit ports + CRLF (spec 2.1).
constexpr std::size_t v1_max_size = 107;
constexpr std::size_t v2_fixed_size = 16;  // signature, version/command, family, length
constexpr std::size_t unix_path_size = 108;
constexpr auto npos = std::string_view::npos;

result invalid(std::string why) {
  result r;
  r.status = status::invalid;
  r.error = std::move(why);
  return r;
}

result complete(header h) {
  result r;
  r.status = status::complete;
  r.header = std::move(h);
  return r;
}

// Whether `data` is `whole` or a beginning of it.
bool prefix_of(std::string_view data, std::string_view whole) {
  return whole.starts_with(data.substr(0, whole.size()));
}

// The canonical text of an IP literal (inet_ntop's), nullopt unless inet_pton takes it whole:
// that refuses heading zeros ("01.2.3.4"), zone ids ("fe80::1%eth0") and the wrong family.
std::optional<std::string> canonical_ip(std::string_view text, bool v6) {
  // Any NUL would cut the literal short for inet_pton; nothing longer is an address.
  if (text.find('\0') != npos || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  unsigned char bytes[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, std::string(text).c_str(), bytes) != 1)
    return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  return inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, out, sizeof out);
}

// Whether a partly received field can still grow into an IP literal of the family.
bool ip_prefix_ok(std::string_view text, bool v6) {
  const std::size_t longest = v6 ? INET6_ADDRSTRLEN - 1 : INET_ADDRSTRLEN - 1;
  return text.size() <= longest &&
         text.find_first_not_of(v6 ? "0123456789abcdefABCDEF:." : "0123456789.") == npos;
}

// Whether `text` is a v1 port or a beginning of one: decimal digits only (no sign), no heading
// zero (the spec forbids it, to avoid any confusion with octal), at most 65535.
bool port_prefix_ok(std::string_view text) {
  if (text.size() > 5 || text.find_first_not_of("0123456789") != npos) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value <= 65535;
}

std::uint16_t to_port(std::string_view digits) {
  std::uint16_t value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return value;
}

// v1: "PROXY TCP4|TCP6 <src ip> <dst ip> <src port> <dst port>\r\n", or "PROXY UNKNOWN" and
// anything up to CRLF. A partial line is checked as far as it goes: every field so far must be
// valid or, for the one still arriving, able to become valid. `data` starts with "PROXY ".
result parse_v1(std::string_view data, std::size_t limit) {
  const auto crlf = data.substr(0, limit).find("\r\n");
  const bool whole = crlf != npos;
  auto line = data.substr(0, whole ? crlf : limit).substr(v1_prefix.size());
  // A partial line ending in CR can only go on with LF: judge it as ended.
  const bool ended = whole || line.ends_with('\r');
  if (!whole && ended) line.remove_suffix(1);
  // Valid so far: wait for the rest, unless the spec's 107 bytes have come without a CRLF.
  auto need_more = [&] {
    return data.size() >= limit ? invalid("malformed v1 header: no CRLF within the first " +
                                          std::to_string(limit) + " bytes")
                                : result{};
  };

  std::vector<std::string_view> fields;  // split on every space, so doubled spaces show as ""
  for (std::size_t start = 0;;) {
    const auto space = line.find(' ', start);
    fields.push_back(line.substr(start, space - start));
    if (space == npos) break;
    start = space + 1;
  }

  const auto protocol = fields[0];
  // UNKNOWN: the receiver must ignore the rest of the line (spec 2.1) and use the real endpoints.
  if (protocol == "UNKNOWN" && (fields.size() > 1 || ended)) {
    if (!whole) return need_more();
    header h;
    h.version = 1;
    h.command = command::local;
    h.size = crlf + 2;
    return complete(std::move(h));
  }
  const bool v6 = protocol == "TCP6";
  if (protocol != "TCP4" && !v6) {
    // Only a keyword's own beginning ("", "TC", "UNKN") may still be waiting for more.
    auto begins = [&](std::string_view keyword) { return keyword.starts_with(protocol); };
    const bool growing =
        fields.size() == 1 && !ended && (begins("TCP4") || begins("TCP6") || begins("UNKNOWN"));
    return growing ? need_more()
                   : invalid("malformed v1 header: protocol not TCP4, TCP6 or UNKNOWN");
  }
  // Exactly four fields follow the protocol, never more, and all four before the CRLF.
  if (fields.size() > 5 || (ended && fields.size() != 5)) {
    return invalid(
        "malformed v1 header: expected \"PROXY TCPx <src ip> <dst ip> <src port> "
        "<dst port>\" with single spaces");
  }
  static constexpr const char* names[] = {"", "source address", "destination address",
                                          "source port", "destination port"};
  for (std::size_t i = 1; i < fields.size(); ++i) {
    const auto f = fields[i];
    const bool arriving = !ended && i == fields.size() - 1;  // may still grow
    // An empty field that is not still arriving comes from a doubled or trailing space.
    if (f.empty() && !arriving) return invalid("malformed v1 header: spaces must be single");
    const bool ok = i <= 2 ? (arriving ? ip_prefix_ok(f, v6) : canonical_ip(f, v6).has_value())
                           : port_prefix_ok(f);
    if (!ok) {
      return invalid(std::string("malformed v1 header: bad ") + names[i] +
                     (i <= 2 ? (v6 ? " (IPv6 expected)" : " (IPv4 expected)")
                             : " (0..65535, no sign or heading zero)"));
    }
  }
  if (!whole) return need_more();

  header h;
  h.version = 1;
  h.command = command::proxy;
  h.family = v6 ? family::tcp6 : family::tcp4;
  h.transport = transport::stream;
  h.source = {*canonical_ip(fields[1], v6), to_port(fields[3]), v6};
  h.destination = {*canonical_ip(fields[2], v6), to_port(fields[4]), v6};
  h.size = crlf + 2;
  return complete(std::move(h));
}

// Address block size for a v2 family/transport byte; nullopt for the values the spec leaves
// undefined, which receivers must reject.
std::optional<std::size_t> address_block_size(unsigned char family_transport) {
  switch (family_transport) {
    case 0x00:
      return 0;  // UNSPEC: addresses, if any, are to be ignored
    case 0x11:
    case 0x12:
      return 12;  // TCP/UDP over IPv4: 2 x 4 bytes, 2 ports
    case 0x21:
    case 0x22:
      return 36;  // TCP/UDP over IPv6: 2 x 16 bytes, 2 ports
    case 0x31:
    case 0x32:
      return 216;  // UNIX stream/dgram: 2 paths of 108 bytes
    default:
      return std::nullopt;
  }
}

std::uint16_t be16(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// A NUL-padded sun_path: up to the first NUL; an abstract name (leading NUL) keeps that NUL
// and loses only the padding.
std::string unix_path(const unsigned char* p) {
  const std::string_view path(reinterpret_cast<const char*>(p), unix_path_size);
  const auto end = path[0] != '\0' ? path.find('\0') : path.find_last_not_of('\0') + 1;
  return std::string(path.substr(0, end));
}

// v2: 12-byte signature, version/command, family/transport, big-endian length, then `length`
// bytes: the family's address block, then TLVs. Each field is judged as soon as it is in.
// `d` starts with the whole signature.
result parse_v2(std::span<const unsigned char> d, std::size_t max_size) {
  // Version 2 is the only one; receivers must accept no other (spec 2.2).
  if (d.size() > 12 && d[12] >> 4 != 2)
    return invalid("unsupported v2 version " + std::to_string(d[12] >> 4));
  // Commands other than LOCAL (0) and PROXY (1) are unassigned: receivers must drop them.
  if (d.size() > 12 && (d[12] & 0xf) > 1)
    return invalid("unsupported v2 command " + std::to_string(d[12] & 0xf));
  const bool local = d.size() > 12 && (d[12] & 0xf) == 0;
  // LOCAL ignores the family byte; with PROXY an undefined one must be rejected.
  const auto block = d.size() > 13 ? address_block_size(d[13]) : std::optional<std::size_t>(0);
  if (!local && !block)
    return invalid("unsupported v2 address family/transport " + std::to_string(d[13]));
  if (d.size() < v2_fixed_size) return result{};

  const std::size_t size = v2_fixed_size + be16(&d[14]);
  // Decided from the length field alone, before any of the body is waited for.
  if (size > max_size) {
    return invalid("oversized v2 header: " + std::to_string(size) + " bytes, at most " +
                   std::to_string(max_size) + " accepted");
  }
  if (!local && size - v2_fixed_size < *block) {
    return invalid(
        "v2 address block too short for its family: " + std::to_string(size - v2_fixed_size) +
        " bytes, " + std::to_string(*block) + " needed");
  }
  if (d.size() < size) return result{};

  header h;
  h.version = 2;
  h.size = size;
  // LOCAL: use the real endpoints and discard the whole block, family included (spec 2.2).
  if (local) return complete(std::move(h));
  h.command = command::proxy;
  const unsigned char fam = d[13] >> 4;
  // UNSPEC: the address block is of an unknown protocol and should be ignored, TLVs and all.
  if (fam == 0) return complete(std::move(h));

  h.transport = (d[13] & 0xf) == 1 ? transport::stream : transport::dgram;
  const unsigned char* a = &d[v2_fixed_size];
  if (fam == 3) {
    h.family = family::unix_socket;
    h.source_path = unix_path(a);
    h.destination_path = unix_path(a + unix_path_size);
  } else {
    const bool v6 = fam == 2;
    const std::size_t n = v6 ? 16 : 4;  // bytes per address; ports follow both addresses
    char text[INET6_ADDRSTRLEN];
    h.family = v6 ? family::tcp6 : family::tcp4;
    h.source = {inet_ntop(v6 ? AF_INET6 : AF_INET, a, text, sizeof text), be16(a + 2 * n), v6};
    h.destination = {inet_ntop(v6 ? AF_INET6 : AF_INET, a + n, text, sizeof text),
                     be16(a + 2 * n + 2), v6};
  }
  // TLVs fill the rest of the length: each needs its 3-byte type/length and then its value
  // inside the header, or it would make us read the client's payload (or past the buffer).
  for (auto rest = d.subspan(v2_fixed_size + *block, size - v2_fixed_size - *block);
       !rest.empty();) {
    if (rest.size() < 3)
      return invalid("v2 TLV truncated: " + std::to_string(rest.size()) + " stray bytes");
    const std::size_t length = be16(&rest[1]);
    if (rest.size() < 3 + length)
      return invalid("v2 TLV of type " + std::to_string(rest[0]) + " overruns the header");
    h.tlvs.push_back({rest[0], std::string(reinterpret_cast<const char*>(&rest[3]), length)});
    rest = rest.subspan(3 + length);
  }
  return complete(std::move(h));
}

// An address's 4 or 16 bytes, an IPv4 one mapped into IPv6 (::ffff:a.b.c.d) when `as_v6`.
std::array<unsigned char, 16> ip_bytes(const address& a, bool as_v6) {
  std::array<unsigned char, 16> out{};
  unsigned char* at = a.v6 || !as_v6 ? out.data() : out.data() + 12;
  // A literal that is not of its own family is a caller's bug, not a client's doing.
  if (inet_pton(a.v6 ? AF_INET6 : AF_INET, a.ip.c_str(), at) != 1) {
    throw std::invalid_argument("proxy_protocol: not an IPv" + std::string(a.v6 ? "6" : "4") +
                                " literal: " + a.ip);
  }
  if (!a.v6 && as_v6) out[10] = out[11] = 0xff;
  return out;
}

void put16(std::string& out, unsigned value) {
  out += static_cast<char>(value >> 8);
  out += static_cast<char>(value & 0xff);
}

}  // namespace

result parse(std::span<const char> data, std::size_t max_size) {
  const std::string_view in(data.data(), data.size());
  // Below 16 bytes no v2 header fits, and v1 could not even be told apart: use 16.
  max_size = std::max(max_size, v2_fixed_size);
  if (in.empty()) return result{};
  // The two signatures differ at their first byte, so a wrong one is refused at once.
  if (prefix_of(in, v2_signature)) {
    if (in.size() < v2_signature.size()) return result{};
    return parse_v2({reinterpret_cast<const unsigned char*>(in.data()), in.size()}, max_size);
  }
  if (prefix_of(in, v1_prefix)) {
    if (in.size() < v1_prefix.size()) return result{};
    return parse_v1(in, std::min(v1_max_size, max_size));
  }
  return invalid("not a PROXY protocol header");
}

std::string encode_v1(const address& source, const address& destination) {
  if (source.local || destination.local) return std::string(v1_prefix) + "UNKNOWN\r\n";
  const bool v6 = source.v6 || destination.v6;
  const auto s = ip_bytes(source, v6), d = ip_bytes(destination, v6);
  char s_text[INET6_ADDRSTRLEN], d_text[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, s.data(), s_text, sizeof s_text);
  inet_ntop(v6 ? AF_INET6 : AF_INET, d.data(), d_text, sizeof d_text);
  return std::string(v1_prefix) + (v6 ? "TCP6 " : "TCP4 ") + s_text + ' ' + d_text + ' ' +
         std::to_string(source.port) + ' ' + std::to_string(destination.port) + "\r\n";
}

std::string encode_v2(const address& source, const address& destination) {
  // No address to carry: LOCAL, which receivers take as "use the connection's own addresses".
  // PROXY with UNSPEC means the same in the spec, but HAProxy refuses it (it sends LOCAL itself
  // for a Unix client).
  if (source.local || destination.local) return encode_v2_local();
  const bool v6 = source.v6 || destination.v6;
  const auto s = ip_bytes(source, v6), d = ip_bytes(destination, v6);
  const std::size_t n = v6 ? 16 : 4;
  std::string out(v2_signature);
  out += '\x21';                // version 2, PROXY
  out += v6 ? '\x21' : '\x11';  // TCP over IPv6 / IPv4
  put16(out, 2 * n + 4);
  out.append(reinterpret_cast<const char*>(s.data()), n);
  out.append(reinterpret_cast<const char*>(d.data()), n);
  put16(out, source.port);
  put16(out, destination.port);
  return out;
}

std::string encode_v2_local() {
  std::string out(v2_signature);
  out += '\x20';        // version 2, LOCAL
  out += '\x00';        // UNSPEC: no addresses
  out.append(2, '\0');  // length 0
  return out;
}

}  // namespace zcproxy::proxy_protocol
