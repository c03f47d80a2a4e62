// libFuzzer target: the PROXY protocol parser. Besides not crashing: a complete header lies
// within the input and the size limit, parsing just its bytes gives the same header, and an
// address header encoded again parses back to the same addresses.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "zcproxy/proxy_protocol.hpp"

using namespace zcproxy::proxy_protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const char> in(reinterpret_cast<const char*>(data), size);
  const result r = parse(in);
  if (r.status == status::invalid && r.error.empty()) std::abort();
  if (r.status != status::complete) return 0;
  if (r.header.size == 0 || r.header.size > size || r.header.size > default_max_size) std::abort();
  const result again = parse(in.first(r.header.size));
  if (again.status != status::complete || again.header.size != r.header.size) std::abort();
  if (r.header.has_ip_addresses()) {
    for (const auto& encoded : {encode_v1(r.header.source, r.header.destination),
                                encode_v2(r.header.source, r.header.destination)}) {
      const result back = parse(encoded);
      if (back.status != status::complete || !(back.header.source == r.header.source) ||
          !(back.header.destination == r.header.destination))
        std::abort();
    }
  }
  return 0;
}
