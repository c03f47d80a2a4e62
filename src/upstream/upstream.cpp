#include "zcproxy/upstream.hpp"

namespace zcproxy {
namespace {

std::vector<balancer::endpoint> balancer_endpoints(const upstream_config& cfg) {
  std::vector<balancer::endpoint> out;
  for (const auto& e : cfg.endpoints) out.push_back({e.at.to_string(), e.weight});
  return out;
}

}  // namespace

upstream::upstream(upstream_config cfg, unsigned workers, const upstream* previous,
                   clock::time_point now)
    : cfg_(std::move(cfg)),
      balancer_(cfg_.balance, balancer_endpoints(cfg_),
                {.slow_start = cfg_.slow_start, .hash_balance_factor = cfg_.hash_balance_factor}),
      state_(std::make_unique<endpoint_state[]>(cfg_.endpoints.size())) {
  for (std::size_t i = 0; i < size(); ++i) {
    state_[i].traffic = std::make_shared<endpoint_traffic>(workers);
    // An address a name has just resolved to, in a running upstream, takes traffic once its
    // health checks pass (at start-up every endpoint starts up, as ever).
    if (previous && !cfg_.endpoints[i].host.empty() && cfg_.health_check.enabled)
      state_[i].healthy = false;
    bool known = false;
    for (std::size_t j = 0; previous && j < previous->size(); ++j)
      if (previous->at(j) == at(i)) {
        known = true;
        if (auto since = previous->balancer_.ramping_since(j, now)) balancer_.came_up(i, *since);
        const auto& old = previous->state_[j];
        state_[i].healthy = old.healthy.load();
        state_[i].fails = old.fails.load();
        state_[i].ejected_until = old.ejected_until.load();
        state_[i].connections = old.connections.load();
        state_[i].connect_failures = old.connect_failures.load();
        state_[i].traffic = old.traffic;
        state_[i].slots = old.slots;
        state_[i].mode = old.mode.load();
        const unsigned file_weight = previous->cfg_.endpoints[j].weight;
        if (file_weight == cfg_.endpoints[i].weight && previous->weight(j) != file_weight)
          set_weight(i, previous->weight(j));
      }
    if (limited() && !state_[i].slots)
      state_[i].slots = std::make_shared<std::atomic<std::int64_t>>(0);
    // New beside endpoints that serve: it comes up (with health checks, again when they pass).
    // The first addresses of a name that had none share with nobody: they start warm.
    if (!known && previous && previous->size() > 0) balancer_.came_up(i, now);
  }
  // Its clients queued before the reload keep their places, and a slot freed by either
  // generation wakes the oldest of them.
  if (limited())
    queue_ = previous && previous->queue_ ? previous->queue_ : std::make_shared<connection_queue>();
}

upstream::endpoint_counts upstream::counts(std::size_t i) const {
  constexpr auto relaxed = std::memory_order_relaxed;
  const auto& s = state_[i];
  endpoint_counts out{s.connections.load(relaxed), s.connect_failures.load(relaxed), 0, 0};
  for (unsigned w = 0; w < s.traffic->workers; ++w) {
    out.bytes_up += s.traffic->slots[w].up.load(relaxed);
    out.bytes_down += s.traffic->slots[w].down.load(relaxed);
  }
  return out;
}

bool upstream::usable(std::size_t i, clock::time_point now) const {
  const auto& s = state_[i];
  return s.mode.load(std::memory_order_relaxed) == endpoint_mode::ready &&
         s.healthy.load(std::memory_order_relaxed) &&
         s.ejected_until.load(std::memory_order_relaxed) <= now.time_since_epoch().count();
}

std::optional<std::size_t> upstream::pick(std::span<std::uint8_t> candidates,
                                          std::uint64_t client_hash, clock::time_point now,
                                          bool* at_limit) {
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i] && !usable(i, now)) candidates[i] = 0;
  if (!limited()) return balancer_.pick(candidates, client_hash, now);
  const std::int64_t limit = cfg_.max_connections_per_endpoint;
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i] && held(i) >= limit) {
      candidates[i] = 0;
      if (at_limit) *at_limit = true;
    }
  // Another thread may take the chosen one's last slot first: then it is at the limit too.
  while (auto i = balancer_.pick(candidates, client_hash, now)) {
    if (try_slot(*i)) return i;
    candidates[*i] = 0;
    if (at_limit) *at_limit = true;
  }
  return std::nullopt;
}

std::optional<std::size_t> upstream::take_slot(std::uint64_t client_hash, clock::time_point now) {
  std::vector<std::uint8_t> candidates(size(), 1);
  return pick(candidates, client_hash, now);
}

bool upstream::try_slot(std::size_t i) {
  auto& held = *state_[i].slots;
  const std::int64_t limit = cfg_.max_connections_per_endpoint;
  // seq_cst with the queue's count: see connection_queue::join.
  for (auto n = held.load(std::memory_order_seq_cst); n < limit;)
    if (held.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst)) return true;
  return false;
}

void upstream::release_slot(std::size_t i) {
  state_[i].slots->fetch_sub(1, std::memory_order_seq_cst);
  queue_->slot_freed();
}

bool upstream::connect_failed(std::size_t i, clock::time_point now) {
  auto& s = state_[i];
  s.connect_failures.fetch_add(1, std::memory_order_relaxed);
  const unsigned fails = s.fails.fetch_add(1, std::memory_order_relaxed) + 1;
  if (cfg_.max_fails == 0 || fails < cfg_.max_fails) return false;
  // Ejected; once fail_timeout has passed one connection may try it again (fails stays at
  // max_fails, so a failure then ejects it again at once).
  const auto until = (now + cfg_.fail_timeout).time_since_epoch().count();
  return s.ejected_until.exchange(until, std::memory_order_relaxed) <=
         now.time_since_epoch().count();
}

void upstream::connect_succeeded(std::size_t i) {
  auto& s = state_[i];
  s.connections.fetch_add(1, std::memory_order_relaxed);
  if (s.fails.load(std::memory_order_relaxed) != 0) s.fails.store(0, std::memory_order_relaxed);
  if (s.ejected_until.load(std::memory_order_relaxed) != 0)
    s.ejected_until.store(0, std::memory_order_relaxed);
}

bool upstream::should_report_all_down(clock::time_point now) {
  const auto t = now.time_since_epoch().count();
  auto last = all_down_reported_.load(std::memory_order_relaxed);
  const auto second = std::chrono::duration_cast<clock::duration>(std::chrono::seconds(1)).count();
  return t - last >= second &&
         all_down_reported_.compare_exchange_strong(last, t, std::memory_order_relaxed);
}

void upstream::set_mode(std::size_t i, endpoint_mode m, clock::time_point now) {
  const auto was = state_[i].mode.exchange(m, std::memory_order_relaxed);
  if (was == endpoint_mode::maint && m == endpoint_mode::ready) balancer_.came_up(i, now);
}

bool upstream::set_healthy(std::size_t i, bool up, clock::time_point now) {
  if (state_[i].healthy.exchange(up, std::memory_order_relaxed) == up) return false;
  if (up) balancer_.came_up(i, now);
  return true;
}

}  // namespace zcproxy
