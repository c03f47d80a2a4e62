#include "zcproxy/close_reason.hpp"

#include <iterator>

namespace zcproxy {
namespace {

// The one name table, in the enum's order.
constexpr std::string_view names[] = {"eof",
                                      "reset",
                                      "shutdown",
                                      "splice_refused",
                                      "connect_failed",
                                      "connect_timeout",
                                      "no_endpoint",
                                      "denied",
                                      "limit",
                                      "proxy_header",
                                      "sni_timeout",
                                      "client_hello",
                                      "no_route",
                                      "idle_timeout",
                                      "max_duration",
                                      "fallback"};
static_assert(std::size(names) == close_reasons.size(), "a name for every reason");

}  // namespace

std::string_view to_string(close_reason r) {
  return names[index_of(r)];
}

bool is_refusal(close_reason r) {
  switch (r) {
    case close_reason::denied:
    case close_reason::limit:
    case close_reason::proxy_header:
    case close_reason::sni_timeout:
    case close_reason::client_hello:
    case close_reason::no_route:
      return true;
    default:
      return false;
  }
}

std::string_view timeout_kind(close_reason r) {
  switch (r) {
    case close_reason::connect_timeout:
      return "connect";
    case close_reason::idle_timeout:
      return "idle";
    case close_reason::max_duration:
      return "max_duration";
    case close_reason::sni_timeout:
      return "sni";
    default:
      return "";
  }
}

}  // namespace zcproxy
