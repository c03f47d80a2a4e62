#include "zcproxy/sni.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace zcproxy::sni {
namespace {

// RFC 8446 5.1 and 4, RFC 6066 3.
constexpr unsigned char content_type_handshake = 22;
constexpr unsigned char version_major_tls = 3;  // SSL 3.0 and every TLS version: 3.x
constexpr std::size_t record_header_size = 5;
// The largest record any TLS version allows (TLSCiphertext: 2^14 plus expansion).
constexpr std::size_t max_record_length = (1u << 14) + 2048;
constexpr unsigned char handshake_client_hello = 1;
constexpr std::size_t handshake_header_size = 4;
constexpr std::size_t random_size = 32;
constexpr std::size_t max_session_id = 32;
constexpr unsigned extension_server_name = 0;
constexpr unsigned name_type_host_name = 0;
constexpr std::size_t max_host_name = 255;

client_hello incomplete() {
  return {parse_status::incomplete, {}, {}};
}
client_hello not_tls() {
  return {parse_status::not_tls, {}, {}};
}
client_hello invalid(std::string reason) {
  return {parse_status::invalid, {}, std::move(reason)};
}

std::string hex(unsigned value, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, value);
  return buf;
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return to_lower(x) == to_lower(y);
         });
}

bool is_wildcard(std::string_view pattern) {
  return pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.';
}

// Why a read stopped: the bytes have not arrived yet (wait for more), or the read would cross the
// declared end of the structure it is in (malformed, however many bytes arrive).
enum class shortfall { none, incomplete, overrun };

// Reads one length-delimited structure of a handshake message of which only a prefix may have
// arrived: [pos_, end_) is the structure as declared, `received_` what is here so far. Value
// checks therefore run before the bytes they govern arrive, and a lie is caught early.
class reader {
 public:
  reader() = default;
  reader(std::span<const unsigned char> received, std::size_t pos, std::size_t end,
         std::string_view what)
      : received_(received), pos_(pos), end_(end), what_(what) {}

  std::size_t remaining() const { return end_ - pos_; }
  std::string_view what() const { return what_; }

  // A big-endian integer of n (1..3) bytes.
  shortfall read_uint(std::size_t n, std::size_t& value) {
    if (auto s = check(n); s != shortfall::none) return s;
    value = 0;
    for (std::size_t i = 0; i < n; ++i) value = (value << 8) | received_[pos_ + i];
    pos_ += n;
    return shortfall::none;
  }

  shortfall read_bytes(std::size_t n, std::span<const unsigned char>& out) {
    if (auto s = check(n); s != shortfall::none) return s;
    out = received_.subspan(pos_, n);
    pos_ += n;
    return shortfall::none;
  }

  // Skipped bytes must still have arrived: the ClientHello is complete only once all of it has.
  shortfall skip(std::size_t n) {
    if (auto s = check(n); s != shortfall::none) return s;
    pos_ += n;
    return shortfall::none;
  }

  // The next n bytes as a structure of their own, whether or not they have arrived.
  shortfall sub(std::size_t n, std::string_view what, reader& out) {
    if (n > remaining()) return shortfall::overrun;
    out = reader(received_, pos_, pos_ + n, what);
    pos_ += n;
    return shortfall::none;
  }

 private:
  shortfall check(std::size_t n) const {
    if (n > remaining()) return shortfall::overrun;
    if (pos_ + n > received_.size()) return shortfall::incomplete;
    return shortfall::none;
  }

  std::span<const unsigned char> received_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  std::string_view what_;
};

// Turns a failed read of `field` within `in` into the parse result.
client_hello stop(shortfall s, std::string_view field, const reader& in) {
  if (s == shortfall::incomplete) return incomplete();
  return invalid(std::string(field) + " runs past the end of the " + std::string(in.what()));
}

// nullopt when `name` is an acceptable host name; else why not. Loose on purpose: labels, their
// lengths and IDNA are the upstream's business; the point is that a name we log and match against
// patterns holds no control bytes, spaces or non-ASCII.
std::optional<std::string> check_host_name(std::span<const unsigned char> name) {
  for (unsigned char c : name) {
    if (c == 0) return "server name contains a NUL byte";
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return "server name contains byte " + hex(c, 2);
  }
  return std::nullopt;
}

// The server_name extension's body (RFC 6066 3): a list of (name_type, opaque name<1..2^16-1>).
// nullopt when it is well-formed and has arrived (server_name then holds the host_name, if any);
// else the result to return.
std::optional<client_hello> parse_server_name(reader& ext, std::string& server_name) {
  std::size_t list_length = 0;
  if (auto s = ext.read_uint(2, list_length); s != shortfall::none)
    return stop(s, "server_name list length", ext);
  if (list_length != ext.remaining())
    return invalid("server_name list length " + std::to_string(list_length) +
                   " does not match the extension's " + std::to_string(ext.remaining()) + " bytes");
  if (list_length == 0) return invalid("empty server_name list");
  reader list;
  ext.sub(list_length, "server_name list", list);  // cannot fail: the length was just checked
  bool have_host_name = false;
  while (list.remaining() > 0) {
    std::size_t type = 0, length = 0;
    if (auto s = list.read_uint(1, type); s != shortfall::none)
      return stop(s, "server name type", list);
    if (auto s = list.read_uint(2, length); s != shortfall::none)
      return stop(s, "server name length", list);
    if (type != name_type_host_name) {
      // Unknown name types are skipped, as RFC 6066 asks, assuming the opaque<> layout.
      if (auto s = list.skip(length); s != shortfall::none) return stop(s, "server name", list);
      continue;
    }
    // RFC 6066: at most one name of each type.
    if (have_host_name) return invalid("more than one host_name in server_name");
    if (length == 0) return invalid("empty server name");
    if (length > max_host_name)
      return invalid("server name length " + std::to_string(length) + " exceeds " +
                     std::to_string(max_host_name));
    std::span<const unsigned char> name;
    if (auto s = list.read_bytes(length, name); s != shortfall::none)
      return stop(s, "server name", list);
    if (auto why = check_host_name(name)) return invalid(*why);
    server_name.resize(name.size());
    std::transform(name.begin(), name.end(), server_name.begin(),
                   [](unsigned char c) { return to_lower(static_cast<char>(c)); });
    have_host_name = true;
  }
  return std::nullopt;
}

// The ClientHello body (RFC 8446 4.1.2; the same layout since TLS 1.0), after the handshake header.
client_hello parse_body(reader& in) {
  std::size_t major = 0, length = 0;
  if (auto s = in.read_uint(1, major); s != shortfall::none) return stop(s, "client version", in);
  if (major != version_major_tls)
    return invalid("client version major " + std::to_string(major) + " is not 3");
  if (auto s = in.skip(1 + random_size); s != shortfall::none) return stop(s, "client random", in);

  if (auto s = in.read_uint(1, length); s != shortfall::none)
    return stop(s, "session id length", in);
  if (length > max_session_id)
    return invalid("session id length " + std::to_string(length) + " exceeds " +
                   std::to_string(max_session_id));
  if (auto s = in.skip(length); s != shortfall::none) return stop(s, "session id", in);

  if (auto s = in.read_uint(2, length); s != shortfall::none)
    return stop(s, "cipher suites length", in);
  if (length == 0 || length % 2 != 0)
    return invalid("cipher suites length " + std::to_string(length) +
                   " is not a positive even number");
  if (auto s = in.skip(length); s != shortfall::none) return stop(s, "cipher suites", in);

  if (auto s = in.read_uint(1, length); s != shortfall::none)
    return stop(s, "compression methods length", in);
  if (length == 0) return invalid("no compression methods");
  if (auto s = in.skip(length); s != shortfall::none) return stop(s, "compression methods", in);

  client_hello out{parse_status::complete, {}, {}};
  // Extensions are optional (a TLS 1.0 client may send none); when present they end the message.
  if (in.remaining() == 0) return out;
  if (auto s = in.read_uint(2, length); s != shortfall::none)
    return stop(s, "extensions length", in);
  if (length != in.remaining())
    return invalid("extensions length " + std::to_string(length) + " does not match the " +
                   std::to_string(in.remaining()) + " bytes left in the ClientHello");
  reader block;
  in.sub(length, "extensions", block);  // cannot fail: the length was just checked
  bool have_server_name = false;
  while (block.remaining() > 0) {
    std::size_t type = 0;
    if (auto s = block.read_uint(2, type); s != shortfall::none)
      return stop(s, "extension type", block);
    if (auto s = block.read_uint(2, length); s != shortfall::none)
      return stop(s, "extension length", block);
    reader ext;
    if (auto s = block.sub(length, "extension", ext); s != shortfall::none)
      return stop(s, "extension " + hex(static_cast<unsigned>(type), 4), block);
    if (type == extension_server_name) {
      // RFC 8446 4.2: no extension type may appear twice.
      if (have_server_name) return invalid("more than one server_name extension");
      have_server_name = true;
      if (auto stopped = parse_server_name(ext, out.server_name)) return *stopped;
    } else if (auto s = ext.skip(length); s != shortfall::none) {
      // Only "not here yet" is possible: the sub-reader is exactly `length` long.
      return stop(s, "extension " + hex(static_cast<unsigned>(type), 4), ext);
    }
  }
  return out;
}

}  // namespace

client_hello parse_client_hello(std::span<const char> data, std::size_t max_bytes) {
  std::span<const unsigned char> bytes(reinterpret_cast<const unsigned char*>(data.data()),
                                       data.size());
  // Decided from the first two bytes, so plain text never waits for a whole record header.
  if (bytes.empty()) return incomplete();
  if (bytes[0] != content_type_handshake) return not_tls();
  if (bytes.size() >= 2 && bytes[1] != version_major_tls) return not_tls();

  const auto too_large = [max_bytes] {
    return invalid("ClientHello larger than " + std::to_string(max_bytes) + " bytes");
  };
  // The handshake message's received bytes: a view into `data` while it sits in one record (the
  // usual case, no copy), else the fragments of several records joined in `joined`.
  std::span<const unsigned char> message;
  std::string joined;
  std::size_t message_length = 0;  // header included; 0 until the header has arrived
  std::size_t offset = 0;          // start of the next record in `bytes`
  while (offset < bytes.size()) {
    const std::size_t have = bytes.size() - offset;
    // Records after the first must continue the handshake: RFC 8446 5.1 forbids interleaving
    // other content types within a handshake message.
    if (bytes[offset] != content_type_handshake)
      return invalid("record of type " + std::to_string(bytes[offset]) + " inside the ClientHello");
    if (have >= 2 && bytes[offset + 1] != version_major_tls)
      return invalid("record version major " + std::to_string(bytes[offset + 1]) + " is not 3");
    if (have < record_header_size) break;
    const std::size_t record_length = (std::size_t{bytes[offset + 3]} << 8) | bytes[offset + 4];
    // RFC 8446 5.1: zero-length handshake fragments are forbidden (and would let a client make
    // us spin through headers for nothing).
    if (record_length == 0) return invalid("empty handshake record");
    if (record_length > max_record_length)
      return invalid("record length " + std::to_string(record_length) + " exceeds " +
                     std::to_string(max_record_length));
    const std::size_t arrived = std::min(record_length, have - record_header_size);
    auto fragment = bytes.subspan(offset + record_header_size, arrived);
    const std::size_t before = message.size();
    if (offset == 0) {
      message = fragment;
    } else {
      if (joined.empty()) joined.assign(message.begin(), message.end());
      joined.append(fragment.begin(), fragment.end());
      message = {reinterpret_cast<const unsigned char*>(joined.data()), joined.size()};
    }
    if (!message.empty() && message[0] != handshake_client_hello)
      return invalid("handshake type " + std::to_string(message[0]) + " is not ClientHello");
    if (message_length == 0 && message.size() >= handshake_header_size) {
      message_length = handshake_header_size + ((std::size_t{message[1]} << 16) |
                                                (std::size_t{message[2]} << 8) | message[3]);
      // Rejected from the declared length alone, before any of the body is buffered.
      if (record_header_size + message_length > max_bytes) return too_large();
    }
    // The record bytes needed to reach the end of the message (or of this record) must lie
    // within max_bytes: this also bounds the overhead of many tiny records. The bytes needed
    // depend only on declared lengths, never on how many have arrived, so a prefix is rejected
    // only if the whole would be.
    const std::size_t needed_here = std::min(
        record_length, (message_length == 0 ? handshake_header_size : message_length) - before);
    if (offset + record_header_size + needed_here > max_bytes) return too_large();
    if (message_length != 0 && message.size() >= message_length) {
      message = message.first(message_length);  // what follows is not ours to examine
      break;
    }
    offset += record_header_size + record_length;
  }
  if (message_length == 0) return incomplete();  // the handshake header has not arrived
  reader body(message, handshake_header_size, message_length, "ClientHello");
  return parse_body(body);
}

bool matches(std::string_view pattern, std::string_view name) {
  if (name.empty()) return false;
  if (!is_wildcard(pattern)) return iequals(pattern, name);
  const auto suffix = pattern.substr(1);  // ".example.com": the label boundary is part of it
  return name.size() > suffix.size() && iequals(name.substr(name.size() - suffix.size()), suffix);
}

std::optional<std::string> normalize_pattern(std::string_view pattern) {
  std::string lower(pattern);
  std::transform(lower.begin(), lower.end(), lower.begin(), to_lower);
  const bool wildcard = lower.starts_with("*.");
  if (lower.empty() || lower == "*." || lower.find('*', wildcard ? 1 : 0) != std::string::npos ||
      lower.find_first_of(" /:") != std::string::npos)
    return std::nullopt;
  return lower;
}

std::optional<std::size_t> route(const std::vector<std::string>& patterns, std::string_view name) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    if (!matches(patterns[i], name)) continue;
    if (!is_wildcard(patterns[i])) return i;  // the first exact match beats every wildcard
    if (!best || patterns[i].size() > patterns[*best].size()) best = i;
  }
  return best;
}

}  // namespace zcproxy::sni
