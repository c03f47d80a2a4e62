// Active health checks of one upstream's endpoints: a TCP connect (and optionally a request and
// the prefix of the expected reply) every interval, each within a timeout; `fall` failures in a
// row mark an endpoint down, `rise` successes in a row up again, and each change is logged.
// Runs on the io_context it is given (health_checks' thread); start() and stop() are called
// on that thread. The checks hold the upstream (shared), so a reload that replaces it only has to
// stop them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "zcproxy/upstream.hpp"

namespace zcproxy {

class health_checker {
 public:
  health_checker(boost::asio::io_context& io, std::shared_ptr<upstream> target);
  ~health_checker();  // stops
  void start();
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;  // shared with the running checks, which outlive stop() briefly
};

}  // namespace zcproxy
