#include "zcproxy/balancer.hpp"

#include <cassert>
#include <cmath>
#include <random>
#include <stdexcept>

namespace zcproxy {
namespace {

// splitmix64's finalizer: every input bit affects every output bit, so nearby inputs (adjacent
// IPs, keys differing in one digit) give unrelated outputs.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

// Uniform in [0, bound): splitmix64 per thread, so picks never contend on shared state.
std::uint64_t random_below(std::uint64_t bound) {
  thread_local std::uint64_t state = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }();
  state += 0x9e3779b97f4a7c15u;
  // Multiply-shift instead of %: no modulo bias, no division.
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(mix64(state)) * bound) >> 64);
}

// nginx's smooth weighted round-robin, played once for a full cycle: {5,1,1} gives
// a a b a c a a rather than a a a a a b c, so a heavy endpoint's turns are spread out.
std::vector<std::uint32_t> smooth_sequence(const std::vector<unsigned>& weights) {
  std::int64_t total = 0;
  for (auto w : weights) total += w;
  std::vector<std::int64_t> current(weights.size(), 0);
  std::vector<std::uint32_t> sequence;
  sequence.reserve(total);
  for (std::int64_t step = 0; step < total; ++step) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    sequence.push_back(static_cast<std::uint32_t>(best));
  }
  return sequence;
}

void check_weight(const std::string& key, unsigned weight) {
  if (weight < 1 || weight > balancer::max_weight)
    throw std::invalid_argument("balancer: weight of " + key + " not in 1.." +
                                std::to_string(balancer::max_weight));
}

}  // namespace

balancer::balancer(balance_policy policy, std::vector<endpoint> endpoints)
    : policy_(policy), weights_(endpoints.size()), active_(endpoints.size()) {
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    check_weight(endpoints[i].key, endpoints[i].weight);
    weights_[i].store(endpoints[i].weight, std::memory_order_relaxed);
    key_hashes_.push_back(hash_client(endpoints[i].key));
  }
  if (policy_ == balance_policy::round_robin)
    for (auto& t : turns_) t = std::make_unique<std::atomic<std::uint32_t>[]>(max_weight * size());
  publish_sequence();
}

void balancer::set_weight(std::size_t i, unsigned weight) {
  check_weight("endpoint " + std::to_string(i), weight);
  std::lock_guard lock(weights_mutex_);
  weights_[i].store(weight, std::memory_order_relaxed);
  publish_sequence();
}

void balancer::publish_sequence() {
  if (policy_ != balance_policy::round_robin) return;
  std::vector<unsigned> now;
  for (const auto& w : weights_) now.push_back(w.load(std::memory_order_relaxed));
  const std::vector<std::uint32_t> sequence = smooth_sequence(now);
  const std::uint64_t buffer = (current_turns_.load(std::memory_order_relaxed) >> 32) ^ 1;
  for (std::size_t k = 0; k < sequence.size(); ++k)
    turns_[buffer][k].store(sequence[k], std::memory_order_relaxed);
  current_turns_.store(buffer << 32 | sequence.size(), std::memory_order_release);
}

std::uint64_t balancer::hash_client(std::string_view ip_bytes_or_text) {
  // FNV-1a gathers the bytes; mix64 spreads them (FNV alone leaves the high bits weak).
  std::uint64_t h = 0xcbf29ce484222325u;
  for (unsigned char c : ip_bytes_or_text) h = (h ^ c) * 0x100000001b3u;
  return mix64(h);
}

std::optional<std::size_t> balancer::pick(std::span<const std::uint8_t> usable,
                                          std::uint64_t client_hash) {
  assert(usable.size() == size());
  if (size() == 0) return std::nullopt;  // a name that has not resolved yet
  switch (policy_) {
    case balance_policy::round_robin:
      return pick_round_robin(usable);
    case balance_policy::least_conn:
      return pick_least_conn(usable);
    case balance_policy::random:
      return pick_random(usable);
    case balance_policy::source_hash:
      return pick_source_hash(usable, client_hash);
  }
  return std::nullopt;
}

bool balancer::less_loaded(std::size_t i, std::size_t j) const {
  return active(i) * weight(j) < active(j) * weight(i);
}

std::optional<std::size_t> balancer::pick_round_robin(std::span<const std::uint8_t> usable) {
  const auto n = size();
  // An unusable endpoint's turn is consumed, not handed to its neighbour in the sequence, so the
  // others keep their relative shares.
  const std::uint64_t current = current_turns_.load(std::memory_order_acquire);
  const auto& turns = turns_[current >> 32];
  const std::uint64_t length = current & 0xffffffffu;
  for (std::size_t tries = 0; tries < n; ++tries) {
    auto i = turns[next_.fetch_add(1, std::memory_order_relaxed) % length].load(
        std::memory_order_relaxed);
    if (usable[i]) return i;
  }
  // Usable turns are rare (light endpoints left among unusable heavy ones): any usable one,
  // from a moving start so they share.
  const auto start = next_.load(std::memory_order_relaxed);
  for (std::size_t k = 0; k < n; ++k)
    if (auto i = (start + k) % n; usable[i]) return i;
  return std::nullopt;
}

std::optional<std::size_t> balancer::pick_least_conn(std::span<const std::uint8_t> usable) {
  const auto n = size();
  // A moving start breaks ties, so idle equal endpoints take turns instead of the first taking all.
  const auto start = next_.fetch_add(1, std::memory_order_relaxed);
  std::optional<std::size_t> best;
  for (std::size_t k = 0; k < n; ++k) {
    auto i = (start + k) % n;
    if (usable[i] && (!best || less_loaded(i, *best))) best = i;
  }
  return best;
}

std::optional<std::size_t> balancer::pick_random(std::span<const std::uint8_t> usable) {
  std::uint64_t total = 0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < size(); ++i)
    if (usable[i]) total += weight(i), last = i;
  if (total == 0) return std::nullopt;
  auto draw = [&] {
    auto r = random_below(total);
    for (std::size_t i = 0; i < size(); ++i) {
      if (!usable[i]) continue;
      if (r < weight(i)) return i;
      r -= weight(i);
    }
    return last;  // the weights changed since `total` was summed
  };
  // Power of two choices: nearly least_conn's balance without every thread reading every
  // counter, and no herd onto one endpoint that looks idle to all threads at once.
  auto a = draw(), b = draw();
  return less_loaded(b, a) ? b : a;
}

std::optional<std::size_t> balancer::pick_source_hash(std::span<const std::uint8_t> usable,
                                                      std::uint64_t client_hash) const {
  // Weighted rendezvous hashing: each endpoint scores the client by its own key alone, so adding,
  // removing or disabling one endpoint moves only the clients it wins or held.
  const auto client = mix64(client_hash);
  std::optional<std::size_t> best;
  double best_score = 0;
  for (std::size_t i = 0; i < size(); ++i) {
    if (!usable[i]) continue;
    auto h = mix64(key_hashes_[i] ^ client);
    double u = (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;  // in (0, 1): -log(u) > 0
    double score = weight(i) / -std::log(u);
    if (!best || score > best_score) best = i, best_score = score;
  }
  return best;
}

}  // namespace zcproxy
