// The process around a server: the admin listener, the health checks, dropping privileges and
// the signals. It wires them to the server (the data plane never sees any of them): admin talks
// to the server through control_api, health checks follow its reloads through on_upstreams().
// This header exposes no Asio type.
#pragma once

#include <memory>
#include <optional>

#include "zcproxy/config.hpp"
#include "zcproxy/server.hpp"

namespace zcproxy {

class control_plane {
 public:
  explicit control_plane(config cfg);
  ~control_plane();  // shuts down at once if still running, and waits
  control_plane(const control_plane&) = delete;
  control_plane& operator=(const control_plane&) = delete;

  // Before start(): ask the zcproxy serving the config's upgrade_socket for its listening
  // sockets (see takeover.hpp); start() then accepts on them, and once it does, tells that
  // process to stop accepting and drain. Throws std::runtime_error when none came (the running
  // process serves on).
  void take_over();
  // Bind every listener and the admin listener, then drop privileges (run_as), then start the
  // health checks and the workers: no connection is accepted before privileges are dropped.
  // Throws std::runtime_error saying what failed; nothing is left running or bound then.
  void start();
  // Wait for the server (see server::wait), then stop admin and the health checks.
  void wait();
  // start(), then serve until SIGINT/SIGTERM: the first drains, a second closes at once. SIGHUP
  // reloads the config file; SIGUSR1 reopens the access file. Returns the process exit code.
  int run_until_signalled();

  server& runtime();
  // Where the admin listener listens (port resolved); nullopt when there is none.
  std::optional<address> admin_address() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zcproxy
