// The listeners: section, a sequence of listeners, each checked against the upstreams and the
// listeners before it (names and bind addresses are unique).
#include <algorithm>
#include <charconv>
#include <map>

#include "checker.hpp"

namespace zcproxy::detail {
namespace {

// Where a bind address was given, for the duplicate-bind message.
struct bound {
  address at;
  std::string path;
  std::string name;
};

// What a listener's keys are checked into, and what they are checked against.
struct listener_scope {
  listener_config& listener;
  const config& cfg;
  const std::string& path;                    // "listeners[3]"
  std::map<std::string, std::string>& names;  // name -> path of the listener that has it
  const std::vector<bound>& binds;            // of the listeners before this one
  bool bind_ok = false;
};

void check_listener_name(checker& c, const entry& e, const std::string& path, listener_scope& s) {
  auto n = c.name(e, path);
  if (!n) return;
  auto [it, inserted] = s.names.emplace(*n, s.path);
  if (!inserted)
    c.fail(e, path,
           "duplicate listener name " + quoted(*n) + " (also used by " + it->second +
               "); expected unique names");
  s.listener.name = *n;
}

void check_bind(checker& c, const entry& e, const std::string& path, listener_scope& s) {
  auto a = c.addr(e, e.value, path, true);
  if (!a) return;
  // Port 0 asks the kernel for a fresh port each time, so it never collides.
  for (const auto& other : s.binds) {
    const address& o = other.at;
    bool same_port = a->port != 0 && o.port == a->port && o.v6 == a->v6 && !a->local && !o.local;
    bool unspecified = a->ip == "0.0.0.0" || a->ip == "::" || o.ip == "0.0.0.0" || o.ip == "::";
    bool same_path = a->local && o.local && a->path == o.path;
    if ((same_port && (o.ip == a->ip || unspecified)) || same_path) {
      c.fail(e, path,
             "address " + a->to_string() + " is already bound by listener " + quoted(other.name) +
                 " (" + other.path + ": " + o.to_string() +
                 "); expected a distinct address:port for each listener");
      break;
    }
  }
  s.listener.bind = *a;
  s.bind_ok = true;
}

void check_non_tls(checker& c, const entry& e, const std::string& path, listener_scope& s) {
  static const std::vector<std::string_view> choices{"close", "default"};
  auto expected_choice = "one of: " + join(choices);
  if (auto text = c.scalar(e, path, expected_choice)) {
    if (std::find(choices.begin(), choices.end(), *text) == choices.end())
      c.fail(e, path, "expected " + expected_choice + ", got " + quoted(*text));
    else
      s.listener.non_tls_to_default = *text == "default";
  }
}

// rate_limit: { upload: 10MiB/s, download: 50MiB/s }: a size per second, each optional.
void check_rate(checker& c, const entry& e, const std::string& path, std::uint64_t& out) {
  constexpr std::string_view expected = "a rate such as 10MiB/s (a size per second, 0 = none)";
  auto text = c.scalar(e, path, expected);
  if (!text) return;
  std::string_view t = *text;
  std::optional<std::size_t> rate;
  if (t == "0")
    rate = 0;
  else if (t.size() > 2 && t.substr(t.size() - 2) == "/s")
    rate = parse_size(t.substr(0, t.size() - 2));
  if (!rate || *rate > (std::uint64_t{1} << 40))
    c.fail(e, path, "expected " + std::string(expected) + ", got " + quoted(*text));
  else
    out = *rate;
}

const key_rule<listener_config> rate_limit_keys[] = {
    {"upload",
     [](auto& c, auto& e, auto& path, auto& l) { check_rate(c, e, path, l.upload_rate); }},
    {"download",
     [](auto& c, auto& e, auto& path, auto& l) { check_rate(c, e, path, l.download_rate); }},
};

void check_sample(checker& c, const entry& e, const std::string& path, listener_scope& s) {
  constexpr std::string_view expected = "a share of connections from 0 to 1, e.g. 0.1";
  auto text = c.scalar(e, path, expected);
  if (!text) return;
  double v = -1;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc{} || end != text->data() + text->size() || !(v >= 0 && v <= 1))
    c.fail(e, path, "expected " + std::string(expected) + ", got " + quoted(*text));
  else
    s.listener.mirror_sample = v;
}

// mirror: { upstream: NAME, sample: 0.1, max_lag: 8MiB }
const key_rule<listener_scope> mirror_keys[] = {
    {"upstream",
     [](auto& c, auto& e, auto& path, auto& s) {
       if (auto n = c.name(e, path)) {
         c.upstream_name(e, path, *n, s.cfg);
         s.listener.mirror_upstream = *n;
       }
     },
     "the name of the upstream that gets the copy"},
    {"sample", check_sample},
    {"max_lag",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.size(e, path, 64 << 10, std::size_t(1) << 30, "64KiB to 1GiB", s.listener.mirror_max_lag);
     }},
};

// Read whole now, into a sealed memfd: what clients get is the file as loaded, whatever happens
// to it on disk until the next reload.
void check_fallback(checker& c, const entry& e, const std::string& path, listener_scope& s) {
  constexpr std::string_view expected =
      "a file of at most 1 MiB (absolute, or relative to the config file's directory)";
  auto text = c.scalar(e, path, expected);
  if (!text) return;
  std::string file = *text;
  const std::string& source = c.source();
  if (!file.empty() && file.front() != '/' && source.find('/') != std::string::npos)
    file = source.substr(0, source.rfind('/') + 1) + file;
  std::string why = "not a file name";
  std::shared_ptr<const fallback_body> body;
  if (!text->empty() && file.find('\0') == std::string::npos) body = load_fallback_body(file, why);
  if (!body) {
    c.fail(e, path, "expected " + std::string(expected) + ", got " + quoted(*text) + ": " + why);
    return;
  }
  s.listener.fallback_path = file;
  s.listener.fallback = std::move(body);
}

const key_rule<listener_scope> listener_keys[] = {
    {"name", check_listener_name, "a non-empty name"},
    {"bind", check_bind, address_hint},
    {"upstream",
     [](auto& c, auto& e, auto& path, auto& s) {
       if (auto n = c.name(e, path)) {
         s.listener.upstream = *n;
         c.upstream_name(e, path, *n, s.cfg);
       }
     }},
    {"connect_timeout", [](auto& c, auto& e, auto& path,
                           auto& s) { connect_timeout(c, e, path, s.listener.timeouts); }},
    {"idle_timeout",
     [](auto& c, auto& e, auto& path, auto& s) { idle_timeout(c, e, path, s.listener.timeouts); }},
    {"max_connection_duration",
     [](auto& c, auto& e, auto& path, auto& s) {
       max_connection_duration(c, e, path, s.listener.timeouts);
     }},
    {"allow", [](auto& c, auto& e, auto& path, auto& s) { c.cidrs(e, path, s.listener.allow); }},
    {"deny", [](auto& c, auto& e, auto& path, auto& s) { c.cidrs(e, path, s.listener.deny); }},
    {"max_connections",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.integer(e, path, 0, 10'000'000, " (0 = no limit)", s.listener.max_connections);
     }},
    {"max_connections_per_ip",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.integer(e, path, 0, 10'000'000, " (0 = no limit)", s.listener.max_connections_per_ip);
     }},
    {"accept_proxy",
     [](auto& c, auto& e, auto& path, auto& s) { c.boolean(e, path, s.listener.accept_proxy); }},
    {"proxy_timeout",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.duration(e, path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h",
                  s.listener.proxy_timeout);
     }},
    {"rate_limit", [](auto& c, auto& e, auto& path,
                      auto& s) { check_map(c, e, path, rate_limit_keys, s.listener); }},
    {"routes", [](auto& c, auto& e, auto& path,
                  auto& s) { check_routes(c, e, path, s.cfg, s.listener.routes); }},
    {"sni_timeout",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.duration(e, path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h",
                  s.listener.sni_timeout);
     }},
    {"non_tls", check_non_tls},
    {"fallback_response", check_fallback},
    {"mirror",
     [](auto& c, auto& e, auto& path, auto& s) { check_map(c, e, path, mirror_keys, s); }},
};

// Rules between a listener's keys, once each has been read.
void cross_check(checker& c, const std::vector<entry>& items, const listener_scope& s) {
  const listener_config& l = s.listener;
  const entry* routes = checker::find(items, "routes");
  for (const char* key : {"allow", "deny"})
    if (const auto* by_ip = checker::find(items, key);
        by_ip && s.bind_ok && l.bind.local && !l.accept_proxy)
      c.fail(*by_ip, child(s.path, key),
             "applies only to an IP listener, or a Unix socket one with accept_proxy: a Unix "
             "socket's clients have no address of their own (use the socket file's permissions)");
  for (const char* key : {"sni_timeout", "non_tls"})
    if (const auto* only_routed = checker::find(items, key); only_routed && !routes)
      c.fail(*only_routed, child(s.path, key), "applies only to a listener with routes");
  if (const auto* non_tls = checker::find(items, "non_tls");
      non_tls && routes && l.non_tls_to_default && l.routes.default_route.empty())
    c.fail(*non_tls, child(s.path, "non_tls"),
           "expected close: default needs a {default: UPSTREAM} entry in routes");
}

// Where a listener's connections go: one upstream, or routes (choosing one per connection).
void require_destination(checker& c, const std::vector<entry>& items, const node& map,
                         const std::string& path) {
  const entry* routes = checker::find(items, "routes");
  if (!routes)
    c.require(items, map, path, "upstream",
              "the name of an entry in upstreams (or routes: by TLS server name)");
  else if (checker::find(items, "upstream"))
    c.fail(*routes, child(path, "routes"),
           "expected either upstream or routes, not both (routes choose the upstream per "
           "connection)");
}

}  // namespace

void check_listeners(checker& c, const entry& e, config& out) {
  constexpr std::string_view expected = "a non-empty sequence of listeners {name, bind, upstream}";
  if (!e.value.is_sequence()) {
    c.fail(e, "listeners", "expected " + std::string(expected) + ", got " + describe(e.value));
    return;
  }
  if (e.value.size() == 0) {
    c.fail(e, "listeners", "expected " + std::string(expected) + ", got an empty sequence");
    return;
  }
  const auto keys = key_names(listener_keys);
  std::map<std::string, std::string> names;
  std::vector<bound> binds;
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    auto path = element("listeners", i);
    entry self{"", e.key_node, e.value[i]};
    if (!c.expect_map(self, path, "a map with keys " + join(keys))) continue;
    auto items = c.entries(self.value, path, keys);
    require_keys(c, items, self.value, path, listener_keys);
    require_destination(c, items, self.value, path);
    listener_config listener;
    listener_scope scope{listener, out, path, names, binds};
    parse_keys(c, items, path, listener_keys, scope);
    cross_check(c, items, scope);
    if (scope.bind_ok) binds.push_back({listener.bind, path, listener.name});
    out.listeners.push_back(std::move(listener));
  }
}

}  // namespace zcproxy::detail
