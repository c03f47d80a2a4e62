// Validated configuration: plain, immutable structs built once from YAML.
// yaml-cpp is used only by the loader (src/config/loader.cpp); everything else sees these types.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/acl.hpp"
#include "zcproxy/address.hpp"
#include "zcproxy/engine_mode.hpp"
#include "zcproxy/enum_names.hpp"
#include "zcproxy/log_config.hpp"

namespace zcproxy {

struct relay_config {
  engine_mode engine = engine_mode::adaptive;
  std::size_t pipe_size = 1 << 20;    // bytes asked of F_SETPIPE_SZ
  std::size_t max_pipes = 4096;       // per thread; past it a direction uses copy
  std::size_t buffer_size = 1 << 20;  // copy engine buffer, bytes
};

// Timeouts a listener or an upstream may set; unset ones are inherited: listener, then
// upstream, then the built-in default (see timeouts_for).
struct timeouts_config {
  std::optional<std::chrono::milliseconds> connect;  // connect_timeout: each attempt
  std::optional<std::chrono::milliseconds> idle;     // idle_timeout: no byte either way; 0 = none
  std::optional<std::chrono::milliseconds> max_duration;  // max_connection_duration; 0 = none
  bool operator==(const timeouts_config&) const = default;
};

// The timeouts a connection runs with: every one resolved.
struct timeouts {
  std::chrono::milliseconds connect{3000};
  std::chrono::milliseconds idle{600000};     // 10m, as nginx's proxy_timeout; 0 = no limit
  std::chrono::milliseconds max_duration{0};  // 0 = no limit
};

// A listener's routes by TLS server name (sni.hpp): patterns[i] goes to upstreams[i]; a name no
// pattern matches (or a ClientHello without one) goes to the default route, or is closed without
// one.
struct sni_routes {
  std::vector<std::string> patterns;   // "api.example.com" or "*.example.com"
  std::vector<std::string> upstreams;  // names of entries in config::upstreams (checked)
  std::string default_route;           // the `default:` route; empty = none
  bool operator==(const sni_routes&) const = default;
};

// A fallback_response file's bytes as loaded, in a sealed memfd (so sendfile(2) can send them,
// and no later change to the file on disk reaches clients before a reload). Owns the fd.
struct fallback_body {
  fallback_body(int fd, std::size_t size) : fd(fd), size(size) {}
  ~fallback_body();
  fallback_body(const fallback_body&) = delete;
  fallback_body& operator=(const fallback_body&) = delete;
  int fd;
  std::size_t size;
};

inline constexpr std::size_t max_fallback_bytes = 1 << 20;

struct listener_config {
  std::string name;
  address bind;
  // Where connections go: one upstream, or (upstream empty) chosen per connection by `routes`.
  std::string upstream;  // name of an entry in config::upstreams (checked)
  sni_routes routes;
  // A routed listener reads the client's ClientHello first, within sni_timeout. Bytes that are
  // not a well-formed ClientHello go to routes.default_route with non_tls_to_default, else are
  // closed.
  std::chrono::milliseconds sni_timeout{5000};
  bool non_tls_to_default = false;
  // For messages: "upstream app", or "routes api.example.com -> api, default -> web".
  std::string destination() const;
  timeouts_config timeouts;
  // Who may connect: a client in `deny` is refused; with `allow` non-empty, it must be in it.
  std::vector<cidr> allow;
  std::vector<cidr> deny;
  unsigned max_connections = 0;         // open at once through this listener; 0 = no limit
  unsigned max_connections_per_ip = 0;  // likewise, per client address
  // The client must send a PROXY protocol header (v1 or v2) within proxy_timeout; its source
  // address is then the client's address for logs, access control, limits and source_hash.
  bool accept_proxy = false;
  std::chrono::milliseconds proxy_timeout{5000};
  // Per connection, bytes per second client->upstream (upload) and back (download); 0 = none.
  std::uint64_t upload_rate = 0;
  std::uint64_t download_rate = 0;
  // mirror: for the sampled share of connections (0..1), every byte the client sends also goes
  // to a connection to this upstream; its replies are dropped. Empty: no mirroring.
  std::string mirror_upstream;
  double mirror_sample = 1.0;
  std::size_t mirror_max_lag = 8 << 20;  // bytes the shadow may fall behind before it stops
  // What a client gets when no endpoint can be reached (then a clean close); none: a reset.
  std::string fallback_path;  // as resolved: a relative path is the config file's directory's
  std::shared_ptr<const fallback_body> fallback;
  bool operator==(const listener_config&) const = default;
};

enum class balance_policy {
  round_robin,  // smooth weighted round-robin
  least_conn,   // fewest active connections per unit of weight
  random,       // power of two choices: two weighted random picks, the less loaded one
  source_hash,  // weighted rendezvous hashing on the client's IP address
};
// As the config file spells them.
inline constexpr std::array<std::string_view, 4> balance_policy_names{"round_robin", "least_conn",
                                                                      "random", "source_hash"};
constexpr std::string_view to_string(balance_policy p) {
  return name_of(balance_policy_names, p);
}
constexpr std::optional<balance_policy> parse_balance_policy(std::string_view text) {
  return parse_name<balance_policy>(balance_policy_names, text);
}

struct endpoint_config {
  address at;
  unsigned weight = 1;  // 1..256
  // Given as NAME:PORT: the DNS name, resolved in the background; `at` holds only the port. A
  // running generation has one endpoint per address the name resolves to (`at` whole), each with
  // the name's weight and the name here.
  std::string host = {};
  bool operator==(const endpoint_config&) const = default;
};

// As written: its address, or its NAME:PORT.
std::string to_string(const endpoint_config& e);

enum class address_family { any, v4, v6 };
inline constexpr std::array<std::string_view, 3> address_family_names{"any", "v4", "v6"};
constexpr std::string_view to_string(address_family f) {
  return name_of(address_family_names, f);
}
constexpr std::optional<address_family> parse_address_family(std::string_view text) {
  return parse_name<address_family>(address_family_names, text);
}

// How names among an upstream's endpoints are resolved (`resolve:`, at the top level and per
// upstream, whose keys override the top level's). A name is resolved again when its TTL says,
// but never sooner than min_interval nor later than max_interval; a failed resolution is tried
// again after min_interval and the last good addresses stay in use meanwhile.
struct resolve_config {
  std::chrono::milliseconds min_interval{1000};
  std::chrono::milliseconds max_interval{10000};  // HAProxy's `hold valid` default
  address_family family = address_family::any;    // A and AAAA records, either or both
  std::vector<address> resolvers;                 // "IP:PORT"; empty = /etc/resolv.conf's
  bool operator==(const resolve_config&) const = default;
};

// Active health checks: a TCP connect every `interval`, each within `timeout`; optionally send
// `send` and require the reply to start with `expect`. `fall` failures in a row take an
// endpoint out, `rise` successes in a row bring it back.
struct health_check_config {
  bool enabled = false;
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds timeout{1000};  // <= interval; when not given, min(1s, interval)
  unsigned rise = 2;
  unsigned fall = 3;
  std::string send;
  std::string expect;
  // With the upstream's send_proxy: each check starts with a PROXY header that says it carries
  // no client (v1 "UNKNOWN", v2 LOCAL), as a backend that requires the header expects.
  bool send_proxy = false;
  bool operator==(const health_check_config&) const = default;
};

enum class proxy_protocol_version { off, v1, v2 };
inline constexpr std::array<std::string_view, 3> proxy_protocol_version_names{"off", "v1", "v2"};
constexpr std::string_view to_string(proxy_protocol_version v) {
  return name_of(proxy_protocol_version_names, v);
}
constexpr std::optional<proxy_protocol_version> parse_proxy_protocol_version(
    std::string_view text) {
  return parse_name<proxy_protocol_version>(proxy_protocol_version_names, text);
}

// Where an upstream's connections come from (`source:`): the kernel's choice (none), the client's
// own address (`client`: transparent proxying, IP_TRANSPARENT, needs CAP_NET_ADMIN) or a fixed
// local address. The port is always the kernel's (IP_BIND_ADDRESS_NO_PORT: chosen at connect).
enum class source_kind : std::uint8_t { none, client, fixed };
struct source_config {
  source_kind kind = source_kind::none;
  address fixed = {};  // kind fixed: the IP literal (port 0)
  bool operator==(const source_config&) const = default;
};

// Where a client waits when every usable endpoint of its upstream is at
// max_connections_per_endpoint (HAProxy's maxqueue and timeout queue): `max` clients at most
// (0: refused at once with queue_full), each for `timeout` at most (then queue_timeout).
struct queue_config {
  unsigned max = 0;
  std::chrono::milliseconds timeout{5000};
  bool operator==(const queue_config&) const = default;
};

struct upstream_config {
  std::string name;
  // A PROXY protocol header with the client's addresses goes first on every connection to it.
  proxy_protocol_version send_proxy = proxy_protocol_version::off;
  std::vector<endpoint_config> endpoints;
  balance_policy balance = balance_policy::round_robin;
  // source_hash: an endpoint over this % of the mean load (per unit of weight) is passed over for
  // the next on the client's rendezvous order; 0 = off, else 100..1000.
  unsigned hash_balance_factor = 0;
  // An endpoint that comes up (health check passes, new from DNS, ready after maint) ramps its
  // weight from ~0 to its own over this; 0 = off.
  std::chrono::milliseconds slow_start{0};
  health_check_config health_check;
  // Passive checks: `max_fails` connect failures in a row eject an endpoint for `fail_timeout`;
  // 0 = off.
  unsigned max_fails = 0;
  std::chrono::milliseconds fail_timeout{10000};
  // Endpoints a connection tries before it gives up; 0 = every endpoint once.
  unsigned max_connect_attempts = 0;
  // Connections (connecting or open) one endpoint takes at once, counted across reloads by
  // address; 0 = no limit (and no queue).
  unsigned max_connections_per_endpoint = 0;
  std::optional<queue_config> queue;  // given: `queue:` (only with a limit)
  timeouts_config timeouts;
  resolve_config resolve;  // for its endpoints given by name
  source_config source;    // the address its connections are bound to
  bool operator==(const upstream_config&) const = default;
};

// The timeouts of a connection through `l` to `u`: the listener's value, else the upstream's,
// else the default.
timeouts timeouts_for(const listener_config& l, const upstream_config& u);

// The admin listener: /metrics, /stats, /stats.json, /healthz, /upstreams and (when enabled)
// POST /reload and the endpoints' run-time changes.
struct admin_config {
  bool enabled = false;  // off unless `admin:` is in the config
  address bind;
  std::vector<cidr> allow;  // who may connect; empty = everyone who can reach `bind`
  std::vector<cidr> deny;
  bool reload = false;  // POST /reload rereads the config file, as SIGHUP does
  // The bearer token that run-time changes (endpoint state and weight, and POST /reload then)
  // must carry, read from `token_file` when the config is loaded; empty = no such changes.
  std::string token_file;
  std::string token;
  bool operator==(const admin_config&) const = default;
};

// Who the process becomes once its listeners are bound (`user:` and `group:`): names are
// resolved when the config is loaded, so an unknown user is a config error.
struct run_as_config {
  std::string user;   // as given (a name or a number)
  std::string group;  // as given; empty = the user's primary group
  unsigned uid = 0;
  unsigned gid = 0;
  bool operator==(const run_as_config&) const = default;
};

struct config {
  std::string source;    // file the config came from (for messages)
  unsigned threads = 0;  // 0 = one per core
  log_config log;
  relay_config relay;
  std::chrono::milliseconds drain_timeout{10000};
  std::vector<listener_config> listeners;
  std::vector<upstream_config> upstreams;
  resolve_config resolve;  // the defaults of every upstream's `resolve:`
  admin_config admin;
  std::optional<run_as_config> run_as;  // none: the process keeps the user it started as
  // Core dumps hold whatever bytes were in flight: off unless asked for (RLIMIT_CORE 0 and not
  // dumpable, which also keeps other processes of the same user from ptrace-reading it).
  bool core_dumps = false;
  // Where this process hands its listening sockets to a new one (`zcproxy --takeover`): a Unix
  // socket path; empty: no take-over.
  std::string upgrade_socket;
  // Reload when the file (or what its path resolves to) changes on disk, as on SIGHUP.
  bool watch_config = false;
  // A digest of the bytes this config was loaded from (watch_config tells a change by it).
  std::size_t source_digest = 0;

  const upstream_config* find_upstream(std::string_view name) const;
  // Threads to run: `threads`, or the number of cores when it is 0.
  unsigned effective_threads() const;
};

// Every problem found in a config, each "FILE:LINE:COL: KEY: what was expected".
class config_error : public std::runtime_error {
 public:
  explicit config_error(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

// Load and validate; throws config_error listing every problem found.
config load_config_file(const std::string& path);
// Same, from YAML text; `source` names it in messages.
config load_config_string(const std::string& yaml, const std::string& source = "<string>");

// What `after` changes of `before`, by name, for a reload's log line: "listeners +api ~web;
// upstreams -old" (added, changed, removed), or "nothing".
std::string changes_between(const config& before, const config& after);

// "64KiB", "1MiB", "512", "2GiB", "16KB"... -> bytes; nullopt when malformed.
std::optional<std::size_t> parse_size(std::string_view text);
// "500ms", "3s", "1m", "1h" -> milliseconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace zcproxy
