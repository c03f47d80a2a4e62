// Endpoint selection by balance_policy: pure logic, no sockets. One balancer per upstream is
// shared by every worker thread; every method may be called concurrently (atomics, no locks).
// Which endpoints may be chosen (health) is the caller's to say on each pick.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/config.hpp"

namespace zcproxy {

class balancer {
 public:
  // The largest weight (the config's and the admin API's 1..256): it bounds the round-robin
  // sequence at max_weight turns per endpoint, so its buffers are sized once.
  static constexpr unsigned max_weight = 256;

  struct endpoint {
    std::string key;      // stable identity (the address text): source_hash maps clients by it
    unsigned weight = 1;  // 1..256
  };

  // Throws std::invalid_argument when a weight is out of 1..256. With no endpoints (names not
  // resolved yet) every pick is nullopt.
  balancer(balance_policy policy, std::vector<endpoint> endpoints);
  balancer(const balancer&) = delete;
  balancer& operator=(const balancer&) = delete;

  std::size_t size() const { return weights_.size(); }
  balance_policy policy() const { return policy_; }

  // An endpoint i with usable[i] != 0 (usable.size() == size()); nullopt when none is.
  // client_hash: hash_client() of the client's IP, used by source_hash only.
  std::optional<std::size_t> pick(std::span<const std::uint8_t> usable,
                                  std::uint64_t client_hash = 0);

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
  std::optional<std::size_t> pick_round_robin(std::span<const std::uint8_t> usable);
  std::optional<std::size_t> pick_least_conn(std::span<const std::uint8_t> usable);
  std::optional<std::size_t> pick_random(std::span<const std::uint8_t> usable);
  std::optional<std::size_t> pick_source_hash(std::span<const std::uint8_t> usable,
                                              std::uint64_t client_hash) const;
  // active_i / weight_i < active_j / weight_j, without division.
  bool less_loaded(std::size_t i, std::size_t j) const;

  // round_robin's turns: the smooth weighted sequence, sum(weights) long, in one of two buffers
  // of the largest length (256 per endpoint); a weight change writes the other one and makes it
  // current. A pick that still reads the old one while a second change rewrites it reads some
  // endpoint's index, never anything else: a moment's imbalance, no lock on the pick's path.
  void publish_sequence();

  balance_policy policy_;
  std::vector<std::atomic<unsigned>> weights_;
  std::vector<std::uint64_t> key_hashes_;  // hash_client(key): the rendezvous identity
  std::array<std::unique_ptr<std::atomic<std::uint32_t>[]>, 2> turns_;
  std::atomic<std::uint64_t> current_turns_{0};  // (buffer << 32) | length
  std::mutex weights_mutex_;                     // serialises weight changes
  std::atomic<std::uint64_t> next_{0};  // round_robin: index into sequence_; least_conn: tie start
  std::vector<std::atomic<std::int64_t>> active_;
};

}  // namespace zcproxy
