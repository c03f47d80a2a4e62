// libFuzzer target: sizes, durations and addresses as the config writes them. An address that
// parses prints as text that parses back to the same address.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "zcproxy/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)zcproxy::parse_size(text);
  if (auto d = zcproxy::parse_duration(text); d && d->count() < 0) std::abort();
  if (auto a = zcproxy::parse_address(text)) {
    const auto back = zcproxy::parse_address(a->to_string());
    if (!back || !(*back == *a)) std::abort();
  }
  return 0;
}
