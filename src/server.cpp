#include "zcproxy/server.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "zcproxy/listener.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/upstream.hpp"
#include "zcproxy/worker.hpp"

namespace zcproxy {
namespace asio = boost::asio;

// --- worker -------------------------------------------------------------------------------

worker::worker(const config& c, unsigned i)
    : cfg(c),
      index(i),
      relay{c.relay.engine, make_pipe_pool(c.relay.pipe_size, c.relay.max_pipes),
            make_buffer_pool(c.relay.buffer_size)} {}

void worker::start_accepting() {
  for (auto& l : listeners) {
    asio::co_spawn(io, accept_loop(*this, l), [this, &l](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        main_log().error("listener {}: accepting stopped on thread {}: {}", l.config->name, index,
                         x.what());
      }
    });
  }
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
  if (now || cfg.drain_timeout.count() == 0) {
    drain_timer.cancel();
    stop_sessions();
  } else if (!sessions.empty()) {
    drain_timer.expires_after(cfg.drain_timeout);
    drain_timer.async_wait([stop_sessions](boost::system::error_code ec) {
      if (!ec) stop_sessions();
    });
  }
}

std::list<session_handle*>::iterator worker::session_started(session_handle* s) {
  auto it = sessions.insert(sessions.end(), s);
  session_count.store(sessions.size(), std::memory_order_relaxed);
  return it;
}

void worker::session_ended(std::list<session_handle*>::iterator it) {
  sessions.erase(it);
  session_count.store(sessions.size(), std::memory_order_relaxed);
  // The last session of a drain ends it early; then nothing keeps the io_context running.
  if (draining && sessions.empty()) drain_timer.cancel();
}

// --- server -------------------------------------------------------------------------------

struct server::impl {
  explicit impl(config c) : cfg(std::move(c)) {}

  config cfg;
  std::vector<std::unique_ptr<upstream>> upstreams;
  std::vector<std::unique_ptr<worker>> workers;
  std::vector<std::thread> threads;
  std::vector<address> listening;
  std::mutex join_mutex;  // serialises wait() callers
  bool joined = false;
  std::atomic<unsigned> running{0};
  std::atomic<asio::io_context*> signal_io{nullptr};  // set while run_until_signalled() runs
};

server::server(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

server::~server() {
  shutdown(true);
  wait();
}

void server::start() {
  auto& m = *impl_;
  // splice(2) into a socket whose peer is gone raises SIGPIPE (splice takes no MSG_NOSIGNAL);
  // left at its default, one closing client would kill the whole proxy.
  std::signal(SIGPIPE, SIG_IGN);
  setup_logging(m.cfg.log);

  for (const auto& u : m.cfg.upstreams) m.upstreams.push_back(std::make_unique<upstream>(u));
  auto find = [&](const std::string& name) -> upstream* {
    for (auto& u : m.upstreams)
      if (u->config().name == name) return u.get();
    throw std::logic_error("listener names unknown upstream " + name);  // config validated it
  };

  const unsigned n = m.cfg.effective_threads();
  m.listening.clear();
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<worker>(m.cfg, i);
    for (std::size_t j = 0; j < m.cfg.listeners.size(); ++j) {
      const auto& lc = m.cfg.listeners[j];
      // Port 0: the first worker lets the kernel pick, the others join that port.
      address at = i == 0 ? lc.bind : m.listening[j];
      try {
        // SO_REUSEPORT would let this bind share a port another process of this user already
        // listens on, splitting its traffic: make sure the address is free first.
        if (i == 0 && at.port != 0) ensure_address_free(at);
        w->listeners.push_back(
            {&lc, find(lc.upstream), open_acceptor(w->io, at), asio::steady_timer(w->io)});
      } catch (const boost::system::system_error& e) {
        throw std::runtime_error("listener " + lc.name + ": cannot listen on " + at.to_string() +
                                 ": " + e.code().message());
      }
      if (i == 0) {
        at.port = w->listeners.back().acceptor.local_endpoint().port();
        m.listening.push_back(at);
      }
    }
    m.workers.push_back(std::move(w));
  }

  for (std::size_t j = 0; j < m.cfg.listeners.size(); ++j) {
    const auto& lc = m.cfg.listeners[j];
    main_log().info(
        "listener {} on {} -> upstream {} ({} threads, engine {}, pipe_size {}, "
        "buffer_size {})",
        lc.name, m.listening[j].to_string(), lc.upstream, n, to_string(m.cfg.relay.engine),
        m.cfg.relay.pipe_size, m.cfg.relay.buffer_size);
  }

  m.running = n;
  for (auto& w : m.workers) {
    w->start_accepting();
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

std::vector<address> server::listening() const {
  return impl_->listening;
}

void server::shutdown(bool now) {
  // workers is fixed once started, and post() is thread-safe: no lock needed.
  for (auto& w : impl_->workers) asio::post(w->io, [w = w.get(), now] { w->shutdown(now); });
}

void server::wait() {
  std::lock_guard lock(impl_->join_mutex);
  if (impl_->joined) return;
  for (auto& t : impl_->threads) t.join();
  impl_->joined = true;
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
  return total;
}

int server::run_until_signalled() {
  asio::io_context io(1);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  impl_->signal_io = &io;
  start();
  int received = 0;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    const bool now = ++received > 1;
    main_log().info("signal {}: {}", sig,
                    now ? "closing open connections now"
                        : "draining (no new connections; open ones get up to drain_timeout)");
    shutdown(now);
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  if (impl_->running > 0) io.run();
  impl_->signal_io = nullptr;
  wait();
  main_log().info("stopped");
  return 0;
}

}  // namespace zcproxy
