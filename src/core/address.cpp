#include "zcproxy/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace zcproxy {
namespace {

// sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
constexpr std::size_t max_unix_path = 107;

}  // namespace

std::optional<std::uint64_t> parse_digits(std::string_view text) {
  // from_chars alone would accept a leading '-' for some types and stop at the first junk byte;
  // demand digits and nothing else.
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;  // overflow
  return value;
}

namespace {

// "unix:PATH"; the text after the prefix is in `path`.
std::optional<address> parse_unix(std::string_view path, std::string& why) {
  address result;
  result.local = true;
  result.path = path;
  if (result.path.empty())
    why = "missing the socket's path after \"unix:\"";
  else if (result.path.front() != '/')
    why = "a Unix socket path must be absolute, e.g. unix:/run/app.sock";
  else if (result.path.size() > max_unix_path)
    why = "a Unix socket path has at most " + std::to_string(max_unix_path) + " bytes, got " +
          std::to_string(result.path.size());
  else if (result.path.find('\0') != std::string::npos)
    why = "a Unix socket path cannot contain a NUL byte";
  else
    return result;
  return std::nullopt;
}

std::optional<address> parse_ip_port(std::string_view text, std::string& why) {
  address result;
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      why = "missing ']' after the IPv6 address";
      return std::nullopt;
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      why = "missing ':port' after the IPv6 address";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    result.v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      why = "missing ':port'";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // Without brackets the last ':' of an IPv6 address would be taken for the port separator.
    if (host.find(':') != std::string_view::npos) {
      why = "an IPv6 address must be in brackets, e.g. [::1]:9000";
      return std::nullopt;
    }
  }

  std::string host_str(host);
  unsigned char raw[sizeof(in6_addr)];
  int family = result.v6 ? AF_INET6 : AF_INET;
  if (host.empty() || ::inet_pton(family, host_str.c_str(), raw) != 1) {
    why = result.v6 ? "\"" + host_str + "\" is not an IPv6 address"
                    : "\"" + host_str + "\" is not an IP address (host names are not accepted)";
    return std::nullopt;
  }
  // Store the canonical spelling so "::0001" and "::1" compare equal (duplicate-bind check).
  // inet_ntop cannot fail here (valid family, big enough buffer); keep the text if it ever does.
  char canonical[INET6_ADDRSTRLEN];
  bool printed = ::inet_ntop(family, raw, canonical, sizeof canonical) != nullptr;
  result.ip = printed ? canonical : host_str;

  auto port_value = parse_digits(port);
  if (!port_value) {
    why = "port \"" + std::string(port) + "\" is not a number";
    return std::nullopt;
  }
  if (*port_value > 65535) {
    why = "port " + std::string(port) + " is out of range 0..65535";
    return std::nullopt;
  }
  result.port = static_cast<std::uint16_t>(*port_value);
  return result;
}

}  // namespace

std::string address::to_string() const {
  if (local) return "unix:" + path;
  auto p = std::to_string(port);
  return v6 ? "[" + ip + "]:" + p : ip + ":" + p;
}

std::optional<address> parse_address(std::string_view text, std::string& why) {
  if (text.empty()) {
    why = "empty address";
    return std::nullopt;
  }
  if (text.starts_with("unix:")) return parse_unix(text.substr(5), why);
  return parse_ip_port(text, why);
}

std::optional<host_port> parse_host_port(std::string_view text, std::string& why) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    why = "missing ':port'";
    return std::nullopt;
  }
  const std::string_view host = text.substr(0, colon);
  auto not_a_name = [host] {
    return std::string("\"").append(host).append("\" is not an IP address or a host name");
  };
  const auto port = parse_digits(text.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) {
    // append(), not operator+: GCC 12 at -O3 takes "..." + std::string for an overlapping copy
    why = std::string("port \"").append(text.substr(colon + 1)).append("\" is not from 1 to 65535");
    return std::nullopt;
  }
  // RFC 1123 labels (letters, digits, '-' inside; '_' too, as service names use it), at most 63
  // bytes each and 253 in all; not all digits, or it would be a mistyped IP.
  bool letters = false;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= host.size(); ++i) {
    const char ch = i < host.size() ? host[i] : '.';
    if (ch == '.') {
      if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-') {
        why = not_a_name();
        return std::nullopt;
      }
      label = 0;
      continue;
    }
    const bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    if (!alpha && !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_') {
      why = not_a_name();
      return std::nullopt;
    }
    letters |= alpha || ch == '-' || ch == '_';
    ++label;
  }
  if (!letters || host.size() > 253) {
    why = not_a_name();
    return std::nullopt;
  }
  host_port out{std::string(host), static_cast<std::uint16_t>(*port)};
  for (char& ch : out.host)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

std::optional<address> parse_address(std::string_view text) {
  std::string why;
  return parse_address(text, why);
}

}  // namespace zcproxy
