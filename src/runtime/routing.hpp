// Private to the runtime: where a routed listener sends a client, chosen from its ClientHello and
// the listener's routes. route_for is pure (plain values in, plain values out: testable with no
// socket); route_client looks its answer up in a generation.
#pragma once

#include <optional>
#include <string>

#include "generation.hpp"
#include "zcproxy/close_reason.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/sni.hpp"

namespace zcproxy::detail {

// A route's answer: the name of the upstream that takes the client, or why none does.
struct route_choice {
  std::optional<std::string> upstream;
  std::string why;  // when upstream is empty: for the main log ("" when there is nothing to tell)
};

// A ClientHello's server name goes to the first route whose pattern matches it, else to the
// default route; one without a server name goes to the default route. Bytes that are not a
// well-formed ClientHello go to the default route with `non_tls_to_default`, else nowhere.
route_choice route_for(const sni_routes& routes, bool non_tls_to_default,
                       const sni::client_hello& hello);

// The upstream a routed listener sends this client to, from its ClientHello; closes with
// no_route when no route takes it.
outcome<upstream*> route_client(const generation& gen, const listener_config& l,
                                const sni::client_hello& hello);

}  // namespace zcproxy::detail
