// The admin's run-time changes to an endpoint (control_api::update_endpoint): its state and
// weight in the current generation's upstream, without a reload.
#include <mutex>
#include <string>
#include <string_view>

#include "generation.hpp"
#include "server_impl.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy {

// Under the server's lock, so a reload building on the current upstreams sees it whole.
endpoint_update_result server::impl::update_endpoint(std::string_view upstream_name,
                                                     const address& at, const endpoint_update& u) {
  using status = endpoint_update_result::status;
  if (u.weight && (*u.weight < 1 || *u.weight > 256))
    return {status::invalid, "weight " + std::to_string(*u.weight) + " is not in 1..256"};
  std::lock_guard lock(mutex);
  upstream* target = gen ? gen->find(upstream_name) : nullptr;
  if (!target) return {status::no_upstream, "no upstream " + std::string(upstream_name)};
  bool found = false;
  for (std::size_t i = 0; i < target->size(); ++i) {
    if (!(target->at(i) == at)) continue;
    found = true;
    if (u.weight) target->set_weight(i, *u.weight);
    if (u.mode) target->set_mode(i, *u.mode);
    main_log().info("admin: upstream {} endpoint {}: state {}, weight {}", upstream_name,
                    at.to_string(), to_string(target->mode(i)), target->weight(i));
  }
  if (!found)
    return {status::no_endpoint,
            "upstream " + std::string(upstream_name) + " has no endpoint " + at.to_string()};
  return {};
}

}  // namespace zcproxy
