// Binary upgrades that refuse no connection: a new process takes the listening sockets of the
// running one over a Unix socket (SOCK_SEQPACKET, the fds as SCM_RIGHTS), as HAProxy's
// `-x` with `expose-fd listeners` does. The exchange, new process first:
//   "takeover"  ->  one "socket BIND NAME" per socket, its fd attached; then "end PID"
//                   (or "error WHAT": nothing was handed over)
//   "go"        ->  "stopped": the old process accepts no more, and drains
// The new process says "go" only once it accepts on the sockets itself (then binds its admin
// listener, which the old one has closed by "stopped"). Until then nothing
// changes in the old one: a new process that fails or goes away leaves it serving as before.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "zcproxy/inherited.hpp"
#include "zcproxy/server.hpp"

namespace zcproxy {

// The old process's side: the socket at `path`, served on the control loop. Owns the socket; on
// the control loop's thread only (or once it has stopped).
class upgrade_server {
 public:
  // Binds the socket under a temporary name (mode 0600: its owner and root may connect). Unless
  // `replace`, a live socket at `path` (another zcproxy serves it) is an error. Throws
  // std::runtime_error naming the path. `handed_over` runs (on the loop) once the server has
  // handed its sockets over and before the new process hears so: what else it must let go of.
  upgrade_server(boost::asio::io_context& io, server& srv, std::string path, bool replace,
                 std::function<void()> handed_over);
  ~upgrade_server();  // stops answering; removes the socket file unless it was handed over
  upgrade_server(const upgrade_server&) = delete;
  upgrade_server& operator=(const upgrade_server&) = delete;
  // Put the socket at its path (replacing what is there) and start answering.
  void publish();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// The new process's side. Owns the connection to the old process: going away before finish()
// (a failed start) leaves the old process serving as before.
class takeover_client {
 public:
  // Asks the process serving `path` for its sockets. Throws std::runtime_error saying why none
  // came (nothing serves the path, it refused, it timed out).
  explicit takeover_client(const std::string& path);
  ~takeover_client();
  takeover_client(const takeover_client&) = delete;
  takeover_client& operator=(const takeover_client&) = delete;
  // What was received (once): for server::inherit().
  std::vector<inherited_listener> take();
  // This process accepts now: tell the old one to stop, and wait (up to 10 s) for its answer.
  // Logs the outcome; a missing answer is a warning (the sockets are this process's already).
  void finish();

 private:
  std::string path_;
  unique_fd conn_;
  pid_t old_pid_ = 0;
  std::vector<inherited_listener> sockets_;
};

}  // namespace zcproxy
