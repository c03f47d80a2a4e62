// A routed listener's choice of upstream, from the client's ClientHello.
#include "routing.hpp"

#include <utility>

namespace zcproxy::detail {

route_choice route_for(const sni_routes& routes, bool non_tls_to_default,
                       const sni::client_hello& hello) {
  if (hello.status == sni::parse_status::complete) {
    if (auto i = sni::route(routes.patterns, hello.server_name)) return {routes.upstreams[*i], ""};
    if (!routes.default_route.empty()) return {routes.default_route, ""};
    return {std::nullopt,
            hello.server_name.empty()
                ? "a ClientHello without a server name, and no default route"
                : "no route for server name " + hello.server_name + ", and no default route"};
  }
  if (non_tls_to_default) return {routes.default_route, ""};
  const std::string what = hello.status == sni::parse_status::not_tls
                               ? std::string("not TLS")
                               : "a malformed ClientHello (" + hello.reason + ")";
  return {std::nullopt, what + ", and non_tls is close"};
}

outcome<upstream*> route_client(const generation& gen, const listener_config& l,
                                const sni::client_hello& hello) {
  route_choice choice = route_for(l.routes, l.non_tls_to_default, hello);
  if (upstream* target = choice.upstream ? gen.find(*choice.upstream) : nullptr) return target;
  return closing{close_reason::no_route, std::move(choice.why)};
}

}  // namespace zcproxy::detail
