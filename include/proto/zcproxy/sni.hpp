// TLS Server Name Indication: read the server name from a client's first bytes (its ClientHello)
// and route it to one of a list of name patterns. Pure functions over bytes, no sockets, no state:
// safe to call from any thread. Nothing here decrypts or terminates TLS; the proxy peeks at the
// ClientHello, picks an upstream and then forwards every byte unchanged.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zcproxy::sni {

enum class parse_status {
  complete,    // the whole ClientHello is here and well-formed; server_name is set
  incomplete,  // a valid prefix of a ClientHello: read more bytes and parse again from the start
  not_tls,     // the first bytes are not a TLS handshake record (plain HTTP, SSH, SSLv2, ...)
  invalid,     // a TLS handshake record, but not a well-formed ClientHello; reason says why
};

struct client_hello {
  parse_status status = parse_status::incomplete;
  // complete: the host_name from the server_name extension, lower-cased; empty when the client
  // sent no server_name extension (e.g. it connected to an IP address).
  std::string server_name;
  // invalid: a one-line description for the log, e.g. "session id length 33 exceeds 32".
  std::string reason;
};

// The usual ClientHello is 200..600 bytes (about 2 KiB with a post-quantum key share); 16 KiB
// leaves room for large extensions while bounding what one unauthenticated client makes us buffer.
inline constexpr std::size_t default_max_hello_bytes = 16 * 1024;

// Parses the bytes a client has sent so far on a new connection: TLS records from the very start.
// The ClientHello may span several records (handshake message reassembly) and any number of reads;
// a prefix of a valid ClientHello is `incomplete`, and the caller parses again from the start once
// more bytes arrive. `not_tls` is decided from the first byte (content type 22, handshake) and the
// second (version major 3), so plain text is recognised at once: {0x16} alone is `incomplete`,
// {0x16, 0x02} is `not_tls`. An SSLv2-compatible ClientHello (first byte with the high bit set) is
// `not_tls`: no client has sent one for a decade and it cannot carry SNI.
// Malformed input is reported as early as it is seen, even before the rest has arrived. Bytes
// after the ClientHello (in its last record or in later records) are neither examined nor counted.
// `max_bytes` bounds the record bytes (headers included) that may carry the ClientHello; a larger
// one is `invalid` ("ClientHello larger than N bytes"), detected from its declared length.
client_hello parse_client_hello(std::span<const char> data,
                                std::size_t max_bytes = default_max_hello_bytes);

// Whether `name` (a server name, as parse_client_hello returns it) matches `pattern`, ASCII
// case-insensitively. A pattern is either an exact name ("api.example.com") or a wildcard
// "*.<suffix>" that matches any name ending in ".<suffix>" at any depth, as nginx's server_name
// does: "*.example.com" matches "api.example.com" and "a.b.example.com", never "example.com"
// itself nor "badexample.com". Any other '*' is literal, so such a pattern matches no valid name.
// An empty name (no SNI) matches nothing: routing those is the caller's default.
bool matches(std::string_view pattern, std::string_view name);

// `pattern` as routes hold it, lower-cased, when it is a valid server-name pattern: an exact name
// ("api.example.com") or "*.<suffix>"; nullopt for an empty pattern, a bare "*.", a '*' anywhere
// else, or a space, '/' or ':' (a URL or an address written by mistake).
std::optional<std::string> normalize_pattern(std::string_view pattern);

// The index of the pattern that best matches `name`: an exact pattern beats any wildcard, and
// among wildcards the longest suffix wins (so "*.eu.example.com" overrides "*.example.com").
// Ties (duplicate patterns) go to the first. nullopt when nothing matches.
std::optional<std::size_t> route(const std::vector<std::string>& patterns, std::string_view name);

}  // namespace zcproxy::sni
