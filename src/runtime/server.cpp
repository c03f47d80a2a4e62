#include "zcproxy/server.hpp"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>

#include "generation.hpp"
#include "listener.hpp"
#include "worker.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/resolver.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

// What a restart alone can change (the threads and their pools, the admin listener, the user and
// core dumps) stays as `now` has it, with a warning when `next` asks otherwise.
void keep_restart_only_settings(config& next, const config& now) {
  if (next.threads != now.threads ||
      !(next.relay.engine == now.relay.engine && next.relay.pipe_size == now.relay.pipe_size &&
        next.relay.max_pipes == now.relay.max_pipes &&
        next.relay.buffer_size == now.relay.buffer_size))
    main_log().warn(
        "reload: threads and relay settings change only with a restart; kept as they are");
  next.threads = now.threads;
  next.relay = now.relay;
  if (!(next.admin == now.admin))
    main_log().warn("reload: admin settings change only with a restart; kept as they are");
  next.admin = now.admin;
  if (!(next.run_as == now.run_as) || next.core_dumps != now.core_dumps)
    main_log().warn(
        "reload: user, group and core_dumps change only with a restart; kept as they are");
  next.run_as = now.run_as;
  next.core_dumps = now.core_dumps;
  if (next.upgrade_socket != now.upgrade_socket)
    main_log().warn("reload: upgrade_socket changes only with a restart; kept as it is");
  next.upgrade_socket = now.upgrade_socket;
  if (next.watch_config != now.watch_config)
    main_log().warn("reload: watch_config changes only with a restart; kept as it is");
  next.watch_config = now.watch_config;
}

}  // namespace

struct server::impl final : control_api {
  impl(server& s, config c) : self(s), initial(std::move(c)) {}

  server& self;
  config initial;           // until open()
  config declared;          // the config as written (names unresolved); gen->cfg has them resolved
  resolved_names resolved;  // what the names among its endpoints resolve to now
  asio::io_context* control = nullptr;  // the control loop: the resolver runs on it
  std::unique_ptr<resolver> dns;        // from start() to wait(); calls apply_resolution()
  std::shared_ptr<const generation> gen;
  std::vector<std::vector<listener_plan>> unstarted;  // gen's sockets, from open() to start()
  std::vector<std::unique_ptr<worker>> workers;
  std::vector<std::thread> threads;
  bool shutting_down = false;
  bool handed_over = false;  // another process accepts on the listeners' sockets now
  std::vector<inherited_listener> inherited;  // from inherit() to open()
  mutable std::mutex mutex;  // serialises open/start/reload and guards gen, unstarted
  std::mutex join_mutex;     // serialises wait() callers
  bool joined = false;
  const std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  std::atomic<std::uint64_t> reloads{0}, reloads_refused{0};
  upstreams_hook on_upstreams;
  std::function<void()> on_stopped;
  std::atomic<std::size_t> running{0};  // worker threads not yet ended

  std::vector<asio::io_context*> worker_ios() {
    std::vector<asio::io_context*> out;
    for (auto& w : workers) out.push_back(&w->io);
    return out;
  }

  // `g` takes over (under the lock).
  void commit(std::shared_ptr<const generation> g) {
    gen = std::move(g);
    if (on_upstreams) on_upstreams(gen->upstreams);
    watch_names();
  }

  // Keep the names of `declared` resolved, and what they resolve to; forget the others. The
  // resolver starts with the first name, once the workers run.
  void watch_names() {
    const std::vector<dns_name> names = names_in(declared);
    std::erase_if(resolved, [&](const auto& r) {
      return std::find(names.begin(), names.end(), r.first) == names.end();
    });
    if (!dns && control && !names.empty() && !threads.empty())
      dns = std::make_unique<resolver>(
          *control, [this](const dns_name& name, const std::vector<address>& addresses) {
            apply_resolution(name, addresses);
          });
    if (dns) dns->watch(names);
  }

  // A name resolved to new addresses: the generation takes them (a reload of the same config).
  void apply_resolution(const dns_name& name, const std::vector<address>& addresses);

  reload_result apply_reload(config next);
  // Hand `built` to every worker and wait until each has taken it over (and closed what it
  // drops), so that the next reload finds removed listeners' addresses free again.
  void hand_over(built_generation built);

  proxy_stats snapshot() override { return self.snapshot(); }
  reload_result reload_from_file() override { return self.reload_from_file(); }
  bool draining() const override { return self.draining(); }
  endpoint_update_result update_endpoint(std::string_view upstream_name, const address& at,
                                         const endpoint_update& u) override;
};

void server::impl::apply_resolution(const dns_name& name, const std::vector<address>& addresses) {
  std::lock_guard lock(mutex);
  // Not before the workers run, nor once they stop (a hand-over would wait for them forever).
  if (!gen || threads.empty() || shutting_down) return;
  auto known = std::find_if(resolved.begin(), resolved.end(),
                            [&](const auto& r) { return r.first == name; });
  if (known == resolved.end())
    resolved.emplace_back(name, addresses);
  else
    known->second = addresses;
  try {
    built_generation built =
        build_generation(with_resolved_names(declared, resolved), gen.get(), worker_ios());
    const std::shared_ptr<const generation> after = built.gen;
    hand_over(std::move(built));
    commit(after);
  } catch (const std::exception& e) {  // every listener is kept: nothing to bind, so not expected
    main_log().error("dns: {}: the new addresses are not applied: {}", name.host, e.what());
  }
}

// Under the server's lock, so a reload building on the current upstreams sees it whole.
endpoint_update_result server::impl::update_endpoint(std::string_view upstream_name,
                                                     const address& at, const endpoint_update& u) {
  using status = endpoint_update_result::status;
  if (u.weight && (*u.weight < 1 || *u.weight > 256))
    return {status::invalid, "weight " + std::to_string(*u.weight) + " is not in 1..256"};
  std::lock_guard lock(mutex);
  upstream* target = gen ? gen->find(upstream_name) : nullptr;
  if (!target) return {status::no_upstream, "no upstream " + std::string(upstream_name)};
  bool found = false;
  for (std::size_t i = 0; i < target->size(); ++i) {
    if (!(target->at(i) == at)) continue;
    found = true;
    if (u.weight) target->set_weight(i, *u.weight);
    if (u.mode) target->set_mode(i, *u.mode);
    main_log().info("admin: upstream {} endpoint {}: state {}, weight {}", upstream_name,
                    at.to_string(), to_string(target->mode(i)), target->weight(i));
  }
  if (!found)
    return {status::no_endpoint,
            "upstream " + std::string(upstream_name) + " has no endpoint " + at.to_string()};
  return {};
}

server::server(config cfg) : impl_(std::make_unique<impl>(*this, std::move(cfg))) {}

server::~server() {
  shutdown(true);
  wait();
}

void server::on_upstreams(upstreams_hook hook) {
  std::lock_guard lock(impl_->mutex);
  impl_->on_upstreams = std::move(hook);
}

void server::control_loop(asio::io_context& io) {
  impl_->control = &io;
}

void server::on_stopped(std::function<void()> hook) {
  std::lock_guard lock(impl_->mutex);
  impl_->on_stopped = std::move(hook);
}

void server::open() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (m.gen) return;
  // splice(2) into a socket whose peer is gone raises SIGPIPE (splice takes no MSG_NOSIGNAL);
  // left at its default, one closing client would kill the whole proxy.
  std::signal(SIGPIPE, SIG_IGN);
  setup_logging(m.initial.log);
  const unsigned n = m.initial.effective_threads();
  for (unsigned i = 0; i < n; ++i)
    m.workers.push_back(std::make_unique<worker>(m.initial.relay, i));
  // systemd names each socket for its listener: one no listener has is a mistake in a unit file.
  for (const auto& s : m.inherited) {
    bool named = s.bind.has_value();
    for (const auto& l : m.initial.listeners) named = named || l.name == s.name;
    if (!named)
      throw std::runtime_error("socket activation: systemd passed a socket named '" + s.name +
                               "' (FileDescriptorName=), and no listener has that name");
  }
  m.declared = m.initial;
  built_generation built = build_generation(with_resolved_names(std::move(m.initial), m.resolved),
                                            nullptr, m.worker_ios(), &m.inherited);
  for (const auto& s : m.inherited)
    if (!s.fds.empty())
      main_log().info("take-over: listener {} on {} is not in this config: its sockets close",
                      s.name, s.bind ? s.bind->to_string() : "?");
  m.inherited.clear();
  const generation& g = *built.gen;
  for (const auto& l : g.listeners)
    main_log().info(
        "listener {} on {} -> {} ({} threads, engine {}, pipe_size {}, "
        "buffer_size {})",
        l.config->name, l.bound.to_string(), l.config->destination(), n,
        to_string(g.cfg.relay.engine), g.cfg.relay.pipe_size, g.cfg.relay.buffer_size);
  m.unstarted = std::move(built.plans);
  m.commit(std::move(built.gen));
}

void server::resolve_names_first(std::chrono::milliseconds deadline) {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (m.gen) return;  // opened already
  const auto end = std::chrono::steady_clock::now() + deadline;
  const std::vector<dns_name> names = names_in(m.initial);
  if (!names.empty()) main_log().info("dns: resolving {} name(s) before start-up", names.size());
  for (const auto& name : names) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) break;
    const dns_answer a = resolver::resolve_once(name, left);
    if (a.result == dns_result::ok) m.resolved.emplace_back(name, a.addresses);
    main_log().info("dns: {}: {} address(es) before start-up", name.host, a.addresses.size());
  }
}

void server::start() {
  open();
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (!m.threads.empty() || m.joined) return;
  for (std::size_t i = 0; i < m.workers.size(); ++i)
    m.workers[i]->adopt(m.gen, std::move(m.unstarted[i]));
  m.unstarted.clear();
  m.running = m.workers.size();
  for (auto& w : m.workers) {
    m.threads.emplace_back([&m, w = w.get()] {
      for (;;) {
        try {
          w->io.run();
          break;
        } catch (const std::exception& e) {
          main_log().error("worker {}: {}", w->index, e.what());  // a bug; keep serving
        }
      }
      if (--m.running == 0 && m.on_stopped) m.on_stopped();
    });
  }
  m.watch_names();  // names are resolved from now on, in the background: start-up never waits
}

reload_result server::reload(config next) {
  reload_result r = impl_->apply_reload(std::move(next));
  (r.applied ? impl_->reloads : impl_->reloads_refused).fetch_add(1, std::memory_order_relaxed);
  return r;
}

reload_result server::impl::apply_reload(config next) {
  std::lock_guard lock(mutex);
  if (!gen || threads.empty()) return reload_result::refused("the server is not running");
  // A draining worker would hold new listeners open without serving them.
  if (shutting_down) return reload_result::refused("the server is shutting down");
  keep_restart_only_settings(next, gen->cfg);
  const std::string changed = changes_between(declared, next);
  built_generation built;
  try {
    built = build_generation(with_resolved_names(next, resolved), gen.get(), worker_ios());
  } catch (const std::exception& e) {
    return reload_result::refused(e.what());
  }
  declared = std::move(next);
  const std::shared_ptr<const generation> before = gen;
  const std::shared_ptr<const generation> after = built.gen;
  hand_over(std::move(built));
  // Removed listeners: no new client finds their socket files.
  for (const auto& old : before->listeners) {
    bool kept = false;
    for (const auto& l : after->listeners) kept = kept || l.id == old.id;
    if (!kept && !old.inherited) remove_socket_file(old.bound);
  }
  try {
    setup_logging(after->cfg.log);
  } catch (const std::exception& e) {  // too late to refuse: the rest is applied already
    main_log().error("reload: {}; the access log stays as it was", e.what());
  }
  commit(after);
  main_log().info("reload: changed: {}", changed);
  return reload_result::done();
}

void server::impl::hand_over(built_generation built) {
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t adopted = 0;
  for (std::size_t i = 0; i < workers.size(); ++i)
    asio::post(workers[i]->io,
               [&, w = workers[i].get(), g = built.gen,
                p = std::make_shared<std::vector<listener_plan>>(std::move(built.plans[i]))] {
                 w->adopt(g, std::move(*p));
                 std::lock_guard done_lock(done_mutex);
                 ++adopted;
                 done_cv.notify_all();
               });
  std::unique_lock done_lock(done_mutex);
  // Workers run until shutdown, which waits for the server's mutex: they answer.
  done_cv.wait(done_lock, [&] { return adopted == workers.size(); });
}

std::vector<address> server::listening() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<address> out;
  if (impl_->gen)
    for (const auto& l : impl_->gen->listeners) out.push_back(l.bound);
  return out;
}

void server::shutdown(bool now) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
  }
  // workers is fixed once opened, and post() is thread-safe: no lock needed.
  for (auto& w : impl_->workers) asio::post(w->io, [w = w.get(), now] { w->shutdown(now); });
}

void server::wait() {
  auto& m = *impl_;
  std::lock_guard join_lock(m.join_mutex);
  if (m.joined) return;
  for (auto& t : m.threads) t.join();
  std::unique_ptr<resolver> dns;
  {
    std::lock_guard lock(m.mutex);
    dns = std::move(m.dns);
  }
  dns.reset();  // outside the lock: a call of apply_resolution() under way may be waiting for it
  std::lock_guard lock(m.mutex);
  m.unstarted.clear();  // an open() never started: its sockets close
  // Handed over: the socket files are the new process's now.
  if (m.gen && !m.handed_over)
    for (const auto& l : m.gen->listeners)
      if (!l.inherited) remove_socket_file(l.bound);
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
                                 u->healthy(i), u->usable(i, now), u->active(i), c.connections,
                                 c.connect_failures, c.bytes_up, c.bytes_down});
    }
  std::lock_guard lock(impl_->mutex);
  if (impl_->dns) total.dns = impl_->dns->stats();
  return total;
}

reload_result server::reload_from_file() {
  std::string source;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->gen) return reload_result::refused("the server is not running");
    source = impl_->gen->cfg.source;
  }
  main_log().info("reload: reading {}", source);
  reload_result r;
  try {
    r = reload(load_config_file(source));
  } catch (const config_error& e) {
    for (const auto& line : e.errors()) main_log().error("reload: {}", line);
    r = reload_result::refused("the config has " + std::to_string(e.errors().size()) + " error(s)");
    impl_->reloads_refused.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    r = reload_result::refused(e.what());
    impl_->reloads_refused.fetch_add(1, std::memory_order_relaxed);
  }
  if (!r.applied) {
    main_log().error("reload refused, the running config stays: {}", r.error);
    return r;
  }
  main_log().info("reload: done; new connections use the new config");
  return r;
}

void server::inherit(std::vector<inherited_listener> sockets) {
  std::lock_guard lock(impl_->mutex);
  for (auto& s : sockets) impl_->inherited.push_back(std::move(s));
}

std::vector<inherited_listener> server::share_listeners() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);  // no reload changes the listeners meanwhile
  if (!m.gen || m.threads.empty() || m.shutting_down)
    throw std::runtime_error("the server is not running");
  std::vector<inherited_listener> out;
  for (const auto& l : m.gen->listeners) out.push_back({l.config->name, l.config->bind, {}});
  // Each worker dups its own sockets, on its own thread.
  std::vector<std::vector<std::pair<std::uint64_t, unique_fd>>> got(m.workers.size());
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t done = 0;
  int failed = 0;
  for (std::size_t i = 0; i < m.workers.size(); ++i)
    asio::post(m.workers[i]->io, [&, i, w = m.workers[i].get()] {
      int error = 0;
      for (auto& l : w->listeners) {
        if (!l.acceptor.is_open()) continue;  // a reload removed it: it is closing
        const int fd = ::fcntl(l.acceptor.native_handle(), F_DUPFD_CLOEXEC, 0);
        if (fd < 0) error = errno;  // EMFILE: a socket left out would strand its queue
        got[i].emplace_back(l.id, unique_fd(fd));
      }
      std::lock_guard done_lock(done_mutex);
      if (error) failed = error;
      ++done;
      done_cv.notify_all();
    });
  std::unique_lock done_lock(done_mutex);
  // Workers run until shutdown, which waits for the server's mutex: they answer.
  done_cv.wait(done_lock, [&] { return done == m.workers.size(); });
  if (failed)
    throw std::system_error(failed, std::generic_category(), "cannot share a listening socket");
  for (auto& per_worker : got)
    for (auto& [id, fd] : per_worker)
      for (std::size_t k = 0; k < m.gen->listeners.size(); ++k) {
        if (m.gen->listeners[k].id != id) continue;
        // A Unix listener's workers hold dups of one socket: one is enough.
        if (!(m.gen->listeners[k].bound.local && !out[k].fds.empty()))
          out[k].fds.push_back(std::move(fd));
      }
  return out;
}

void server::hand_over() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
    impl_->handed_over = true;
  }
  for (auto& w : impl_->workers)
    asio::post(w->io, [w = w.get()] {
      w->handed_over = true;
      w->shutdown(false);
    });
}

bool server::draining() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->shutting_down;
}

control_api& server::control() {
  return *impl_;
}

}  // namespace zcproxy
