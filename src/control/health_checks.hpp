// Every upstream's health checks (see health.hpp), on a thread of their own, following the
// generations the server builds: an upstream carried over by a reload keeps its checks, a new one
// gets its own, a gone one's stop.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "zcproxy/health.hpp"

namespace zcproxy {

class health_checks {
 public:
  health_checks();
  ~health_checks();  // stop()
  health_checks(const health_checks&) = delete;
  health_checks& operator=(const health_checks&) = delete;

  // Check `upstreams` from now on (those without health_check do nothing). Thread-safe; what is
  // asked before start() runs once the thread does.
  void follow(std::vector<std::shared_ptr<upstream>> upstreams);
  // Start the thread.
  void start();
  // Stop every check and join the thread. Idempotent.
  void stop();

 private:
  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::map<const upstream*, std::unique_ptr<health_checker>> checkers_;  // on the thread only
};

}  // namespace zcproxy
