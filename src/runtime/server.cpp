// The server itself: its workers and their threads, open, start, reload and shutdown. The rest of
// server::impl (server_impl.hpp) is in a file per idea: names.cpp, endpoint_updates.cpp,
// snapshot.cpp, handover.cpp.
#include "zcproxy/server.hpp"

#include <boost/asio/post.hpp>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "generation.hpp"
#include "listener.hpp"
#include "server_impl.hpp"
#include "worker.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/source.hpp"

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

std::vector<asio::io_context*> server::impl::worker_ios() {
  std::vector<asio::io_context*> out;
  for (auto& w : workers) out.push_back(&w->io);
  return out;
}

void server::impl::commit(std::shared_ptr<const generation> g) {
  gen = std::move(g);
  if (on_upstreams) on_upstreams(gen->upstreams);
  watch_names();
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
  // Before anything is bound: a source that cannot be had would reset every client later.
  if (auto problems = source_problems(m.initial.upstreams); !problems.empty())
    throw std::runtime_error(problems);
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
  // Asked as the process runs now (its privileges given up, if `user:` said so).
  if (auto problems = source_problems(next.upstreams); !problems.empty())
    return reload_result::refused(problems);
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
  m.stop_resolver();
  std::lock_guard lock(m.mutex);
  m.unstarted.clear();  // an open() never started: its sockets close
  // Handed over: the socket files are the new process's now.
  if (m.gen && !m.handed_over)
    for (const auto& l : m.gen->listeners)
      if (!l.inherited) remove_socket_file(l.bound);
  m.joined = true;
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

bool server::draining() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->shutting_down;
}

control_api& server::control() {
  return *impl_;
}

}  // namespace zcproxy
