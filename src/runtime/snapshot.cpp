// The server's stats (server::snapshot, and control_api::snapshot through it): the workers'
// totals, the current generation's listeners and upstream endpoints, and the resolver's names.
#include <chrono>
#include <memory>
#include <mutex>

#include "generation.hpp"
#include "listener_state.hpp"
#include "server_impl.hpp"
#include "worker.hpp"
#include "zcproxy/resolver.hpp"
#include "zcproxy/server.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy {

server::stats server::snapshot() {
  stats total;
  for (auto& w : impl_->workers) {
    total.sessions += w->session_count.load(std::memory_order_relaxed);
    total.pipes_leased += w->relay.pipes.leased();
    total.pipes_idle += w->relay.pipes.idle();
    total.buffers_leased += w->relay.buffers.leased();
    total.bytes_spliced += w->bytes_spliced.load(std::memory_order_relaxed);
    total.bytes_copied += w->bytes_copied.load(std::memory_order_relaxed);
  }
  std::shared_ptr<const generation> g;
  {
    std::lock_guard lock(impl_->mutex);
    g = impl_->gen;
  }
  auto unix_time = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
  };
  total.version = ZCPROXY_VERSION;
  total.start_time = unix_time(impl_->started);
  total.now = unix_time(std::chrono::system_clock::now());
  total.reloads = impl_->reloads.load(std::memory_order_relaxed);
  total.reloads_failed = impl_->reloads_refused.load(std::memory_order_relaxed);
  if (!g) return total;
  for (const auto& lr : g->listeners) {
    listener_stats l = listener_stats::read(lr.state->metrics);
    l.name = lr.config->name;
    l.bind = lr.bound.to_string();
    l.destination = lr.config->destination();
    total.listeners.push_back(std::move(l));
  }
  const auto now = upstream::clock::now();
  for (const auto& u : g->upstreams)
    for (std::size_t i = 0; i < u->size(); ++i) {
      const auto c = u->counts(i);
      total.endpoints.push_back({u->config().name, u->at(i), u->host(i), u->mode(i), u->weight(i),
                                 u->effective_weight(i, now), u->healthy(i), u->usable(i, now),
                                 u->active(i), c.connections, c.connect_failures, c.bytes_up,
                                 c.bytes_down});
    }
  for (const auto& u : g->upstreams)
    if (const connection_queue* q = u->queue()) {
      const auto c = q->read();
      total.queues.push_back(
          {u->config().name, c.waiting, c.refused_full, c.refused_timeout, c.waits, c.wait_sum});
    }
  std::lock_guard lock(impl_->mutex);
  if (impl_->dns) total.dns = impl_->dns->stats();
  return total;
}

}  // namespace zcproxy
