// Endpoint selection by balance_policy: pure logic, no sockets. One balancer per upstream is
// shared by every worker thread; every method may be called concurrently (atomics, no locks).
// Which endpoints may be chosen (health) is the caller's to say on each pick.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/config.hpp"

namespace zcproxy {

// What an upstream asks of the choice beyond its policy; both off by default.
struct balance_tuning {
  // An endpoint that came_up() takes a weight that grows linearly from ~0 to its own over this.
  std::chrono::steady_clock::duration slow_start{0};
  // source_hash: an endpoint with more than this % of the mean load (per unit of weight) is
  // passed over for the next on the client's rendezvous order; 0 = off, else 100..1000.
  unsigned hash_balance_factor = 0;
};

class balancer {
 public:
  // The largest weight (the config's and the admin API's 1..256): it bounds the round-robin
  // sequence at max_weight turns per endpoint, so its buffers are sized once.
  static constexpr unsigned max_weight = 256;
  using clock = std::chrono::steady_clock;

  struct endpoint {
    std::string key;      // stable identity (the address text): source_hash maps clients by it
    unsigned weight = 1;  // 1..256
  };

  using tuning = balance_tuning;

  // Throws std::invalid_argument when a weight is out of 1..256. With no endpoints (names not
  // resolved yet) every pick is nullopt.
  balancer(balance_policy policy, std::vector<endpoint> endpoints, tuning t = {});
  balancer(const balancer&) = delete;
  balancer& operator=(const balancer&) = delete;

  std::size_t size() const { return weights_.size(); }
  balance_policy policy() const { return policy_; }

  // An endpoint i with usable[i] != 0 (usable.size() == size()); nullopt when none is.
  // client_hash: hash_client() of the client's IP, used by source_hash only. `now` weighs the
  // endpoints still in their slow start; while none is, the pick costs one comparison more.
  std::optional<std::size_t> pick(std::span<const std::uint8_t> usable,
                                  std::uint64_t client_hash = 0, clock::time_point now = {});

  // Endpoint i came up at `since` (a health check passed, ready after maint, new to a running
  // upstream): with slow_start its weight ramps from ~0 at `since` to weight(i) at
  // since + slow_start. Without slow_start, nothing.
  void came_up(std::size_t i, clock::time_point since);
  // When endpoint i came up, while it is still ramping at `now`; nullopt once warm.
  std::optional<clock::time_point> ramping_since(std::size_t i, clock::time_point now) const;
  // Endpoint i's weight at `now` as the picks see it: weight(i) scaled by its slow start.
  double effective_weight(std::size_t i, clock::time_point now) const;

  // Endpoint i's weight now, and a new one (1..256, else std::invalid_argument) for the picks
  // that follow: the admin API's, at run time. Picks made meanwhile see the old weight or the new.
  unsigned weight(std::size_t i) const { return weights_[i].load(std::memory_order_relaxed); }
  void set_weight(std::size_t i, unsigned weight);

  // A connection to endpoint i started / ended: the load least_conn and random compare.
  void started(std::size_t i) { active_[i].fetch_add(1, std::memory_order_relaxed); }
  void ended(std::size_t i) { active_[i].fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t active(std::size_t i) const { return active_[i].load(std::memory_order_relaxed); }

  // A well-mixed 64-bit hash, the same in every process (so is the source_hash mapping):
  // the client's address as raw bytes or as text.
  static std::uint64_t hash_client(std::string_view ip_bytes_or_text);

 private:
  // The weights a pick goes by (see balancer.cpp): `configured` (weight(i), every endpoint always
  // a candidate) while no endpoint ramps, `ramping` (slow start) while one does.
  struct configured;
  struct ramping;
  template <class Weights>
  std::optional<std::size_t> pick_with(std::span<const std::uint8_t> usable,
                                       std::uint64_t client_hash, const Weights& w);
  template <class Weights>
  std::optional<std::size_t> pick_round_robin(std::span<const std::uint8_t> usable,
                                              const Weights& w);
  template <class Weights>
  std::optional<std::size_t> pick_least_conn(std::span<const std::uint8_t> usable,
                                             const Weights& w);
  template <class Weights>
  std::optional<std::size_t> pick_random(std::span<const std::uint8_t> usable, const Weights& w);
  template <class Weights>
  std::optional<std::size_t> pick_source_hash(std::span<const std::uint8_t> usable,
                                              std::uint64_t client_hash, const Weights& w) const;
  template <class Weights>
  std::optional<std::size_t> pick_bounded_hash(std::span<const std::uint8_t> usable,
                                               std::uint64_t client, const Weights& w) const;
  // active_i / w(i) < active_j / w(j), without division.
  template <class Weights>
  bool less_loaded(std::size_t i, std::size_t j, const Weights& w) const;
  // weight(i) << ramp_shift, scaled by how far its slow start has got at `now` (at least 1).
  std::uint64_t ramped_weight(std::size_t i, std::int64_t now) const;
  // How far endpoint i's slow start has got at `now`, in ticks (>= slow_start_: warm).
  std::int64_t ramped_for(std::size_t i, std::int64_t now) const;

  // round_robin's turns: the smooth weighted sequence, sum(weights) long, in one of two buffers
  // of the largest length (256 per endpoint); a weight change writes the other one and makes it
  // current. A pick that still reads the old one while a second change rewrites it reads some
  // endpoint's index, never anything else: a moment's imbalance, no lock on the pick's path.
  void publish_sequence();

  balance_policy policy_;
  std::int64_t slow_start_;       // ticks; 0 = off
  unsigned hash_balance_factor_;  // 0 = off
  // The end of the latest slow start (ticks): a pick before it weighs the ramps. Only grows.
  std::atomic<std::int64_t> ramps_until_{std::numeric_limits<std::int64_t>::min()};
  std::vector<std::atomic<std::int64_t>> up_since_;  // ticks; warm = long ago (min)
  std::vector<std::atomic<unsigned>> weights_;
  std::vector<std::uint64_t> key_hashes_;  // hash_client(key): the rendezvous identity
  std::array<std::unique_ptr<std::atomic<std::uint32_t>[]>, 2> turns_;
  std::atomic<std::uint64_t> current_turns_{0};  // (buffer << 32) | length
  std::mutex weights_mutex_;                     // serialises weight changes
  std::atomic<std::uint64_t> next_{0};  // round_robin: index into sequence_; least_conn: tie start
  std::vector<std::atomic<std::int64_t>> active_;
};

}  // namespace zcproxy
