// The server: one worker thread per configured thread, each with its own io_context, acceptors
// (SO_REUSEPORT) and relay resources. This header exposes no Asio type, so code that only drives
// a server (main, tests) does not compile Asio. Admin, health checks, privileges and signals are
// not its business: control_plane wires them around it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "zcproxy/config.hpp"
#include "zcproxy/control_api.hpp"
#include "zcproxy/inherited.hpp"

namespace boost::asio {
class io_context;
}

namespace zcproxy {

class upstream;

class server {
 public:
  explicit server(config cfg);
  ~server();  // shuts down at once if still running, and joins the threads
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Set up logging (the access file opens) and bind every listener on every worker; nothing is
  // accepted until start(). Throws std::runtime_error naming the listener and address when one
  // cannot be bound, or the access file when it cannot be opened; nothing is left open then.
  void open();
  // open() unless done, then start the threads: from now on connections are accepted.
  void start();
  // Where each listener listens, in config order (a port of 0 in the config is resolved).
  std::vector<address> listening() const;
  // Stop accepting; close open connections at once (now) or once drain_timeout has passed.
  // Thread-safe; may be called more than once (a later `now` cuts a drain short).
  void shutdown(bool now = false);
  // Block until every worker has finished, then remove the listeners' socket files. Also what
  // undoes an open() that is never started.
  void wait();
  // Apply `next` to new connections: listeners whose address is unchanged keep their sockets
  // (nothing queued or accepted is dropped) and take the new settings, new ones open, removed
  // ones stop accepting; upstreams take their new endpoints and policies. Open connections keep
  // their endpoint and settings to the end. Threads, relay, admin, user and core dump settings
  // need a restart (kept, with a warning). Thread-safe. When refused, nothing changed.
  reload_result reload(config next);
  // reload() with the config file the running config came from; logs the outcome (each config
  // error, as --check prints them).
  reload_result reload_from_file();
  // Before open(): listeners that these sockets are meant for (see take_sockets) accept on them
  // instead of binding. open() throws when systemd named a socket for no listener, or when one
  // is not a listening socket of its listener's kind.
  void inherit(std::vector<inherited_listener> sockets);
  // Before open(): resolve the config's DNS names now, within `deadline` in all, so the first
  // generation has their addresses (a take-over: the old process serves meanwhile, and the new
  // one must not answer `no_endpoint` while its names resolve). Names that do not resolve in
  // time are left to the background resolver, as at any start.
  void resolve_names_first(std::chrono::milliseconds deadline);
  // For a take-over: dups of every listener's sockets (all workers'; one of a Unix listener's),
  // in config order, with each listener's name and configured address. Throws
  // std::runtime_error when not running, std::system_error when a dup fails (none is returned).
  std::vector<inherited_listener> share_listeners();
  // Another process accepts on the sockets share_listeners() gave now: stop accepting (what was
  // accepted already is served), close this process's copies (the queues stay, with the other's
  // copies) and drain as shutdown() does; the socket files stay.
  void hand_over();
  // Draining or shut down: what /healthz reports.
  bool draining() const;

  // Called with the upstreams of each generation that takes over (at open(), then at each
  // applied reload), under the server's lock: it must not call back into the server. Set it
  // before open(). Health checks follow reloads through it.
  using upstreams_hook = std::function<void(std::vector<std::shared_ptr<upstream>>)>;
  void on_upstreams(upstreams_hook hook);
  // The control loop (control_plane's), on which DNS names are resolved and their new addresses
  // applied. Set it before start(); it must outlive the server's wait().
  void control_loop(boost::asio::io_context& io);
  // Called on the last worker's thread as it ends (after a shutdown). Set it before start().
  void on_stopped(std::function<void()> hook);

  // The counters of the current config's listeners and upstream endpoints (see metrics.hpp),
  // plus the engines' totals over every connection that has ended.
  struct stats : proxy_stats {
    std::uint64_t bytes_spliced = 0;  // moved by splice, by connections that have closed
    std::uint64_t bytes_copied = 0;   // moved by copy, likewise
  };
  // Summed over workers; callable from any thread, at any time after open().
  stats snapshot();

  // This server as the control plane sees it.
  control_api& control();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zcproxy
