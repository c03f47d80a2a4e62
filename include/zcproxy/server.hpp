// The server: one worker thread per configured thread, each with its own io_context, acceptors
// (SO_REUSEPORT) and relay resources. This header exposes no Asio type, so code that only drives
// a server (main, tests) does not compile Asio.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zcproxy/config.hpp"
#include "zcproxy/metrics.hpp"

namespace zcproxy {

class server {
 public:
  explicit server(config cfg);
  ~server();  // shuts down at once if still running, and joins the threads
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Bind every listener on every worker and start the threads. Throws std::runtime_error naming
  // the listener and address when one cannot be bound, or the access file when it cannot be
  // opened; nothing is left running then.
  void start();
  // Where each listener listens, in config order (a port of 0 in the config is resolved).
  std::vector<address> listening() const;
  // Stop accepting; close open connections at once (now) or once drain_timeout has passed.
  // Thread-safe; may be called more than once (a later `now` cuts a drain short).
  void shutdown(bool now = false);
  // Block until every worker has finished.
  void wait();
  // Apply `next` to new connections: listeners whose address is unchanged keep their sockets
  // (nothing queued or accepted is dropped) and take the new settings, new ones open, removed
  // ones stop accepting; upstreams take their new endpoints and policies. Open connections keep
  // their endpoint and settings to the end. Threads and relay settings need a restart (kept,
  // with a warning). Thread-safe. Returns "" when applied, else why not: nothing changed then.
  std::string reload(config next);
  // reload() with the config file the running config came from; logs the outcome (each config
  // error, as --check prints them). Returns "" when applied, else why not.
  std::string reload_from_file();
  // Draining or shut down: what /healthz reports.
  bool draining() const;
  // Where the admin listener listens (port resolved); nullopt when there is none.
  std::optional<address> admin_address() const;
  // start(), then serve until SIGINT/SIGTERM: the first drains, a second closes at once. SIGHUP
  // reloads the config file; SIGUSR1 reopens the access file. Returns the process exit code.
  int run_until_signalled();

  // The counters of the current config's listeners and upstream endpoints (see metrics.hpp),
  // plus the engines' totals over every connection that has ended.
  struct stats : proxy_stats {
    std::uint64_t bytes_spliced = 0;  // moved by splice, by connections that have closed
    std::uint64_t bytes_copied = 0;   // moved by copy, likewise
  };
  // Summed over workers; callable from any thread, at any time after start().
  stats snapshot();

 private:
  std::string apply_reload(config next);  // reload() without the counting

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zcproxy
