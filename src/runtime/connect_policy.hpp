// Private to the runtime: the connect phase's decisions, pure (plain values in, plain values out:
// testable with no socket). The connecting itself, with its retries and counts, is
// endpoint_connection's (upstream layer).
#pragma once

#include <cstdint>
#include <string>

#include "zcproxy/close_reason.hpp"
#include "zcproxy/config.hpp"

namespace zcproxy::detail {

// What the balancer gets of the client: source_hash's hash of its address bytes (`ip_key`),
// 0 for every other policy.
std::uint64_t client_hash_for(balance_policy policy, const std::string& ip_key);

// What the main log gets of a connect's outcome.
enum class connect_report {
  none,         // connected, or stopped by a shutdown: nothing to tell
  all_down,     // no endpoint was usable, so none was tried (the upstream's own, rate-limited line)
  unreachable,  // endpoints were tried and failed: a line about this client (log_limiter's)
};
connect_report report_for(const outcome<>& connected);

// What a client the session refuses gets.
enum class refusal {
  reset,     // as a direct connect to a dead or closed service would be
  fallback,  // the listener's fallback_response
};
// The fallback response only when no endpoint could be reached and the listener has one.
refusal refusal_for(close_reason reason, bool has_fallback);

}  // namespace zcproxy::detail
