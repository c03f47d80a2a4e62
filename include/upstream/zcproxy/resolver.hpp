// Endpoints by DNS name: the names resolved in the background by c-ares, on the control loop,
// never on a worker. Each name is resolved again when its TTL says, within its resolve_config's
// min_interval and max_interval; when a resolution fails (timeout, SERVFAIL, NXDOMAIN...) the
// last good addresses stay, the failure is logged once per change and counted, and it is tried
// again after min_interval. The owner hears of every change of a name's addresses.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/address.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/dns.hpp"

namespace boost::asio {
class io_context;
}

namespace zcproxy {

// The names among `c`'s endpoints, each once, with how its upstream resolves it.
std::vector<dns_name> names_in(const config& c);

class resolver {
 public:
  // Called on the io_context's thread with a name's new addresses (never for a failure: the last
  // good ones stay). It may call watch() and stats().
  using on_change = std::function<void(const dns_name&, const std::vector<address>&)>;

  // Resolves on `io` (the control loop), which must outlive it.
  resolver(boost::asio::io_context& io, on_change changed);
  // Abandons what is in flight; no call of `changed` is under way or starts once it returns.
  // What is left is freed on the io_context's thread (or with it).
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  // The names to keep resolved from now on: new ones are resolved at once, the ones already
  // watched keep their addresses and schedule, the others are dropped. Thread-safe.
  void watch(std::vector<dns_name> names);
  // Per watched name: its addresses now and its resolutions by result. Thread-safe.
  std::vector<dns_stats> stats() const;

  // Resolve `name` once, within `deadline` (for --check; blocks its caller).
  static dns_answer resolve_once(const dns_name& name, std::chrono::milliseconds deadline);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace zcproxy
