// The endpoints' DNS names as the running server follows them: the resolver it owns (from the
// first name once the workers run, to wait()), its results applied as new generations, and the
// names resolved before start-up for a take-over. The resolving itself is the resolver's
// (upstream/resolver.cpp).
#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "generation.hpp"
#include "server_impl.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/resolver.hpp"
#include "zcproxy/server.hpp"

namespace zcproxy {

void server::impl::watch_names() {
  const std::vector<dns_name> names = names_in(declared);
  std::erase_if(resolved, [&](const auto& r) {
    return std::find(names.begin(), names.end(), r.first) == names.end();
  });
  if (!dns && control && !names.empty() && !threads.empty())
    dns = std::make_unique<resolver>(
        *control, [this](const dns_name& name, const std::vector<address>& addresses) {
          apply_resolution(name, addresses);
        });
  if (dns) dns->watch(names);
}

void server::impl::apply_resolution(const dns_name& name, const std::vector<address>& addresses) {
  std::lock_guard lock(mutex);
  // Not before the workers run, nor once they stop (a hand-over would wait for them forever).
  if (!gen || threads.empty() || shutting_down) return;
  auto known = std::find_if(resolved.begin(), resolved.end(),
                            [&](const auto& r) { return r.first == name; });
  if (known == resolved.end())
    resolved.emplace_back(name, addresses);
  else
    known->second = addresses;
  try {
    built_generation built =
        build_generation(with_resolved_names(declared, resolved), gen.get(), worker_ios());
    const std::shared_ptr<const generation> after = built.gen;
    hand_over(std::move(built));
    commit(after);
  } catch (const std::exception& e) {  // every listener is kept: nothing to bind, so not expected
    main_log().error("dns: {}: the new addresses are not applied: {}", name.host, e.what());
  }
}

void server::impl::stop_resolver() {
  std::unique_ptr<resolver> ending;
  {
    std::lock_guard lock(mutex);
    ending = std::move(dns);
  }
  ending.reset();  // outside the lock: a call of apply_resolution() under way may be waiting for it
}

void server::resolve_names_first(std::chrono::milliseconds deadline) {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (m.gen) return;  // opened already
  const auto end = std::chrono::steady_clock::now() + deadline;
  const std::vector<dns_name> names = names_in(m.initial);
  if (!names.empty()) main_log().info("dns: resolving {} name(s) before start-up", names.size());
  for (const auto& name : names) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) break;
    const dns_answer a = resolver::resolve_once(name, left);
    if (a.result == dns_result::ok) m.resolved.emplace_back(name, a.addresses);
    main_log().info("dns: {}: {} address(es) before start-up", name.host, a.addresses.size());
  }
}

}  // namespace zcproxy
