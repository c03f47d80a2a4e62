// The admin listener (config `admin:`): an HTTP/1.1 server on the control loop, built on
// Boost.Beast. What it serves (GET /metrics, /stats, /stats.json, /healthz, /upstreams; POST
// /reload when `admin.reload` is true, POST to an endpoint with the token) is the route table of
// admin_handlers.cpp (admin_routes.hpp). It only reads the proxy's counters
// (control_api::snapshot) and never touches a connection, so a slow scraper cannot stall a relay.
#pragma once

#include <memory>
#include <string>

#include "zcproxy/config.hpp"

namespace boost::asio {
class io_context;
}

namespace zcproxy {

class control_api;

// What an admin listener with `cfg` serves ("/stats, /stats.json, ..."), from its route table:
// its start-up line and `zcproxy --check` print this one list.
std::string admin_paths(const admin_config& cfg);

class admin_server {
 public:
  // Binds `cfg.bind` (throws std::runtime_error when it cannot) and serves on `io` (the control
  // loop). `api` must outlive the loop's run.
  admin_server(boost::asio::io_context& io, control_api& api, const admin_config& cfg);
  // Closes the listener and every open connection. On the control loop's thread, or once the
  // loop has stopped: what is left of the coroutines ends as the loop runs them, or goes with it.
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  address bound() const;  // with the port resolved

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace zcproxy
