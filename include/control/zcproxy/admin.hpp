// The admin listener (config `admin:`): an HTTP/1.1 server on a thread of its own, built on
// Boost.Beast. What it serves (GET /metrics, /stats, /stats.json, /healthz, /upstreams; POST
// /reload when `admin.reload` is true, POST to an endpoint with the token) is the route table of
// admin_handlers.cpp (admin_routes.hpp). It only reads the proxy's counters
// (control_api::snapshot) and never touches a connection, so a slow scraper cannot stall a relay.
#pragma once

#include <memory>
#include <string>

#include "zcproxy/config.hpp"

namespace zcproxy {

class control_api;

// What an admin listener with `cfg` serves ("/stats, /stats.json, ..."), from its route table:
// its start-up line and `zcproxy --check` print this one list.
std::string admin_paths(const admin_config& cfg);

class admin_server {
 public:
  // Binds `cfg.bind` (throws std::runtime_error when it cannot) and starts serving. `api` must
  // outlive it.
  admin_server(control_api& api, const admin_config& cfg);
  ~admin_server();  // stops and joins its thread
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  address bound() const;  // with the port resolved

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zcproxy
