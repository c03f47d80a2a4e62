// What the control plane (admin, signals) may ask of the running proxy, and no more: the runtime
// implements it (server::control()), admin uses it, so neither includes the other.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/address.hpp"
#include "zcproxy/dns.hpp"
#include "zcproxy/endpoint_mode.hpp"
#include "zcproxy/stats.hpp"

namespace zcproxy {

// The outcome of a reload: applied, or refused with why (nothing changed then).
struct reload_result {
  bool applied = false;
  std::string error;  // empty when applied

  static reload_result done() { return {true, {}}; }
  static reload_result refused(std::string why) { return {false, std::move(why)}; }
};

// A run-time change to an upstream's endpoint (admin API): what is set changes, the rest stays.
struct endpoint_update {
  std::optional<endpoint_mode> mode;
  std::optional<unsigned> weight;  // 1..256
};

struct endpoint_update_result {
  enum class status { applied, no_upstream, no_endpoint, invalid };
  status what = status::applied;
  std::string error;  // for the others
};

// A snapshot of the whole proxy, as control_api::snapshot hands it out.
struct proxy_stats {
  std::string version;
  double start_time = 0;  // Unix time, seconds
  double now = 0;         // likewise, when the snapshot was taken
  std::size_t sessions = 0;
  std::size_t pipes_leased = 0, pipes_idle = 0, buffers_leased = 0;
  std::uint64_t reloads = 0, reloads_failed = 0;
  std::vector<listener_stats> listeners;
  std::vector<endpoint_stats> endpoints;
  std::vector<upstream_queue_stats> queues;  // the upstreams with a limit, in config order
  std::vector<dns_stats> dns;
};

// Every call is thread-safe and may come at any time while the proxy runs.
class control_api {
 public:
  // The counters of the current config's listeners and upstream endpoints (see metrics.hpp).
  virtual proxy_stats snapshot() = 0;
  // Reload the config file the running config came from; logs the outcome.
  virtual reload_result reload_from_file() = 0;
  // Apply `u` to every endpoint at `at` in the current config's upstream `upstream` at once,
  // without a reload; the next reload keeps it for the endpoints still there.
  virtual endpoint_update_result update_endpoint(std::string_view upstream, const address& at,
                                                 const endpoint_update& u) = 0;
  // Draining or shut down: what /healthz reports.
  virtual bool draining() const = 0;

 protected:
  ~control_api() = default;
};

}  // namespace zcproxy
