// A listener's routes: by TLS server name to upstreams. The pattern rules themselves (what a valid
// server-name pattern is, and its normal form) belong to sni.
#include <algorithm>

#include "checker.hpp"
#include "zcproxy/sni.hpp"

namespace zcproxy::detail {
namespace {

// A route's keys depend on each other ({default} stands alone; sni needs upstream), so they are
// gathered first and checked together.
struct route_keys_given {
  const entry* sni = nullptr;
  const entry* upstream = nullptr;
  const entry* default_route = nullptr;
};

const key_rule<route_keys_given> route_keys[] = {
    {"sni", [](auto&, auto& e, auto&, auto& given) { given.sni = &e; }},
    {"upstream", [](auto&, auto& e, auto&, auto& given) { given.upstream = &e; }},
    {"default", [](auto&, auto& e, auto&, auto& given) { given.default_route = &e; }},
};

// {default: UPSTREAM}
void check_default(checker& c, const entry& self, const entry& route, std::size_t keys_given,
                   const std::string& path, const config& cfg, sni_routes& out) {
  if (keys_given != 1) {
    c.fail(self, path, "expected {default: UPSTREAM} alone, without sni or upstream");
    return;
  }
  const auto default_path = child(path, "default");
  auto n = c.name(route, default_path);
  if (!n) return;
  if (!out.default_route.empty()) {
    c.fail(route, default_path, "expected at most one default route");
    return;
  }
  out.default_route = *n;
  c.upstream_name(route, default_path, *n, cfg);
}

// {sni: NAME, upstream: UPSTREAM}
void check_route(checker& c, const entry& pattern, const entry& target, const std::string& path,
                 const config& cfg, sni_routes& out) {
  const auto sni_path = child(path, "sni");
  auto p = c.scalar(pattern, sni_path, "a server name");
  auto n = c.name(target, child(path, "upstream"));
  if (!p || !n) return;
  auto normal = sni::normalize_pattern(*p);
  if (!normal) {
    c.fail(pattern, sni_path,
           "expected a server name (\"api.example.com\") or a wildcard (\"*.example.com\"), "
           "got " +
               quoted(*p));
    return;
  }
  if (std::find(out.patterns.begin(), out.patterns.end(), *normal) != out.patterns.end()) {
    c.fail(pattern, sni_path, "duplicate server name " + quoted(*p) + "; expected each name once");
    return;
  }
  c.upstream_name(target, child(path, "upstream"), *n, cfg);
  out.patterns.push_back(std::move(*normal));
  out.upstreams.push_back(*n);
}

}  // namespace

// routes: [{sni: "api.example.com", upstream: api}, {sni: "*.example.com", upstream: web},
//          {default: other}]
void check_routes(checker& c, const entry& e, const std::string& path, const config& cfg,
                  sni_routes& out) {
  constexpr std::string_view expected =
      "a non-empty sequence of {sni: NAME, upstream: UPSTREAM} and at most one "
      "{default: UPSTREAM}";
  if (!e.value.is_sequence() || e.value.size() == 0) {
    c.fail(e, path,
           "expected " + std::string(expected) + ", got " +
               (e.value.is_sequence() ? std::string("an empty sequence") : describe(e.value)));
    return;
  }
  const auto keys = key_names(route_keys);
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    entry self{"", e.key_node, e.value[i]};
    const auto item_path = element(path, i);
    if (!c.expect_map(self, item_path, "{sni: NAME, upstream: UPSTREAM} or {default: UPSTREAM}"))
      continue;
    auto items = c.entries(self.value, item_path, keys);
    route_keys_given given;
    parse_keys(c, items, item_path, route_keys, given);
    if (given.default_route) {
      check_default(c, self, *given.default_route, items.size(), item_path, cfg, out);
      continue;
    }
    c.require(items, self.value, item_path, "sni", "a server name such as \"api.example.com\"");
    c.require(items, self.value, item_path, "upstream", "the name of an entry in upstreams");
    if (given.sni && given.upstream)
      check_route(c, *given.sni, *given.upstream, item_path, cfg, out);
  }
}

}  // namespace zcproxy::detail
