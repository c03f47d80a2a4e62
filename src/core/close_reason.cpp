#include "zcproxy/close_reason.hpp"

namespace zcproxy {

bool is_refusal(close_reason r) {
  switch (r) {
    case close_reason::denied:
    case close_reason::limit:
    case close_reason::proxy_header:
    case close_reason::sni_timeout:
    case close_reason::client_hello:
    case close_reason::no_route:
    case close_reason::queue_full:
    case close_reason::queue_timeout:
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
    case close_reason::queue_timeout:
      return "queue";
    default:
      return "";
  }
}

}  // namespace zcproxy
