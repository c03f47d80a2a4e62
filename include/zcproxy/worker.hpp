// One worker thread's world: its io_context, its acceptors (one per listener, SO_REUSEPORT), its
// relay resources and the sessions it runs. Touched only from its own thread once started, except
// through post(). Nothing on the data path is shared between workers.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <list>
#include <vector>

#include "zcproxy/relay.hpp"

namespace zcproxy {

class upstream;

// A session as the worker sees it: something to stop when the server shuts down.
struct session_handle {
  virtual void stop() = 0;

 protected:
  ~session_handle() = default;
};

struct bound_listener {
  const listener_config* config;
  upstream* target;
  tcp::acceptor acceptor;
  boost::asio::steady_timer backoff;  // between accept retries when out of fds
};

struct worker {
  worker(const config& cfg, unsigned index);

  const config& cfg;
  const unsigned index;
  boost::asio::io_context io{1};
  relay_resources relay;
  std::vector<bound_listener> listeners;
  std::list<session_handle*> sessions;
  boost::asio::steady_timer drain_timer{io};
  bool draining = false;
  // Read by other threads (server::snapshot), written by this one.
  std::atomic<std::size_t> session_count{0};
  std::atomic<std::uint64_t> bytes_spliced{0};  // by the sessions that have ended
  std::atomic<std::uint64_t> bytes_copied{0};

  // Start an accept loop on every bound listener (call on the worker's thread, before run()).
  void start_accepting();
  // Stop accepting; close the sessions at once (now) or after drain_timeout.
  void shutdown(bool now);
  // Called by a session as it starts and as it ends.
  std::list<session_handle*>::iterator session_started(session_handle* s);
  void session_ended(std::list<session_handle*>::iterator it);
};

}  // namespace zcproxy
