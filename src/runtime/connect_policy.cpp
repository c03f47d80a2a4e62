// The connect phase's decisions: the client's hash for the balancer, and what a connect's
// outcome leads to.
#include "connect_policy.hpp"

#include "zcproxy/balancer.hpp"

namespace zcproxy::detail {

std::uint64_t client_hash_for(balance_policy policy, const std::string& ip_key) {
  return policy == balance_policy::source_hash ? balancer::hash_client(ip_key) : 0;
}

connect_report report_for(const outcome<>& connected) {
  if (connected || connected.reason() == close_reason::shutdown) return connect_report::none;
  return connected.why().empty() ? connect_report::all_down : connect_report::unreachable;
}

refusal refusal_for(close_reason reason, bool has_fallback) {
  // Whether the connection closes because no endpoint could be reached: the fallback's case.
  const bool unreachable = reason == close_reason::no_endpoint ||
                           reason == close_reason::connect_failed ||
                           reason == close_reason::connect_timeout;
  return has_fallback && unreachable ? refusal::fallback : refusal::reset;
}

}  // namespace zcproxy::detail
