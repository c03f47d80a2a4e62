#include "zcproxy/server.hpp"

#include <malloc.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <functional>
#include <condition_variable>
#include <map>
#include <optional>
#include <string>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "zcproxy/admin.hpp"
#include "zcproxy/health.hpp"
#include "zcproxy/listener.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/privileges.hpp"
#include "zcproxy/upstream.hpp"
#include "zcproxy/worker.hpp"

namespace zcproxy {
namespace asio = boost::asio;

// --- generation, worker -------------------------------------------------------------------

bool listener_state::admit(const std::string& ip, unsigned max_total, unsigned max_per_ip) {
  if (open.fetch_add(1, std::memory_order_relaxed) >= max_total && max_total != 0) {
    open.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  if (max_per_ip == 0) return true;
  std::lock_guard lock(per_ip_mutex);
  unsigned& n = per_ip[ip];
  if (n >= max_per_ip) {
    if (n == 0) per_ip.erase(ip);
    open.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  ++n;
  return true;
}

void listener_state::release(const std::string& ip, bool per_ip_counted) {
  open.fetch_sub(1, std::memory_order_relaxed);
  if (!per_ip_counted) return;
  std::lock_guard lock(per_ip_mutex);
  auto it = per_ip.find(ip);
  if (it != per_ip.end() && --it->second == 0) per_ip.erase(it);
}

upstream* generation::find(std::string_view name) const {
  for (const auto& u : upstreams)
    if (u->config().name == name) return u.get();
  return nullptr;
}

worker::worker(std::shared_ptr<const generation> g, unsigned i)
    : gen(std::move(g)),
      index(i),
      relay{gen->cfg.relay.engine, gen->cfg.relay.pipe_size,
            make_pipe_pool(gen->cfg.relay.pipe_size, gen->cfg.relay.max_pipes),
            make_buffer_pool(gen->cfg.relay.buffer_size)} {}

void worker::adopt(std::shared_ptr<const generation> next, std::vector<listener_plan> plan) {
  std::vector<bool> kept(listeners.size(), false);
  for (std::size_t j = 0; j < plan.size(); ++j) {
    const listener_config& lc = next->cfg.listeners[j];
    upstream* target = next->find(lc.upstream);
    if (!plan[j].acceptor) {
      // A listener this worker runs already: its socket stays; new sessions get the new settings.
      std::size_t k = 0;
      for (auto& l : listeners) {
        if (l.id == plan[j].id && l.acceptor.is_open()) {
          l.gen = next;
          l.config = &lc;
          l.target = target;
          l.access = &next->acls[j];
          l.state = next->listener_states[j].get();
          kept[k] = true;
        }
        ++k;
      }
      continue;
    }
    auto it = listeners.insert(listeners.end(),
                               bound_listener{plan[j].id, next, &lc, target, &next->acls[j],
                                              next->listener_states[j].get(),
                                              std::move(*plan[j].acceptor), asio::steady_timer(io)});
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
    });
  }
  // Listeners the new generation has no more: stop accepting; their sessions run on.
  std::size_t k = 0;
  for (auto& l : listeners)
    if (!kept[k++] && l.acceptor.is_open()) close_listener(*this, l);
  gen = std::move(next);
}

void worker::shutdown(bool now) {
  auto stop_sessions = [this] {
    // stop() only wakes a session; it leaves the list when its coroutine ends.
    for (session_handle* s : std::list<session_handle*>(sessions)) s->stop();
  };
  draining = true;
  boost::system::error_code ec;
  for (auto& l : listeners) {
    l.acceptor.close(ec);
    l.backoff.cancel();
  }
  if (now || gen->cfg.drain_timeout.count() == 0) {
    drain_timer.cancel();
    stop_sessions();
  } else if (!sessions.empty()) {
    drain_timer.expires_after(gen->cfg.drain_timeout);
    drain_timer.async_wait([stop_sessions](boost::system::error_code ec) {
      if (!ec) stop_sessions();
    });
  }
}

void worker::need_sweep() {
  if (sweeping) return;
  sweeping = true;
  sweep_timer.expires_after(sweep_interval);
  sweep_timer.async_wait([this](boost::system::error_code ec) {
    sweeping = false;
    if (ec || sessions.empty()) return;  // stops while no session runs: an idle worker sleeps
    const auto now = std::chrono::steady_clock::now();
    // check_timeouts() only stops a session; it leaves the list later, from its own coroutine.
    for (session_handle* s : sessions) s->check_timeouts(now);
    need_sweep();
  });
}

std::list<session_handle*>::iterator worker::session_started(session_handle* s) {
  auto it = sessions.insert(sessions.end(), s);
  session_count.store(sessions.size(), std::memory_order_relaxed);
  peak_sessions = std::max(peak_sessions, sessions.size());
  return it;
}

void worker::session_ended(std::list<session_handle*>::iterator it) {
  sessions.erase(it);
  session_count.store(sessions.size(), std::memory_order_relaxed);
  // After a storm, hand what the sessions' frames and buffers used back to the system: the
  // allocator keeps freed memory in its arenas otherwise, and the process would stay at its peak.
  // Rare (only once this thread has gone idle after many sessions) and quick.
  if (sessions.empty() && peak_sessions >= trim_after_sessions) {
    peak_sessions = 0;
    ::malloc_trim(0);
  }
  // The last session of a drain ends it early; then nothing keeps the io_context running.
  if (draining && sessions.empty()) {
    drain_timer.cancel();
    sweep_timer.cancel();
  }
}

// --- server -------------------------------------------------------------------------------

struct server::impl {
  explicit impl(config c) : initial(std::move(c)) {}

  config initial;  // until start()
  std::shared_ptr<const generation> gen;
  std::vector<std::unique_ptr<worker>> workers;
  std::vector<std::thread> threads;
  std::vector<address> listening;  // of gen, in its listener order
  std::uint64_t next_listener_id = 1;
  bool shutting_down = false;
  mutable std::mutex mutex;  // serialises start/reload and guards gen, listening
  std::mutex join_mutex;     // serialises wait() callers
  bool joined = false;
  std::atomic<unsigned> running{0};
  std::atomic<asio::io_context*> signal_io{nullptr};  // set while run_until_signalled() runs
  const std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  std::atomic<std::uint64_t> reloads{0}, reloads_refused{0};
  std::unique_ptr<admin_server> admin;  // from start() to wait()

  // The control thread: health checks. Its checkers are touched only on it.
  asio::io_context control{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> control_work;
  std::thread control_thread;
  std::map<const upstream*, std::unique_ptr<health_checker>> checkers;

  std::vector<asio::io_context*> worker_ios() {
    std::vector<asio::io_context*> out;
    for (auto& w : workers) out.push_back(&w->io);
    return out;
  }

  // The next generation's upstreams: an unchanged upstream is carried over as it is (load, health,
  // round-robin position); a changed one starts afresh but keeps its endpoints' health.
  std::vector<std::shared_ptr<upstream>> upstreams_for(const config& next) const {
    std::vector<std::shared_ptr<upstream>> out;
    for (const auto& uc : next.upstreams) {
      std::shared_ptr<upstream> previous;
      if (gen)
        for (const auto& u : gen->upstreams)
          if (u->config().name == uc.name) previous = u;
      if (previous && previous->config() == uc)
        out.push_back(previous);
      else
        out.push_back(std::make_shared<upstream>(uc, previous.get()));
    }
    return out;
  }

  // Health checks for `next`'s upstreams: kept for carried-over ones, started for new ones,
  // stopped for those gone.
  void update_checks(std::shared_ptr<const generation> next) {
    asio::post(control, [this, next] {
      std::map<const upstream*, std::unique_ptr<health_checker>> kept;
      for (const auto& u : next->upstreams) {
        auto it = checkers.find(u.get());
        if (it != checkers.end()) {
          kept.emplace(u.get(), std::move(it->second));
        } else {
          auto c = std::make_unique<health_checker>(control, u);
          c->start();
          kept.emplace(u.get(), std::move(c));
        }
      }
      checkers.swap(kept);  // the ones left in `kept` stop as it goes
    });
  }
};

server::server(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

server::~server() {
  shutdown(true);
  wait();
}

void server::start() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  // splice(2) into a socket whose peer is gone raises SIGPIPE (splice takes no MSG_NOSIGNAL);
  // left at its default, one closing client would kill the whole proxy.
  std::signal(SIGPIPE, SIG_IGN);
  setup_logging(m.initial.log);

  auto g = std::make_shared<generation>();
  g->upstreams = m.upstreams_for(m.initial);
  g->cfg = std::move(m.initial);
  const unsigned n = g->cfg.effective_threads();
  for (unsigned i = 0; i < n; ++i) m.workers.push_back(std::make_unique<worker>(g, i));

  std::vector<std::vector<listener_plan>> plans(n);
  m.listening.clear();
  for (const auto& lc : g->cfg.listeners) {
    address at;
    std::vector<stream_acceptor> acceptors;
    try {
      acceptors = open_listener(lc, m.worker_ios(), at);
    } catch (...) {  // nothing runs yet: undo what was made and fail
      for (const auto& made : m.listening) remove_socket_file(made);
      throw;
    }
    const std::uint64_t id = m.next_listener_id++;
    g->listener_ids.push_back(id);
    g->acls.emplace_back(lc.allow, lc.deny);
    g->listener_states.push_back(std::make_shared<listener_state>(n));
    for (unsigned i = 0; i < n; ++i) plans[i].push_back({id, std::move(acceptors[i])});
    m.listening.push_back(at);
    main_log().info(
        "listener {} on {} -> {} ({} threads, engine {}, pipe_size {}, "
        "buffer_size {})",
        lc.name, at.to_string(), lc.destination(), n, to_string(g->cfg.relay.engine),
        g->cfg.relay.pipe_size, g->cfg.relay.buffer_size);
  }
  if (g->cfg.admin.enabled) {
    try {
      m.admin = std::make_unique<admin_server>(*this, g->cfg.admin);
    } catch (...) {  // as for a listener: nothing runs yet
      for (const auto& made : m.listening) remove_socket_file(made);
      throw;
    }
  }
  if (const auto& r = g->cfg.run_as) {
    // Every socket is bound and the access file open: what needed root is done.
    try {
      drop_privileges(*r, g->cfg.core_dumps);
    } catch (...) {  // as for a listener: no connection has been accepted
      for (const auto& made : m.listening) remove_socket_file(made);
      throw;
    }
    main_log().info("running as user {} (uid {}), group {}", r->user, r->uid,
                    r->group.empty() ? std::to_string(r->gid) : r->group);
  }
  m.gen = g;
  for (unsigned i = 0; i < n; ++i) m.workers[i]->adopt(g, std::move(plans[i]));

  m.control_work.emplace(m.control.get_executor());
  m.update_checks(g);
  m.control_thread = std::thread([&m] { m.control.run(); });

  m.running = n;
  for (auto& w : m.workers) {
    m.threads.emplace_back([this, w = w.get()] {
      for (;;) {
        try {
          w->io.run();
          break;
        } catch (const std::exception& e) {
          main_log().error("worker {}: {}", w->index, e.what());  // a bug; keep serving
        }
      }
      if (--impl_->running == 0)
        if (auto* io = impl_->signal_io.load()) io->stop();
    });
  }
}

std::string server::reload(config next) {
  std::string error = apply_reload(std::move(next));
  (error.empty() ? impl_->reloads : impl_->reloads_refused).fetch_add(1, std::memory_order_relaxed);
  return error;
}

std::string server::apply_reload(config next) {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (!m.gen) return "the server is not running";
  // A draining worker would hold new listeners open without serving them.
  if (m.shutting_down) return "the server is shutting down";
  const config& now = m.gen->cfg;
  // What a restart alone can change: the threads and their pools.
  if (next.threads != now.threads || !(next.relay.engine == now.relay.engine &&
                                       next.relay.pipe_size == now.relay.pipe_size &&
                                       next.relay.max_pipes == now.relay.max_pipes &&
                                       next.relay.buffer_size == now.relay.buffer_size))
    main_log().warn("reload: threads and relay settings change only with a restart; kept as they are");
  next.threads = now.threads;
  next.relay = now.relay;
  if (!(next.admin == now.admin))
    main_log().warn("reload: admin settings change only with a restart; kept as they are");
  next.admin = now.admin;
  if (!(next.run_as == now.run_as) || next.core_dumps != now.core_dumps)
    main_log().warn("reload: user, group and core_dumps change only with a restart; kept as they are");
  next.run_as = now.run_as;
  next.core_dumps = now.core_dumps;

  auto g = std::make_shared<generation>();
  g->upstreams = m.upstreams_for(next);
  g->cfg = std::move(next);

  // Listeners keep their sockets where the configured address is unchanged; the others open now,
  // before anything changes, so that a port in use refuses the whole reload.
  const std::size_t n = m.workers.size();
  std::vector<std::vector<listener_plan>> plans(n);
  std::vector<address> listening;
  std::vector<bool> taken(now.listeners.size(), false);
  for (const auto& lc : g->cfg.listeners) {
    // The same address, preferring the same name (two listeners on port 0 share an address).
    std::optional<std::size_t> old;
    for (std::size_t k = 0; k < now.listeners.size() && !old; ++k)
      if (!taken[k] && now.listeners[k].bind == lc.bind && now.listeners[k].name == lc.name)
        old = k;
    for (std::size_t k = 0; k < now.listeners.size() && !old; ++k)
      if (!taken[k] && now.listeners[k].bind == lc.bind) old = k;
    if (old) {
      taken[*old] = true;
      g->listener_ids.push_back(m.gen->listener_ids[*old]);
      g->acls.emplace_back(lc.allow, lc.deny);
      g->listener_states.push_back(m.gen->listener_states[*old]);  // its counts carry on
      listening.push_back(m.listening[*old]);
      for (auto& p : plans) p.push_back({g->listener_ids.back(), std::nullopt});
      continue;
    }
    address at;
    std::vector<stream_acceptor> acceptors;
    try {
      acceptors = open_listener(lc, m.worker_ios(), at);
    } catch (const std::exception& e) {
      // The acceptors opened so far close as `plans` goes; their socket files go now.
      for (std::size_t j = 0; j < listening.size(); ++j)
        if (plans.front()[j].acceptor) remove_socket_file(listening[j]);
      return e.what();
    }
    g->listener_ids.push_back(m.next_listener_id++);
    g->acls.emplace_back(lc.allow, lc.deny);
    g->listener_states.push_back(std::make_shared<listener_state>(n));
    listening.push_back(at);
    for (std::size_t i = 0; i < n; ++i)
      plans[i].push_back({g->listener_ids.back(), std::move(acceptors[i])});
  }

  // Wait until every worker has taken the new generation over (and closed what it drops), so
  // that the next reload finds removed listeners' addresses free again.
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t adopted = 0;
  for (std::size_t i = 0; i < n; ++i)
    asio::post(m.workers[i]->io, [&, w = m.workers[i].get(), g,
                                  p = std::make_shared<std::vector<listener_plan>>(
                                      std::move(plans[i]))] {
      w->adopt(g, std::move(*p));
      std::lock_guard done_lock(done_mutex);
      ++adopted;
      done_cv.notify_all();
    });
  {
    std::unique_lock done_lock(done_mutex);
    // Workers run until shutdown, which waits for this mutex: they answer.
    done_cv.wait(done_lock, [&] { return adopted == n; });
  }
  for (std::size_t k = 0; k < now.listeners.size(); ++k)
    if (!taken[k]) remove_socket_file(m.listening[k]);  // removed: no new client finds it
  m.update_checks(g);
  try {
    setup_logging(g->cfg.log);
  } catch (const std::exception& e) {  // too late to refuse: the rest is applied already
    main_log().error("reload: {}; the access log stays as it was", e.what());
  }
  m.gen = g;
  m.listening = std::move(listening);
  return "";
}

std::vector<address> server::listening() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->listening;
}

void server::shutdown(bool now) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
  }
  // workers is fixed once started, and post() is thread-safe: no lock needed.
  for (auto& w : impl_->workers) asio::post(w->io, [w = w.get(), now] { w->shutdown(now); });
}

void server::wait() {
  auto& m = *impl_;
  std::lock_guard lock(m.join_mutex);
  if (m.joined) return;
  for (auto& t : m.threads) t.join();
  std::unique_ptr<admin_server> admin;  // stopped outside the lock: its requests take it
  {
    std::lock_guard lock(m.mutex);
    for (const auto& at : m.listening) remove_socket_file(at);
    admin = std::move(m.admin);
  }
  admin.reset();
  if (m.control_thread.joinable()) {
    asio::post(m.control, [&m] {
      m.checkers.clear();  // stops the checks, on their own thread
      m.control_work.reset();
    });
    m.control_thread.join();
  }
  m.joined = true;
}

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
  std::vector<address> listening;
  {
    std::lock_guard lock(impl_->mutex);
    g = impl_->gen;
    listening = impl_->listening;
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
  for (std::size_t j = 0; j < g->cfg.listeners.size(); ++j) {
    const listener_config& lc = g->cfg.listeners[j];
    listener_stats l = listener_stats::read(g->listener_states[j]->metrics);
    l.name = lc.name;
    l.bind = (j < listening.size() ? listening[j] : lc.bind).to_string();
    l.destination = lc.destination();
    total.listeners.push_back(std::move(l));
  }
  const auto now = upstream::clock::now();
  for (const auto& u : g->upstreams)
    for (std::size_t i = 0; i < u->size(); ++i) {
      const auto c = u->counts(i);
      total.endpoints.push_back({u->config().name, u->at(i), u->healthy(i), u->usable(i, now),
                                 u->active(i), c.connections, c.connect_failures, c.bytes_up,
                                 c.bytes_down});
    }
  return total;
}

int server::run_until_signalled() {
  asio::io_context io(1);
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  impl_->signal_io = &io;
  start();
  int received = 0;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    signals.async_wait(on_signal);
    if (sig == SIGHUP) {
      reload_from_file();
      return;
    }
    if (sig == SIGUSR1) {  // logrotate has moved the access file away
      reopen_access_log();
      return;
    }
    const bool now = ++received > 1;
    main_log().info("signal {}: {}", sig,
                    now ? "closing open connections now"
                        : "draining (no new connections; open ones get up to drain_timeout)");
    shutdown(now);
  };
  signals.async_wait(on_signal);
  if (impl_->running > 0) io.run();
  impl_->signal_io = nullptr;
  wait();
  main_log().info("stopped");
  return 0;
}

std::string server::reload_from_file() {
  std::string source;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->gen) return "the server is not running";
    source = impl_->gen->cfg.source;
  }
  main_log().info("reload: reading {}", source);
  std::string error;
  try {
    error = reload(load_config_file(source));
  } catch (const config_error& e) {
    for (const auto& line : e.errors()) main_log().error("reload: {}", line);
    error = "the config has " + std::to_string(e.errors().size()) + " error(s)";
    impl_->reloads_refused.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    error = e.what();
    impl_->reloads_refused.fetch_add(1, std::memory_order_relaxed);
  }
  if (!error.empty()) {
    main_log().error("reload refused, the running config stays: {}", error);
    return error;
  }
  main_log().info("reload: done; new connections use the new config");
  return "";
}

bool server::draining() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->shutting_down;
}

std::optional<address> server::admin_address() const {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->admin) return std::nullopt;
  return impl_->admin->bound();
}

}  // namespace zcproxy
