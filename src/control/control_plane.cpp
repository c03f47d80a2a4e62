#include "zcproxy/control_plane.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config_watch.hpp"
#include "health_checks.hpp"
#include "takeover.hpp"
#include "zcproxy/admin.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/privileges.hpp"
#include "zcproxy/source.hpp"

namespace zcproxy {
namespace asio = boost::asio;

struct control_plane::impl {
  explicit impl(config cfg)
      : admin_cfg(cfg.admin),
        run_as(cfg.run_as),
        core_dumps(cfg.core_dumps),
        keep_net_admin(needs_transparent(cfg.upstreams)),
        upgrade_path(cfg.upgrade_socket),
        watch_path(cfg.watch_config ? cfg.source : std::string()),
        loaded_digest(cfg.source_digest),
        srv(std::move(cfg)) {
    // Called under the server's lock; follow() only posts to the control loop.
    srv.on_upstreams(
        [this](std::vector<std::shared_ptr<upstream>> u) { health.follow(std::move(u)); });
    srv.control_loop(io);
  }

  // The control loop: admin, health checks, DNS, the take-over socket and signals, on one thread
  // (run_until_signalled's caller, or `thread` when start() is called alone). First, so that it
  // goes last: what is left of the components' coroutines goes with it.
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::thread thread;     // when start() was called without run_until_signalled()
  bool run_here = false;  // run_until_signalled() runs the loop on its caller's thread

  const admin_config admin_cfg;
  const std::optional<run_as_config> run_as;
  const bool core_dumps;
  const bool keep_net_admin;  // `source: client` binds the client's address (IP_TRANSPARENT)
  const std::string upgrade_path;
  const std::string watch_path;  // the config file, with watch_config; else empty
  const std::size_t loaded_digest;
  health_checks health{io};  // before srv: the server's hook posts to it
  server srv;
  mutable std::mutex mutex;  // guards admin (admin_address() may be called from any thread)
  std::unique_ptr<admin_server> admin;           // from start() to wait(); uses srv
  std::unique_ptr<takeover_client> taking_over;  // from take_over() to start()
  std::unique_ptr<upgrade_server> upgrade;       // from start() to wait(); uses srv

  void bind_admin() {
    auto a = std::make_unique<admin_server>(io, srv.control(), admin_cfg);
    std::lock_guard lock(mutex);
    admin = std::move(a);
  }

  void close_admin() {
    std::unique_ptr<admin_server> a;  // stopped outside the lock: admin_address() takes it
    {
      std::lock_guard lock(mutex);
      a = std::move(admin);
    }
  }

  // What must happen after every socket is bound and before any connection is accepted.
  void bind_admin_and_drop_privileges() {
    // Taking over: the old process holds the admin address until it stops accepting.
    if (admin_cfg.enabled && !taking_over) bind_admin();
    if (!upgrade_path.empty()) {
      // Bound before privileges go (its directory may be root's); replaces the old process's
      // socket only once this one has taken over. Handed over, the admin address goes first.
      upgrade = std::make_unique<upgrade_server>(io, srv, upgrade_path, taking_over != nullptr,
                                                 [this] { close_admin(); });
      if (!taking_over) upgrade->publish();
    }
    if (run_as) {
      // Every socket is bound and the access file open: what needed root is done.
      drop_privileges(*run_as, core_dumps, keep_net_admin);
      main_log().info("running as user {} (uid {}), group {}", run_as->user, run_as->uid,
                      run_as->group.empty() ? std::to_string(run_as->gid) : run_as->group);
    }
  }
};

control_plane::control_plane(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

control_plane::~control_plane() {
  impl_->srv.shutdown(true);
  wait();
}

void control_plane::start() {
  auto& m = *impl_;
  m.srv.open();
  try {
    m.bind_admin_and_drop_privileges();
  } catch (...) {  // nothing has been accepted yet: close what is bound, remove its socket files
    wait();
    throw;
  }
  m.srv.start();
  if (!m.run_here && !m.thread.joinable()) m.thread = std::thread([&m] { m.io.run(); });
  if (m.taking_over) {  // accepting now: the old process may stop
    m.taking_over->finish();
    m.taking_over.reset();
    // Too late to fail now: the old process has stopped accepting.
    try {
      if (m.admin_cfg.enabled) m.bind_admin();
    } catch (const std::exception& e) {
      main_log().error("{}; running without the admin listener", e.what());
    }
    try {
      if (m.upgrade) m.upgrade->publish();
    } catch (const std::exception& e) {
      main_log().error("{}; this process cannot be taken over", e.what());
    }
  }
}

void control_plane::take_over() {
  auto& m = *impl_;
  if (m.upgrade_path.empty())
    throw std::runtime_error("--takeover: the config names no upgrade_socket to ask");
  // The old process serves while the names resolve; this one serves them from its first
  // connection on.
  m.srv.resolve_names_first(std::chrono::seconds(5));
  m.taking_over = std::make_unique<takeover_client>(m.upgrade_path);
  m.srv.inherit(m.taking_over->take());
}

void control_plane::wait() {
  auto& m = *impl_;
  m.srv.wait();
  // The loop stops here, then what ran on it is closed: nothing runs on it meanwhile.
  m.io.stop();
  if (m.thread.joinable()) m.thread.join();
  m.taking_over.reset();  // a start that failed: the old process serves on
  m.upgrade.reset();
  m.close_admin();
  m.health.stop();
}

int control_plane::run_until_signalled() {
  auto& m = *impl_;
  auto& io = m.io;
  m.run_here = true;
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  // The workers have ended: so does the control loop (a stop before run() makes it return).
  m.srv.on_stopped([&io] { io.stop(); });
  start();
  // watch_config: a change on disk reloads as SIGHUP does, on this loop.
  std::optional<config_watch> watch;
  if (!m.watch_path.empty()) {
    try {
      watch.emplace(io, m.watch_path, m.loaded_digest,
                    [&m] { return m.srv.reload_from_file().applied; });
    } catch (const std::exception& e) {
      main_log().error("{}; the config is not watched (SIGHUP still reloads it)", e.what());
    }
  }
  int received = 0;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    signals.async_wait(on_signal);
    if (sig == SIGHUP) {
      m.srv.reload_from_file();
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
    m.srv.shutdown(now);
  };
  signals.async_wait(on_signal);
  io.run();
  wait();
  main_log().info("stopped");
  return 0;
}

server& control_plane::runtime() {
  return impl_->srv;
}

std::optional<address> control_plane::admin_address() const {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->admin) return std::nullopt;
  return impl_->admin->bound();
}

}  // namespace zcproxy
