// libFuzzer target: the TLS ClientHello parser and name routing. Besides not crashing: a complete
// hello's name is lower case, bytes after it change nothing, and a prefix of the input is never
// complete with another answer (once the hello is whole, more bytes cannot change it; before,
// it is incomplete or already refused).
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "zcproxy/sni.hpp"

using namespace zcproxy::sni;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const char> in(reinterpret_cast<const char*>(data), size);
  const client_hello h = parse_client_hello(in);
  if (h.status == parse_status::invalid && h.reason.empty()) std::abort();
  if (h.status != parse_status::complete) return 0;
  for (char c : h.server_name)
    if (std::isupper(static_cast<unsigned char>(c))) std::abort();
  std::string longer(in.begin(), in.end());
  longer += "trailing bytes";
  const client_hello again = parse_client_hello(longer);
  if (again.status != parse_status::complete || again.server_name != h.server_name) std::abort();
  for (std::size_t n = 0; n < size; n += 1 + size / 64) {
    const client_hello part = parse_client_hello(in.first(n));
    if (part.status == parse_status::complete && part.server_name != h.server_name) std::abort();
    if (part.status == parse_status::not_tls) std::abort();  // decided by the first two bytes
  }
  // Routing never matches an empty name, and an exact pattern of the name always matches.
  if (!h.server_name.empty() && !matches(h.server_name, h.server_name)) std::abort();
  if (matches("*.example.com", "")) std::abort();
  return 0;
}
