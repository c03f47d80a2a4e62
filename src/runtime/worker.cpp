#include "worker.hpp"

#include <malloc.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <exception>

#include "listener.hpp"
#include "zcproxy/log.hpp"

namespace zcproxy {
namespace asio = boost::asio;

worker::worker(const relay_config& r, unsigned i)
    : index(i),
      relay{r.engine, r.pipe_size, make_pipe_pool(r.pipe_size, r.max_pipes),
            make_buffer_pool(r.buffer_size)} {}

void worker::adopt(std::shared_ptr<const generation> next, std::vector<listener_plan> plan) {
  std::vector<bool> kept(listeners.size(), false);
  for (std::size_t j = 0; j < plan.size(); ++j) {
    const listener_runtime& lr = next->listeners[j];
    if (plan[j].acceptors.empty()) {
      // A listener this worker runs already: its socket stays; new sessions get the new settings.
      std::size_t k = 0;
      for (auto& l : listeners) {
        if (l.id == plan[j].id && l.acceptor.is_open()) {
          l.gen = next;
          l.config = lr.config;
          l.target = lr.target;
          l.access = &lr.access;
          l.state = lr.state.get();
          kept[k] = true;
        }
        ++k;
      }
      continue;
    }
    for (auto& acceptor : plan[j].acceptors) {
      auto it = listeners.insert(
          listeners.end(),
          bound_listener{plan[j].id, next, lr.config, lr.target, &lr.access, lr.state.get(),
                         std::move(acceptor), asio::steady_timer(io)});
      kept.push_back(true);
      if (draining) continue;  // a reload racing a shutdown: the loop would stop at once anyway
      asio::co_spawn(io, accept_loop(*this, *it), [this, it](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            main_log().error("listener {}: accepting stopped on thread {}: {}", it->config->name,
                             index, x.what());
          }
        }
        listeners.erase(it);
        settle_drain();
      });
    }
  }
  // Listeners the new generation has no more: stop accepting; their sessions run on.
  std::size_t k = 0;
  for (auto& l : listeners)
    if (!kept[k++] && l.acceptor.is_open()) close_listener(*this, l);
  gen = std::move(next);
}

void worker::shutdown(bool now) {
  auto stop_sessions = [this] {
    // stop() only wakes a session; it leaves the list when it ends.
    sessions.for_each([](session_handle* s) { s->stop(); });
  };
  draining = true;
  boost::system::error_code ec;
  for (auto& l : listeners) {
    l.acceptor.close(ec);
    l.backoff.cancel();
  }
  if (now || !gen || gen->cfg.drain_timeout.count() == 0) {
    drain_timer.cancel();
    stop_sessions();
  } else if (!sessions.empty() || handed_over) {
    // Handed over: a client accepted just before the close is still served, so the drain may
    // start with no session yet; settle_drain() ends it early once nothing is left.
    drain_timer.expires_after(gen->cfg.drain_timeout);
    drain_timer.async_wait([stop_sessions](boost::system::error_code ec) {
      if (!ec) stop_sessions();
    });
  }
}

void worker::settle_drain() {
  // The last session of a drain ends it early; then nothing keeps the io_context running.
  if (!draining || !sessions.empty() || (handed_over && !listeners.empty())) return;
  drain_timer.cancel();
  sweep_timer.cancel();
}

void worker::need_sweep() {
  if (sweeping) return;
  sweeping = true;
  sweep_timer.expires_after(sweep_interval);
  sweep_timer.async_wait([this](boost::system::error_code ec) {
    sweeping = false;
    if (ec || sessions.empty()) return;  // stops while no session runs: an idle worker sleeps
    const auto now = std::chrono::steady_clock::now();
    // check_timeouts() only stops a session; it leaves the list later, as it ends.
    sessions.for_each([now](session_handle* s) { s->check_timeouts(now); });
    need_sweep();
  });
}

void worker::session_started(session_handle* s) {
  sessions.push(s);
  session_count.store(sessions.size(), std::memory_order_relaxed);
  peak_sessions = std::max(peak_sessions, sessions.size());
}

void worker::session_ended(session_handle* s) {
  sessions.erase(s);
  session_count.store(sessions.size(), std::memory_order_relaxed);
  // After a storm, hand what the sessions' frames and buffers used back to the system: the
  // allocator keeps freed memory in its arenas otherwise, and the process would stay at its peak.
  // Rare (only once this thread has gone idle after many sessions) and quick.
  if (sessions.empty() && peak_sessions >= trim_after_sessions) {
    peak_sessions = 0;
    ::malloc_trim(0);
  }
  settle_drain();
}

}  // namespace zcproxy
