// Whether the upstreams' `source:` can work in this process, as it runs now: `source: client`
// needs CAP_NET_ADMIN (IP_TRANSPARENT), a fixed source an address of this host. Asked at start-up
// (a start that could not bind them fails, exit 2, instead of resetting every client later), by
// a reload, and by `zcproxy --check`.
#pragma once

#include <string>
#include <vector>

#include "zcproxy/config.hpp"

namespace zcproxy {

// What keeps each upstream's `source:` from being bound here ("upstream app: source: client
// needs ..."), joined by "; "; empty when every one can. Opens and closes a socket per upstream
// with a source.
std::string source_problems(const std::vector<upstream_config>& upstreams);

// Whether any upstream has `source: client` (the process then keeps CAP_NET_ADMIN when it gives
// up root).
bool needs_transparent(const std::vector<upstream_config>& upstreams);

}  // namespace zcproxy
