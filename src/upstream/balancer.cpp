#include "zcproxy/balancer.hpp"

#include <algorithm>
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

// A ramping endpoint's weight counts in 1/1024ths, so a ramp of 30 s moves in steps of ~30 ms.
constexpr unsigned ramp_shift = 10;
constexpr auto warm = std::numeric_limits<std::int64_t>::min();

void check_weight(const std::string& key, unsigned weight) {
  if (weight < 1 || weight > balancer::max_weight)
    throw std::invalid_argument("balancer: weight of " + key + " not in 1.." +
                                std::to_string(balancer::max_weight));
}

}  // namespace

// While no endpoint ramps: the configured weights, every usable endpoint a candidate.
struct balancer::configured {
  static constexpr bool gates = false;
  const balancer& b;
  std::uint64_t operator()(std::size_t i) const { return b.weight(i); }
  bool admits(std::size_t) const { return true; }
};

// While one ramps (slow start): its weight scaled by how far it has got; and for the policies
// that cannot weigh it by weight alone (round_robin's fixed sequence, least_conn's loads, which
// are all 0 between short connections), a ramping endpoint is a candidate for a pick only with
// the probability its ramp has reached: so its share grows from ~0 to its weight's.
struct balancer::ramping {
  static constexpr bool gates = true;
  const balancer& b;
  std::int64_t now;
  std::uint64_t operator()(std::size_t i) const { return b.ramped_weight(i, now); }
  bool admits(std::size_t i) const {
    const auto got = b.ramped_for(i, now);
    return got >= b.slow_start_ ||
           static_cast<std::int64_t>(random_below(static_cast<std::uint64_t>(b.slow_start_))) < got;
  }
};

balancer::balancer(balance_policy policy, std::vector<endpoint> endpoints, tuning t)
    : policy_(policy),
      slow_start_(t.slow_start.count() > 0 ? t.slow_start.count() : 0),
      hash_balance_factor_(t.hash_balance_factor),
      up_since_(endpoints.size()),
      weights_(endpoints.size()),
      active_(endpoints.size()) {
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    check_weight(endpoints[i].key, endpoints[i].weight);
    weights_[i].store(endpoints[i].weight, std::memory_order_relaxed);
    up_since_[i].store(warm, std::memory_order_relaxed);
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

void balancer::came_up(std::size_t i, clock::time_point since) {
  if (slow_start_ == 0) return;
  const auto t = since.time_since_epoch().count();
  up_since_[i].store(t, std::memory_order_relaxed);
  auto until = ramps_until_.load(std::memory_order_relaxed);
  while (until < t + slow_start_ &&
         !ramps_until_.compare_exchange_weak(until, t + slow_start_, std::memory_order_relaxed)) {
  }
}

std::int64_t balancer::ramped_for(std::size_t i, std::int64_t now) const {
  const auto since = up_since_[i].load(std::memory_order_relaxed);
  if (since == warm) return slow_start_;
  return std::max<std::int64_t>(0, now - since);
}

std::uint64_t balancer::ramped_weight(std::size_t i, std::int64_t now) const {
  const std::uint64_t full = std::uint64_t{weight(i)} << ramp_shift;
  const auto got = ramped_for(i, now);
  if (got >= slow_start_) return full;
  const auto part = static_cast<unsigned __int128>(full) * static_cast<std::uint64_t>(got) /
                    static_cast<std::uint64_t>(slow_start_);
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(part));
}

std::optional<balancer::clock::time_point> balancer::ramping_since(std::size_t i,
                                                                   clock::time_point now) const {
  if (ramped_for(i, now.time_since_epoch().count()) >= slow_start_) return std::nullopt;
  return clock::time_point(clock::duration(up_since_[i].load(std::memory_order_relaxed)));
}

double balancer::effective_weight(std::size_t i, clock::time_point now) const {
  return std::ldexp(double(ramped_weight(i, now.time_since_epoch().count())), -int(ramp_shift));
}

std::optional<std::size_t> balancer::pick(std::span<const std::uint8_t> usable,
                                          std::uint64_t client_hash, clock::time_point now) {
  assert(usable.size() == size());
  if (size() == 0) return std::nullopt;  // a name that has not resolved yet
  // The one test an upstream without slow start pays: ramps_until_ stays at its minimum.
  const auto t = now.time_since_epoch().count();
  if (t < ramps_until_.load(std::memory_order_relaxed)) [[unlikely]]
    return pick_with(usable, client_hash, ramping{*this, t});
  return pick_with(usable, client_hash, configured{*this});
}

template <class Weights>
std::optional<std::size_t> balancer::pick_with(std::span<const std::uint8_t> usable,
                                               std::uint64_t client_hash, const Weights& w) {
  switch (policy_) {
    case balance_policy::round_robin:
      return pick_round_robin(usable, w);
    case balance_policy::least_conn:
      return pick_least_conn(usable, w);
    case balance_policy::random:
      return pick_random(usable, w);
    case balance_policy::source_hash:
      return pick_source_hash(usable, client_hash, w);
  }
  return std::nullopt;
}

template <class Weights>
bool balancer::less_loaded(std::size_t i, std::size_t j, const Weights& w) const {
  // Weights are at most 256 << ramp_shift: far from overflowing with any count of connections.
  return active(i) * static_cast<std::int64_t>(w(j)) < active(j) * static_cast<std::int64_t>(w(i));
}

template <class Weights>
std::optional<std::size_t> balancer::pick_round_robin(std::span<const std::uint8_t> usable,
                                                      const Weights& w) {
  const auto n = size();
  // An unusable endpoint's turn is consumed, not handed to its neighbour in the sequence, so the
  // others keep their relative shares.
  const std::uint64_t current = current_turns_.load(std::memory_order_acquire);
  const auto& turns = turns_[current >> 32];
  const std::uint64_t length = current & 0xffffffffu;
  // A ramping endpoint's turn may pass: then up to a whole cycle, so that passing never falls
  // through to the spread below, which would not weigh the ramp.
  const std::uint64_t tries_max = Weights::gates ? std::max<std::uint64_t>(n, length) : n;
  for (std::uint64_t tries = 0; tries < tries_max; ++tries) {
    auto i = turns[next_.fetch_add(1, std::memory_order_relaxed) % length].load(
        std::memory_order_relaxed);
    // A ramping endpoint's turn passes with the probability its ramp lacks: it takes
    // ramp * weight of its turns, the others all of theirs, in the sequence's order.
    if (usable[i] && w.admits(i)) return i;
  }
  // Usable turns are rare (light endpoints left among unusable heavy ones): any usable one,
  // from a moving start so they share.
  const auto start = next_.load(std::memory_order_relaxed);
  for (std::size_t k = 0; k < n; ++k)
    if (auto i = (start + k) % n; usable[i]) return i;
  return std::nullopt;
}

template <class Weights>
std::optional<std::size_t> balancer::pick_least_conn(std::span<const std::uint8_t> usable,
                                                     const Weights& w) {
  const auto n = size();
  // A moving start breaks ties, so idle equal endpoints take turns instead of the first taking all.
  const auto start = next_.fetch_add(1, std::memory_order_relaxed);
  std::optional<std::size_t> best;
  for (std::size_t k = 0; k < n; ++k) {
    auto i = (start + k) % n;
    if (usable[i] && w.admits(i) && (!best || less_loaded(i, *best, w))) best = i;
  }
  if constexpr (Weights::gates)  // every usable one was ramping and passed: the least loaded
    if (!best) return pick_least_conn(usable, configured{*this});
  return best;
}

template <class Weights>
std::optional<std::size_t> balancer::pick_random(std::span<const std::uint8_t> usable,
                                                 const Weights& w) {
  std::uint64_t total = 0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < size(); ++i)
    if (usable[i]) total += w(i), last = i;
  if (total == 0) return std::nullopt;
  auto draw = [&] {
    auto r = random_below(total);
    for (std::size_t i = 0; i < size(); ++i) {
      if (!usable[i]) continue;
      if (r < w(i)) return i;
      r -= w(i);
    }
    return last;  // the weights changed since `total` was summed
  };
  // Power of two choices: nearly least_conn's balance without every thread reading every
  // counter, and no herd onto one endpoint that looks idle to all threads at once.
  auto a = draw(), b = draw();
  return less_loaded(b, a, w) ? b : a;
}

namespace {

// An endpoint's rendezvous score for a (mixed) client is its weight / this: each endpoint scores
// the client by its own key alone.
double rendezvous_divisor(std::uint64_t key_hash, std::uint64_t client) {
  auto h = mix64(key_hash ^ client);
  double u = (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;  // in (0, 1): -log(u) > 0
  return -std::log(u);
}

}  // namespace

template <class Weights>
std::optional<std::size_t> balancer::pick_source_hash(std::span<const std::uint8_t> usable,
                                                      std::uint64_t client_hash,
                                                      const Weights& w) const {
  // Weighted rendezvous hashing: adding, removing or disabling one endpoint moves only the
  // clients it wins or held.
  const auto client = mix64(client_hash);
  if (hash_balance_factor_ != 0) return pick_bounded_hash(usable, client, w);
  std::optional<std::size_t> best;
  double best_score = 0;
  for (std::size_t i = 0; i < size(); ++i) {
    if (!usable[i]) continue;
    double score = double(w(i)) / rendezvous_divisor(key_hashes_[i], client);
    if (!best || score > best_score) best = i, best_score = score;
  }
  return best;
}

template <class Weights>
std::optional<std::size_t> balancer::pick_bounded_hash(std::span<const std::uint8_t> usable,
                                                       std::uint64_t client,
                                                       const Weights& w) const {
  // Bounded loads (HAProxy's hash-balance-factor): the best-scoring endpoint among those under
  // factor% of the mean load per unit of weight, counting this connection; that is the first
  // such on the client's rendezvous order. Some endpoint always is (their bounds add up to more
  // than the load), unless loads moved meanwhile: then the plain best.
  __int128 load = 1, weights = 0;
  for (std::size_t i = 0; i < size(); ++i)
    if (usable[i]) load += std::max<std::int64_t>(0, active(i)), weights += w(i);
  std::optional<std::size_t> best, best_under;
  double best_score = 0, best_under_score = 0;
  for (std::size_t i = 0; i < size(); ++i) {
    if (!usable[i]) continue;
    double score = double(w(i)) / rendezvous_divisor(key_hashes_[i], client);
    if (!best || score > best_score) best = i, best_score = score;
    // active_i < ceil(load * factor% * w_i / weights), in integers.
    const bool under = active(i) * weights * 100 < load * hash_balance_factor_ * w(i);
    if (under && (!best_under || score > best_under_score))
      best_under = i, best_under_score = score;
  }
  return best_under ? best_under : best;
}

}  // namespace zcproxy
