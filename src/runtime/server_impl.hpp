// The server's private state (server::impl), shared by the files that implement the server, one
// idea each: server.cpp (open, start, reload, shutdown), names.cpp (DNS results applied, the
// resolver), endpoint_updates.cpp (the admin's endpoint changes), snapshot.cpp (the stats),
// handover.cpp (the server's side of a take-over). `mutex` guards what its comment says; workers
// is fixed once opened.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "generation.hpp"
#include "worker.hpp"
#include "zcproxy/resolver.hpp"
#include "zcproxy/server.hpp"

namespace zcproxy {

struct server::impl final : control_api {
  impl(server& s, config c) : self(s), initial(std::move(c)) {}

  server& self;
  config initial;           // until open()
  config declared;          // the config as written (names unresolved); gen->cfg has them resolved
  resolved_names resolved;  // what the names among its endpoints resolve to now
  boost::asio::io_context* control = nullptr;  // the control loop: the resolver runs on it
  std::unique_ptr<resolver> dns;               // from start() to wait(); calls apply_resolution()
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

  std::vector<boost::asio::io_context*> worker_ios();

  // `g` takes over (under the lock).
  void commit(std::shared_ptr<const generation> g);

  // Keep the names of `declared` resolved, and what they resolve to; forget the others. The
  // resolver starts with the first name, once the workers run. (names.cpp)
  void watch_names();
  // A name resolved to new addresses: the generation takes them (a reload of the same config).
  // (names.cpp)
  void apply_resolution(const dns_name& name, const std::vector<address>& addresses);
  // The resolver ends (wait(), once the workers have): its thread is joined outside the lock.
  // (names.cpp)
  void stop_resolver();

  reload_result apply_reload(config next);
  // Hand `built` to every worker and wait until each has taken it over (and closed what it
  // drops), so that the next reload finds removed listeners' addresses free again.
  void hand_over(built_generation built);

  proxy_stats snapshot() override { return self.snapshot(); }
  reload_result reload_from_file() override { return self.reload_from_file(); }
  bool draining() const override { return self.draining(); }
  // (endpoint_updates.cpp)
  endpoint_update_result update_endpoint(std::string_view upstream_name, const address& at,
                                         const endpoint_update& u) override;
};

}  // namespace zcproxy
