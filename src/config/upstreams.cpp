// The upstreams: section, a map of upstream name to its endpoints, balancing and health checks.
#include <algorithm>

#include "checker.hpp"

namespace zcproxy::detail {
namespace {

constexpr std::string_view endpoint_hint =
    "an IP literal and port, e.g. 127.0.0.1:9000 or [::1]:9000, a host name and port, e.g. "
    "app.internal:9000, unix:/path/to.sock, or a map {address, weight}";
constexpr std::string_view endpoints_hint =
    "a non-empty sequence of endpoints, each an IP literal and port, a host name and port or a "
    "map {address, weight}, e.g. [\"127.0.0.1:9000\", {address: \"app.internal:9000\", weight: "
    "2}]";

// One endpoint written as a map; the address's own node and path are kept so a duplicate is
// reported where its address is written.
struct endpoint_scope {
  endpoint_config& endpoint;
  node address_node;
  std::string address_path;
  std::optional<address> at;
};

// An IP literal and port, a Unix socket, or a host name and port (the name is kept in
// s.endpoint.host, the port in s.at).
void check_endpoint_address(checker& c, const entry& e, const node& n, const std::string& path,
                            endpoint_scope& s) {
  std::string why;
  if (n.is_scalar() && !parse_address(n.scalar()))
    if (auto named = parse_host_port(n.scalar(), why)) {
      s.endpoint.host = std::move(named->host);
      s.at = address{};
      s.at->port = named->port;
      return;
    }
  s.at = c.addr(e, n, path, false);  // reports what is wrong, as an IP literal
}

const key_rule<endpoint_scope> endpoint_keys[] = {
    {"address",
     [](auto& c, auto& e, auto& path, auto& s) {
       s.address_node = e.value;
       s.address_path = path;
       check_endpoint_address(c, e, e.value, path, s);
     },
     address_hint},
    {"weight", [](auto& c, auto& e, auto& path,
                  auto& s) { c.integer(e, path, 1, 256, "", s.endpoint.weight); }},
};

// One element of endpoints: "127.0.0.1:9000" or {address, weight}. Fills `s`.
void check_endpoint(checker& c, const entry& e, const node& n, const std::string& path,
                    endpoint_scope& s) {
  if (n.is_map()) {
    auto fields = c.entries(n, path, key_names(endpoint_keys));
    require_keys(c, fields, n, path, endpoint_keys);
    parse_keys(c, fields, path, endpoint_keys, s);
  } else if (n.is_sequence()) {
    c.fail_at(n.where(), path, "expected " + std::string(endpoint_hint) + ", got " + describe(n));
  } else {
    check_endpoint_address(c, e, n, path, s);
  }
}

void check_endpoints(checker& c, const entry& e, const std::string& path,
                     std::vector<endpoint_config>& out) {
  if (!e.value.is_sequence()) {
    c.fail(e, path, "expected " + std::string(endpoints_hint) + ", got " + describe(e.value));
    return;
  }
  if (e.value.size() == 0) {
    c.fail(e, path, "expected " + std::string(endpoints_hint) + ", got an empty sequence");
    return;
  }
  std::vector<std::string> paths;  // where each of `out` was given, for duplicates
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const auto element_path = element(path, i);
    const node n = e.value[i];
    endpoint_config endpoint;
    endpoint_scope s{endpoint, n, element_path, std::nullopt};
    check_endpoint(c, e, n, element_path, s);
    if (!s.at) continue;
    endpoint.at = *s.at;
    auto same = std::find_if(out.begin(), out.end(), [&](const auto& o) {
      return o.at == endpoint.at && o.host == endpoint.host;
    });
    if (same != out.end()) {
      c.fail_at(s.address_node.where(), s.address_path,
                "duplicate endpoint " + to_string(endpoint) + " (also " +
                    paths[static_cast<std::size_t>(same - out.begin())] +
                    "); expected each address once per upstream (a weight gives an endpoint a "
                    "bigger share)");
      continue;
    }
    out.push_back(endpoint);
    paths.push_back(s.address_path);
  }
}

struct health_check_scope {
  health_check_config& out;
  bool interval_ok = true;
  const entry* timeout_given = nullptr;  // set only when it parsed
};

void check_send_or_expect(checker& c, const entry& e, const std::string& path,
                          health_check_scope& s) {
  if (auto text = c.scalar(e, path, "a string"))
    (e.key == "send" ? s.out.send : s.out.expect) = *text;
}

const key_rule<health_check_scope> health_check_keys[] = {
    {"interval",
     [](auto& c, auto& e, auto& path, auto& s) {
       s.interval_ok = c.duration(e, path, std::chrono::milliseconds(10), std::chrono::hours(1),
                                  "10ms to 1h", s.out.interval);
     }},
    {"timeout",
     [](auto& c, auto& e, auto& path, auto& s) {
       if (c.duration(e, path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h",
                      s.out.timeout))
         s.timeout_given = &e;
     }},
    {"rise",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.integer(e, path, 1, 100, " (successes in a row that bring an endpoint back)", s.out.rise);
     }},
    {"fall",
     [](auto& c, auto& e, auto& path, auto& s) {
       c.integer(e, path, 1, 100, " (failures in a row that take an endpoint out)", s.out.fall);
     }},
    {"send", check_send_or_expect},
    {"expect", check_send_or_expect},
    {"send_proxy",
     [](auto& c, auto& e, auto& path, auto& s) { c.boolean(e, path, s.out.send_proxy); }},
};

void check_health_check(checker& c, const entry& e, const std::string& path,
                        health_check_config& out) {
  auto expected = "a map with keys " + join(key_names(health_check_keys)) + ", or true or false";
  // `true` checks with every default, `false` is the same as leaving the key out.
  if (e.value.is_scalar()) {
    if (auto enabled = e.value.as_bool())
      out.enabled = *enabled;
    else
      c.fail(e, path, "expected " + expected + ", got " + describe(e.value));
    return;
  }
  if (!c.expect_map(e, path, expected)) return;
  out.enabled = true;
  health_check_scope s{out};
  auto items = c.entries(e.value, path, key_names(health_check_keys));
  parse_keys(c, items, path, health_check_keys, s);
  // A check must end before the next one starts. The default timeout yields to a shorter
  // interval; one written down does not.
  if (!s.interval_ok) return;
  if (s.timeout_given == nullptr) {
    out.timeout = std::min(out.timeout, out.interval);
  } else if (out.timeout > out.interval) {
    c.fail(*s.timeout_given, child(path, "timeout"),
           "expected a duration from 1ms to the interval (" + format_duration(out.interval) +
               "), got " + quoted(s.timeout_given->value.scalar()));
  }
}

struct resolve_scope {
  resolve_config& out;
  const entry* max_given = nullptr;
  const entry* min_given = nullptr;
};

void check_resolvers(checker& c, const entry& e, const std::string& path, resolve_scope& s) {
  constexpr std::string_view expected =
      "a sequence of nameservers, each an IP literal and port, e.g. [\"127.0.0.1:53\", "
      "\"[::1]:53\"] (empty: those of /etc/resolv.conf)";
  if (!e.value.is_sequence()) {
    c.fail(e, path, "expected " + std::string(expected) + ", got " + describe(e.value));
    return;
  }
  s.out.resolvers.clear();
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const auto item_path = element(path, i);
    auto a = c.addr(e, e.value[i], item_path, false);
    if (a && a->local)
      c.fail_at(e.value[i].where(), item_path, "expected " + std::string(expected));
    else if (a)
      s.out.resolvers.push_back(*a);
  }
}

const key_rule<resolve_scope> resolve_keys[] = {
    {"min_interval",
     [](auto& c, auto& e, auto& path, auto& s) {
       if (c.duration(e, path, std::chrono::milliseconds(10), std::chrono::hours(24), "10ms to 24h",
                      s.out.min_interval))
         s.min_given = &e;
     }},
    {"max_interval",
     [](auto& c, auto& e, auto& path, auto& s) {
       if (c.duration(e, path, std::chrono::milliseconds(10), std::chrono::hours(24), "10ms to 24h",
                      s.out.max_interval))
         s.max_given = &e;
     }},
    {"family", [](auto& c, auto& e, auto& path,
                  auto& s) { c.one_of(e, path, address_family_names, s.out.family); }},
    {"resolvers", check_resolvers},
};

constexpr std::string_view source_hint =
    "client (the client's own address: transparent proxying) or an IP literal without a port, "
    "e.g. 10.0.0.5 or 2001:db8::5";

// `source: client` or `source: IP`: the port is always the kernel's.
void check_source(checker& c, const entry& e, const std::string& path, upstream_config& u) {
  auto text = c.scalar(e, path, source_hint);
  if (!text) return;
  if (*text == "client") {
    u.source.kind = source_kind::client;
    return;
  }
  const bool v6 = text->find(':') != std::string::npos;
  auto ip = parse_address(v6 ? "[" + *text + "]:0" : *text + ":0");
  if (!ip || text->empty() || text->front() == '[') {
    c.fail(e, path, "expected " + std::string(source_hint) + ", got " + quoted(*text));
    return;
  }
  u.source = {source_kind::fixed, *ip};
}

// What `source` cannot do with the upstream's endpoints: bind a Unix socket, or connect from an
// IP of one family to an endpoint of the other. Checked once the whole upstream is read.
void check_source_fits(checker& c, const entry& item, const std::string& path,
                       const upstream_config& u) {
  if (u.source.kind == source_kind::none || !item.value.is_map()) return;
  for (const auto& [key, value] : item.value.entries()) {
    if (!key.is_scalar() || key.scalar() != "source") continue;
    for (const auto& e : u.endpoints) {
      std::string why;
      if (e.at.local)
        why = "endpoint " + to_string(e) + " is a Unix socket, which has no source address";
      else if (u.source.kind == source_kind::fixed && e.host.empty() &&
               e.at.v6 != u.source.fixed.v6)
        why = "endpoint " + to_string(e) + " is IPv" + (e.at.v6 ? "6" : "4") + ", the source IPv" +
              (u.source.fixed.v6 ? "6" : "4");
      if (why.empty()) continue;
      c.fail_at(value.where(), child(path, "source"),
                "expected an upstream whose endpoints are all IP endpoints of the source's "
                "family: " +
                    why);
      return;
    }
  }
}

const key_rule<queue_config> queue_keys[] = {
    {"max",
     [](auto& c, auto& e, auto& path, auto& q) {
       c.integer(e, path, 0, 100000, " (clients waiting at once; 0 = refuse at once)", q.max);
     }},
    {"timeout",
     [](auto& c, auto& e, auto& path, auto& q) {
       c.duration(e, path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h",
                  q.timeout);
     }},
};

const key_rule<upstream_config> upstream_keys[] = {
    {"endpoints",
     [](auto& c, auto& e, auto& path, auto& u) { check_endpoints(c, e, path, u.endpoints); },
     endpoints_hint},
    {"balance", [](auto& c, auto& e, auto& path,
                   auto& u) { c.one_of(e, path, balance_policy_names, u.balance); }},
    {"hash_balance_factor",
     [](auto& c, auto& e, auto& path, auto& u) {
       c.integer(e, path, 100, 1000, " (percent of the mean load; absent = off)",
                 u.hash_balance_factor);
     }},
    {"slow_start",
     [](auto& c, auto& e, auto& path, auto& u) {
       c.duration(e, path, std::chrono::milliseconds(0), std::chrono::hours(1),
                  "0s to 1h (0s = off)", u.slow_start);
     }},
    {"health_check",
     [](auto& c, auto& e, auto& path, auto& u) { check_health_check(c, e, path, u.health_check); }},
    {"max_fails",
     [](auto& c, auto& e, auto& path, auto& u) {
       c.integer(e, path, 0, 1000, " (0 = no passive checks)", u.max_fails);
     }},
    {"fail_timeout",
     [](auto& c, auto& e, auto& path, auto& u) {
       c.duration(e, path, std::chrono::milliseconds(1), std::chrono::hours(24), "1ms to 24h",
                  u.fail_timeout);
     }},
    {"max_connect_attempts",
     [](auto& c, auto& e, auto& path, auto& u) {
       c.integer(e, path, 0, 1000, " (0 = every endpoint once)", u.max_connect_attempts);
     }},
    {"connect_timeout",
     [](auto& c, auto& e, auto& path, auto& u) { connect_timeout(c, e, path, u.timeouts); }},
    {"idle_timeout",
     [](auto& c, auto& e, auto& path, auto& u) { idle_timeout(c, e, path, u.timeouts); }},
    {"max_connection_duration", [](auto& c, auto& e, auto& path,
                                   auto& u) { max_connection_duration(c, e, path, u.timeouts); }},
    {"resolve",
     [](auto& c, auto& e, auto& path, auto& u) { check_resolve(c, e, path, u.resolve); }},
    {"send_proxy", [](auto& c, auto& e, auto& path,
                      auto& u) { c.one_of(e, path, proxy_protocol_version_names, u.send_proxy); }},
    {"source", check_source},
    {"max_connections_per_endpoint",
     [](auto& c, auto& e, auto& path, auto& u) {
       c.integer(e, path, 0, 1000000, " (0 = no limit)", u.max_connections_per_endpoint);
     }},
    {"queue", [](auto& c, auto& e, auto& path,
                 auto& u) { check_map(c, e, path, queue_keys, u.queue.emplace()); }},
};

// A queue holds clients until an endpoint has a free slot under max_connections_per_endpoint;
// without a limit no endpoint is ever full, so a queue would never be used: a config that sets
// one has forgotten the limit.
void check_queue_has_limit(checker& c, const entry& upstream_entry, const std::string& path,
                           const upstream_config& u) {
  if (!u.queue || u.max_connections_per_endpoint != 0 || !upstream_entry.value.is_map()) return;
  std::optional<mark> queue_at;
  for (const auto& [key, value] : upstream_entry.value.entries()) {
    if (!key.is_scalar()) continue;
    if (key.scalar() == "max_connections_per_endpoint" && !value.is_scalar()) return;
    if (key.scalar() == "max_connections_per_endpoint" && value.scalar() != "0")
      return;  // given, but bad: reported as such already
    if (key.scalar() == "queue") queue_at = key.where();
  }
  if (queue_at)
    c.fail_at(*queue_at, child(path, "queue"),
              "expected max_connections_per_endpoint (1 or more) beside queue: a queue holds "
              "clients while every endpoint is at that limit, and without it none ever is");
}

// hash_balance_factor bounds source_hash's loads; with another policy it would be silently
// ignored.
void check_hash_balance_factor(checker& c, const entry& item, const std::string& path,
                               const upstream_config& u) {
  if (u.hash_balance_factor == 0 || u.balance == balance_policy::source_hash) return;
  for (const auto& [key, value] : item.value.entries())
    if (key.is_scalar() && key.scalar() == "hash_balance_factor")
      c.fail_at(value.where(), child(path, "hash_balance_factor"),
                "expected balance: source_hash beside it (it bounds source_hash's loads), got "
                "balance: " +
                    std::string(to_string(u.balance)));
}

}  // namespace

void check_resolve(checker& c, const entry& e, const std::string& path, resolve_config& out) {
  if (!c.expect_map(e, path, "a map with keys " + join(key_names(resolve_keys)))) return;
  resolve_scope s{out};
  auto items = c.entries(e.value, path, key_names(resolve_keys));
  parse_keys(c, items, path, resolve_keys, s);
  if (out.min_interval > out.max_interval) {
    const entry& at = s.max_given ? *s.max_given : s.min_given ? *s.min_given : e;
    c.fail(at, path,
           "expected min_interval (" + format_duration(out.min_interval) +
               ") to be no longer than max_interval (" + format_duration(out.max_interval) + ")");
  }
}

void check_upstreams(checker& c, const entry& e, config& out) {
  constexpr std::string_view expected = "a non-empty map of upstream name to {endpoints, ...}";
  if (!c.expect_map(e, "upstreams", expected)) return;
  if (e.value.size() == 0) {
    c.fail(e, "upstreams", "expected " + std::string(expected) + ", got an empty map");
    return;
  }
  for (const auto& item : c.entries(e.value, "upstreams", {}, "upstream name")) {
    auto path = child("upstreams", item.key);
    if (item.key.empty()) {
      c.fail_at(item.key_node.where(), path, "expected a non-empty upstream name");
      continue;
    }
    upstream_config upstream;
    upstream.name = item.key;
    upstream.resolve = out.resolve;  // its own `resolve:` overrides key by key
    check_map(c, item, path, upstream_keys, upstream);
    check_source_fits(c, item, path, upstream);
    check_queue_has_limit(c, item, path, upstream);
    check_hash_balance_factor(c, item, path, upstream);
    out.upstreams.push_back(std::move(upstream));
  }
}

}  // namespace zcproxy::detail
