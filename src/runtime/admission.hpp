// Private to the runtime: whether a listener's allow/deny let a client in. Pure (plain values in,
// plain values out: testable with no socket).
#pragma once

#include <optional>
#include <string>

#include "zcproxy/acl.hpp"
#include "zcproxy/address.hpp"

namespace zcproxy::detail {

// Whether allow/deny let in a client from `peer` (`ip_key` its address bytes, ip_bytes). A Unix
// socket's client is refused by an allow list (it cannot be shown to be in it); one whose address
// is not known at all, by any rule (it cannot be shown to pass them).
bool permitted(const acl& access, const std::optional<address>& peer, const std::string& ip_key);

}  // namespace zcproxy::detail
