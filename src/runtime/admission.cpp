// A listener's allow/deny applied to a client's address.
#include "admission.hpp"

namespace zcproxy::detail {

bool permitted(const acl& access, const std::optional<address>& peer, const std::string& ip_key) {
  if (!peer) return access.permits_all();
  if (peer->local) return access.allow().empty();
  return access.permits({reinterpret_cast<const unsigned char*>(ip_key.data()), ip_key.size()});
}

}  // namespace zcproxy::detail
