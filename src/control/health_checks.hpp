// Every upstream's health checks (see health.hpp), on the control loop, following the generations
// the server builds: an upstream carried over by a reload keeps its checks, a new one gets its
// own, a gone one's stop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <vector>

#include "zcproxy/health.hpp"

namespace zcproxy {

class health_checks {
 public:
  explicit health_checks(boost::asio::io_context& io) : io_(io) {}
  ~health_checks() { stop(); }
  health_checks(const health_checks&) = delete;
  health_checks& operator=(const health_checks&) = delete;

  // Check `upstreams` from now on (those without health_check do nothing). Thread-safe: it is
  // taken up on the control loop.
  void follow(std::vector<std::shared_ptr<upstream>> upstreams);
  // Stop every check. On the control loop's thread, or once the loop has stopped. Idempotent.
  void stop() { checkers_.clear(); }

 private:
  boost::asio::io_context& io_;
  std::map<const upstream*, std::unique_ptr<health_checker>> checkers_;  // on the loop only
};

}  // namespace zcproxy
