// libFuzzer target: YAML bytes -> validated config or config_error, nothing else. A config that
// loads must be internally consistent (every listener's upstream or route exists).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "zcproxy/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const zcproxy::config c = zcproxy::load_config_string(text, "fuzz.yaml");
    for (const auto& l : c.listeners) {
      if (!l.upstream.empty() && !c.find_upstream(l.upstream)) std::abort();
      for (const auto& u : l.routes.upstreams)
        if (!c.find_upstream(u)) std::abort();
      if (l.upstream.empty() && l.routes.patterns.empty() && l.routes.default_route.empty())
        std::abort();  // a listener that goes nowhere
    }
    for (const auto& u : c.upstreams)
      if (u.endpoints.empty()) std::abort();
  } catch (const zcproxy::config_error& e) {
    if (e.errors().empty()) std::abort();  // an error must say what is wrong
  }
  return 0;
}
