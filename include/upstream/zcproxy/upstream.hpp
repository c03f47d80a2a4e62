// An upstream at run time: its endpoints' state (health, passive ejection, load) and endpoint
// selection. Pure logic, no sockets. Shared by every worker thread and the health checker: all
// state is atomic, and one upstream object lives as long as any connection that uses it, so a
// reload replaces it without disturbing those connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "zcproxy/balancer.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/connection_queue.hpp"
#include "zcproxy/counters.hpp"
#include "zcproxy/endpoint_mode.hpp"

namespace zcproxy {

class upstream {
 public:
  using clock = std::chrono::steady_clock;

  // Endpoints at the same address as one of `previous` (the same upstream before a reload) start
  // in its health state, so a reload neither revives a dead endpoint nor kills a live one, and
  // keep their run-time mode, and a weight set at run time while the file's weight is unchanged.
  // An address new to it that a name resolved to starts down when health checks are on.
  // Without `previous` (start-up) every endpoint starts up. `workers`: how many worker threads
  // count bytes (traffic()). With slow_start, an endpoint new to a running upstream that had
  // endpoints comes up at `now` (ramps from then), one still ramping in `previous` ramps on, the
  // rest are warm.
  upstream(upstream_config cfg, unsigned workers, const upstream* previous = nullptr,
           clock::time_point now = clock::now());
  const upstream_config& config() const { return cfg_; }
  std::size_t size() const { return cfg_.endpoints.size(); }
  const address& at(std::size_t i) const { return cfg_.endpoints[i].at; }
  // The DNS name endpoint i was resolved from; empty when it was given as an address.
  const std::string& host(std::size_t i) const { return cfg_.endpoints[i].host; }

  // Ready (not drained by hand), up (per health checks) and not ejected (per passive checks) at
  // `now`: whether a new connection may go there.
  bool usable(std::size_t i, clock::time_point now) const;

  // The admin API's: an endpoint's mode and weight, at run time (thread-safe).
  endpoint_mode mode(std::size_t i) const { return state_[i].mode.load(std::memory_order_relaxed); }
  // ready after maint: the endpoint comes up at `now` (slow start).
  void set_mode(std::size_t i, endpoint_mode m, clock::time_point now = clock::now());
  unsigned weight(std::size_t i) const { return balancer_.weight(i); }
  // Its weight as picks see it at `now`: weight(i) scaled by its slow start, if it ramps.
  double effective_weight(std::size_t i, clock::time_point now) const {
    return balancer_.effective_weight(i, now);
  }
  void set_weight(std::size_t i, unsigned weight) { balancer_.set_weight(i, weight); }
  // Choose among the endpoints marked in `candidates` (each also checked for usable()), by the
  // upstream's policy; nullopt when none is usable. With max_connections_per_endpoint, an
  // endpoint at the limit is no candidate, and the one chosen has a slot taken on it (give it
  // back with release(), or ended() once connected); `at_limit`, when given, says whether some
  // usable candidate was left out for being at the limit.
  std::optional<std::size_t> pick(std::span<std::uint8_t> candidates, std::uint64_t client_hash,
                                  clock::time_point now, bool* at_limit = nullptr);
  // Endpoint i's slot taken by pick() (or handed over by the queue) given back unused; a client
  // queued for one is woken.
  void release(std::size_t i) {
    if (limited()) release_slot(i);
  }
  // Whether max_connections_per_endpoint is set: then the queue exists.
  bool limited() const { return cfg_.max_connections_per_endpoint != 0; }
  // Where clients wait for a slot; nullptr without a limit.
  connection_queue* queue() const { return queue_.get(); }
  // A queued client's try for a slot, for connection_queue::try_take: pick() over every endpoint.
  std::optional<std::size_t> take_slot(std::uint64_t client_hash, clock::time_point now);
  // Connections counted against endpoint i's limit (connecting or open), in every generation.
  std::int64_t held(std::size_t i) const {
    return state_[i].slots ? state_[i].slots->load(std::memory_order_relaxed) : 0;
  }

  // Passive checks: a connect to endpoint i failed or succeeded. Returns true when this failure
  // ejected the endpoint (max_fails in a row).
  bool connect_failed(std::size_t i, clock::time_point now);
  void connect_succeeded(std::size_t i);
  // A connection to endpoint i started / ended (least_conn and random weigh by load); ended also
  // frees its slot under a limit.
  void started(std::size_t i) { balancer_.started(i); }
  void ended(std::size_t i) {
    balancer_.ended(i);
    if (limited()) release_slot(i);
  }
  std::int64_t active(std::size_t i) const { return balancer_.active(i); }

  // Whether to log now that no endpoint is usable: true at most once a second, so a dead upstream
  // under load does not flood the log.
  bool should_report_all_down(clock::time_point now);

  // Counters for metrics, carried over a reload like the health state.
  struct endpoint_counts {
    std::uint64_t connections, connect_failures, bytes_up, bytes_down;
  };
  endpoint_counts counts(std::size_t i) const;
  // Where worker `worker` counts the bytes it moves to and from endpoint i, as they move.
  endpoint_traffic_slot& traffic(std::size_t i, unsigned worker) {
    return state_[i].traffic->slots[worker];
  }

  // Active checks: returns true when the state changed. Going up, it comes up at `now` (slow
  // start).
  bool set_healthy(std::size_t i, bool up, clock::time_point now = clock::now());
  bool healthy(std::size_t i) const { return state_[i].healthy.load(std::memory_order_relaxed); }

 private:
  struct endpoint_state {
    std::atomic<endpoint_mode> mode{endpoint_mode::ready};
    std::atomic<bool> healthy{true};
    std::atomic<unsigned> fails{0};              // connect failures in a row
    std::atomic<std::int64_t> ejected_until{0};  // clock ticks; 0 = not ejected
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> connect_failures{0};
    std::shared_ptr<endpoint_traffic> traffic;  // carried over a reload as the same object
    // Under a limit, the connections counted against it: shared by every generation's endpoint at
    // this address, so an old generation's connections (which still occupy the backend) count.
    std::shared_ptr<std::atomic<std::int64_t>> slots;
  };

  bool try_slot(std::size_t i);  // one slot of endpoint i, if it has one free
  void release_slot(std::size_t i);

  upstream_config cfg_;
  balancer balancer_;
  std::unique_ptr<endpoint_state[]> state_;
  std::shared_ptr<connection_queue> queue_;         // under a limit; carried over a reload
  std::atomic<std::int64_t> all_down_reported_{0};  // clock ticks
};

}  // namespace zcproxy
