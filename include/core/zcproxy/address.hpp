// Where a socket lives: an IP literal and port, or a Unix domain socket's path. A plain value,
// parsed from and printed as the text a config writes; safe to copy and use from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zcproxy {

// An IP literal and port, as written in the config ("127.0.0.1:9000", "[::1]:9000"), or a Unix
// domain socket's path ("unix:/run/app.sock").
struct address {
  std::string ip;  // without brackets
  std::uint16_t port = 0;
  bool v6 = false;
  bool local = false;  // a Unix domain socket; path is its name (empty for an unnamed peer)
  std::string path = {};

  std::string to_string() const;  // "127.0.0.1:9000", "[::1]:9000" or "unix:/run/app.sock"
  bool operator==(const address&) const = default;
};

// "127.0.0.1:80", "[::1]:80", "unix:/run/app.sock" -> address; nullopt when malformed or port >
// 65535. The IP is stored in its canonical spelling, so "::0001" and "::1" compare equal.
std::optional<address> parse_address(std::string_view text);
// Same; on failure `why` says what is wrong with the text (for config messages).
std::optional<address> parse_address(std::string_view text, std::string& why);

// "backend.internal:9000" -> the DNS name (lower-cased) and the port (1..65535); nullopt, with
// `why`, when the text is not a host name and port (an IP literal is not a name).
struct host_port {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<host_port> parse_host_port(std::string_view text, std::string& why);

// Digits and nothing else (no sign, no spaces), within 64 bits: a port here, and the config's
// numbers.
std::optional<std::uint64_t> parse_digits(std::string_view text);

}  // namespace zcproxy
