// The connect phase's decisions: the client's hash for the balancer, and what a connect's
// outcome leads to.
#include "connect_policy.hpp"

#include "zcproxy/balancer.hpp"

namespace zcproxy::detail {

std::uint64_t client_hash_for(balance_policy policy, const std::string& ip_key) {
  return policy == balance_policy::source_hash ? balancer::hash_client(ip_key) : 0;
}

connect_report report_for(const outcome<>& connected) {
  // A full queue or a wait that ran out is no failure of an endpoint: the queue's metrics count it.
  if (connected || connected.reason() == close_reason::shutdown ||
      connected.reason() == close_reason::queue_full ||
      connected.reason() == close_reason::queue_timeout)
    return connect_report::none;
  return connected.why().empty() ? connect_report::all_down : connect_report::unreachable;
}

refusal refusal_for(close_reason reason, bool has_fallback) {
  // Whether the connection closes because no endpoint could be reached or take it (all at their
  // limit): the fallback's case.
  const bool unreachable =
      reason == close_reason::no_endpoint || reason == close_reason::connect_failed ||
      reason == close_reason::connect_timeout || reason == close_reason::queue_full ||
      reason == close_reason::queue_timeout;
  return has_fallback && unreachable ? refusal::fallback : refusal::reset;
}

}  // namespace zcproxy::detail
