#include "health_checks.hpp"

#include <boost/asio/post.hpp>

namespace zcproxy {
namespace asio = boost::asio;

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

}  // namespace zcproxy
