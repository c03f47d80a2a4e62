#include "health_checks.hpp"

#include <boost/asio/post.hpp>

namespace zcproxy {
namespace asio = boost::asio;

health_checks::health_checks() : work_(io_.get_executor()) {}

health_checks::~health_checks() {
  stop();
}

void health_checks::follow(std::vector<std::shared_ptr<upstream>> upstreams) {
  asio::post(io_, [this, upstreams = std::move(upstreams)] {
    std::map<const upstream*, std::unique_ptr<health_checker>> kept;
    for (const auto& u : upstreams) {
      auto it = checkers_.find(u.get());
      if (it != checkers_.end()) {
        kept.emplace(u.get(), std::move(it->second));
      } else {
        auto c = std::make_unique<health_checker>(io_, u);
        c->start();
        kept.emplace(u.get(), std::move(c));
      }
    }
    checkers_.swap(kept);  // the ones left in `kept` stop as it goes
  });
}

void health_checks::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { io_.run(); });
}

void health_checks::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    checkers_.clear();  // stops the checks, on their own thread
    work_.reset();
  });
  thread_.join();
}

}  // namespace zcproxy
