// The config's vocabulary beyond the structs themselves (its enums' names are in config.hpp,
// beside the enums): the timeouts a connection runs with, and small queries the rest of the proxy
// asks of a loaded config.
#include "zcproxy/config.hpp"

#include <algorithm>
#include <thread>

namespace zcproxy {

std::string to_string(const endpoint_config& e) {
  return e.host.empty() ? e.at.to_string() : e.host + ":" + std::to_string(e.at.port);
}

timeouts timeouts_for(const listener_config& l, const upstream_config& u) {
  timeouts t;
  // The listener's value, else the upstream's, else the default.
  auto pick = [](const auto& a, const auto& b, auto default_value) {
    return a ? *a : b ? *b : default_value;
  };
  t.connect = pick(l.timeouts.connect, u.timeouts.connect, t.connect);
  t.idle = pick(l.timeouts.idle, u.timeouts.idle, t.idle);
  t.max_duration = pick(l.timeouts.max_duration, u.timeouts.max_duration, t.max_duration);
  return t;
}

std::string listener_config::destination() const {
  if (!upstream.empty()) return "upstream " + upstream;
  std::string out = "routes ";
  for (std::size_t i = 0; i < routes.patterns.size(); ++i)
    out += (i ? ", " : "") + routes.patterns[i] + " -> " + routes.upstreams[i];
  if (!routes.default_route.empty())
    out +=
        (routes.patterns.empty() ? "" : ", ") + std::string("default -> ") + routes.default_route;
  return out;
}

const upstream_config* config::find_upstream(std::string_view name) const {
  for (const auto& u : upstreams)
    if (u.name == name) return &u;
  return nullptr;
}

unsigned config::effective_threads() const {
  if (threads != 0) return threads;
  // hardware_concurrency() may return 0 when the count is unknown.
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string changes_between(const config& before, const config& after) {
  auto diff = [](const auto& was, const auto& now) {
    std::string out;
    auto find = [](const auto& list, const std::string& name) {
      for (const auto& x : list)
        if (x.name == name) return &x;
      return static_cast<decltype(&list.front())>(nullptr);
    };
    for (const auto& x : now) {
      const auto* old = find(was, x.name);
      if (!old)
        out += " +" + x.name;
      else if (!(*old == x))
        out += " ~" + x.name;
    }
    for (const auto& x : was)
      if (!find(now, x.name)) out += " -" + x.name;
    return out;
  };
  std::string out;
  if (auto l = diff(before.listeners, after.listeners); !l.empty()) out += "listeners" + l;
  if (auto u = diff(before.upstreams, after.upstreams); !u.empty())
    out += (out.empty() ? "" : "; ") + std::string("upstreams") + u;
  if (!(before.log == after.log) || before.drain_timeout != after.drain_timeout ||
      !(before.resolve == after.resolve))
    out += (out.empty() ? "" : "; ") + std::string("log, drain_timeout or resolve");
  return out.empty() ? "nothing" : out;
}

}  // namespace zcproxy
