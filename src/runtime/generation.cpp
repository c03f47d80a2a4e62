#include "generation.hpp"

#include <algorithm>

#include "listener.hpp"
#include "worker.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy {

namespace {

// An unchanged upstream is carried over as it is; a changed one starts afresh from the previous
// one's endpoint health.
std::vector<std::shared_ptr<upstream>> carry_upstreams(const config& next, unsigned workers,
                                                       const generation* previous) {
  std::vector<std::shared_ptr<upstream>> out;
  for (const auto& uc : next.upstreams) {
    std::shared_ptr<upstream> before;
    if (previous)
      for (const auto& u : previous->upstreams)
        if (u->config().name == uc.name) before = u;
    if (before && before->config() == uc)
      out.push_back(before);
    else
      out.push_back(std::make_shared<upstream>(uc, workers, before.get()));
  }
  return out;
}

// The listener of `previous` that `lc` keeps: the same address, preferring the same name (two
// listeners on port 0 share an address). Each one is kept at most once.
const listener_runtime* kept_listener(const listener_config& lc, const generation* previous,
                                      std::vector<bool>& taken) {
  if (!previous) return nullptr;
  const auto& old = previous->listeners;
  std::optional<std::size_t> found;
  for (std::size_t k = 0; k < old.size() && !found; ++k)
    if (!taken[k] && old[k].config->bind == lc.bind && old[k].config->name == lc.name) found = k;
  for (std::size_t k = 0; k < old.size() && !found; ++k)
    if (!taken[k] && old[k].config->bind == lc.bind) found = k;
  if (!found) return nullptr;
  taken[*found] = true;
  return &old[*found];
}

}  // namespace

config with_resolved_names(config declared, const resolved_names& names) {
  for (auto& u : declared.upstreams) {
    std::vector<endpoint_config> out;
    for (const auto& e : u.endpoints) {
      auto add = [&out](endpoint_config one) {
        // A name may resolve to an address also given as such, or shared with another name: one
        // endpoint per address.
        if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return o.at == one.at; }))
          out.push_back(std::move(one));
      };
      if (e.host.empty()) {
        add(e);
        continue;
      }
      const dns_name n{e.host, u.resolve};
      for (const auto& [name, addresses] : names) {
        if (!(name == n)) continue;
        for (const auto& a : addresses) {
          endpoint_config one = e;
          one.at.ip = a.ip;
          one.at.v6 = a.v6;
          add(std::move(one));
        }
      }
    }
    u.endpoints = std::move(out);
  }
  return declared;
}

upstream* generation::find(std::string_view name) const {
  for (const auto& u : upstreams)
    if (u->config().name == name) return u.get();
  return nullptr;
}

built_generation build_generation(config cfg, const generation* previous,
                                  const std::vector<boost::asio::io_context*>& workers,
                                  std::vector<inherited_listener>* inherited) {
  auto g = std::make_shared<generation>(std::move(cfg));
  g->upstreams = carry_upstreams(g->cfg, static_cast<unsigned>(workers.size()), previous);
  g->next_listener_id = previous ? previous->next_listener_id : 1;
  built_generation out{nullptr, std::vector<std::vector<listener_plan>>(workers.size())};
  std::vector<bool> taken(previous ? previous->listeners.size() : 0, false);
  for (const auto& lc : g->cfg.listeners) {
    listener_runtime l{0, &lc, lc.bind, acl(lc.allow, lc.deny), nullptr, g->find(lc.upstream)};
    if (const listener_runtime* old = kept_listener(lc, previous, taken)) {
      l.id = old->id;
      l.bound = old->bound;
      l.state = old->state;  // its counts carry on
      l.inherited = old->inherited;
      for (auto& p : out.plans) p.push_back({l.id, {}});
    } else {
      std::vector<std::vector<stream_acceptor>> acceptors(workers.size());
      std::vector<unique_fd> given;
      if (inherited) given = take_sockets(*inherited, lc);
      l.inherited = !given.empty();
      try {
        if (l.inherited) {
          acceptors = adopt_listener(lc, std::move(given), workers, l.bound);
        } else {
          auto opened = open_listener(lc, workers, l.bound);
          for (std::size_t i = 0; i < workers.size(); ++i)
            acceptors[i].push_back(std::move(opened[i]));
        }
      } catch (...) {
        // The one roll-back: the acceptors opened so far close as `out` goes; the socket files
        // of those this process bound go now (an inherited one is still another's).
        for (std::size_t j = 0; j < g->listeners.size(); ++j)
          if (!out.plans.empty() && !out.plans.front()[j].acceptors.empty() &&
              !g->listeners[j].inherited)
            remove_socket_file(g->listeners[j].bound);
        throw;
      }
      l.id = g->next_listener_id++;
      l.state = std::make_shared<listener_state>(static_cast<unsigned>(workers.size()));
      for (std::size_t i = 0; i < workers.size(); ++i)
        out.plans[i].push_back({l.id, std::move(acceptors[i])});
    }
    g->listeners.push_back(std::move(l));
  }
  out.gen = std::move(g);
  return out;
}

}  // namespace zcproxy
