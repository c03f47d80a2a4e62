// Endpoints by DNS name, against a real DNS server on loopback (dnsmasq, TTL 1 s, a hosts file
// the test rewrites): a name's addresses share the connections; a change moves new connections
// while a transfer to a removed address completes; a stopped server leaves the last addresses in
// use; NXDOMAIN at start, then the name appears; an AAAA-only name on ::1; a new address with
// health checks on takes no connection before its checks pass.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "control/metrics.hpp"
#include "support/dns_server.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"

using namespace test;

namespace {

// A port free on 127.0.0.2, .3 and .4 alike: every address of a name shares the endpoint's port.
std::uint16_t shared_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::uint16_t port = 0;
    fd first = listen_on("127.0.0.2", port);
    try {
      std::uint16_t p3 = port, p4 = port;
      fd b = listen_on("127.0.0.3", p3), c = listen_on("127.0.0.4", p4);
      return port;  // closed again: the backends bind it (SO_REUSEADDR)
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error("no port free on 127.0.0.2-4");
}

upstream_server echo_at(const std::string& ip, std::uint16_t port) {
  return upstream_server(echo_handler(), ip, port);
}

std::string config_text(const dns_server& dns, const std::string& endpoints,
                        const std::string& upstream_keys = "") {
  return "threads: 2\nlog: { level: warn, access_log: false }\n"
         "resolve: { resolvers: [\"" +
         dns.address() +
         "\"], min_interval: 100ms, max_interval: 2s }\n"
         "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
         "upstreams:\n  app:\n    endpoints: [" +
         endpoints + "]\n" + upstream_keys;
}

// The addresses the proxy has now for upstream `app`, as "ip:port" text, in its order.
std::vector<std::string> endpoints_of(const proxy& p) {
  std::vector<std::string> out;
  for (const auto& e : p.srv->snapshot().endpoints) out.push_back(e.at.to_string());
  return out;
}

const zcproxy::endpoint_stats* endpoint_at(const zcproxy::proxy_stats& s, const std::string& at) {
  for (const auto& e : s.endpoints)
    if (e.at.to_string() == at) return &e;
  return nullptr;
}

// What the proxy says of `name` (all zero before its resolver has taken it up).
zcproxy::dns_stats name_stats(const zcproxy::proxy_stats& s, const std::string& name) {
  for (const auto& n : s.dns)
    if (n.name == name) return n;
  return {};
}

std::string at(const std::string& ip, std::uint16_t port) {
  return ip + ":" + std::to_string(port);
}

}  // namespace

TEST_CASE("dns: a name with 3 addresses spreads connections over its 3 backends",
          "[dns][integration]") {
  temp_dir d;
  const std::uint16_t port = shared_port();
  upstream_server b2 = echo_at("127.0.0.2", port), b3 = echo_at("127.0.0.3", port),
                  b4 = echo_at("127.0.0.4", port);
  dns_server dns(d, "127.0.0.2 app.test\n127.0.0.3 app.test\n127.0.0.4 app.test\n");
  proxy p(zcproxy::load_config_string(config_text(dns, "\"app.test:" + std::to_string(port) + "\""),
                                      "dns.yaml"));
  // Start-up does not wait on DNS: the addresses come in the background.
  REQUIRE(wait_until([&] { return endpoints_of(p).size() == 3; }));
  const auto s = p.srv->snapshot();
  for (const auto& e : s.endpoints) CHECK(e.name == "app.test");
  CHECK(name_stats(s, "app.test").addresses == 3);
  constexpr int n = 30;
  for (int i = 0; i < n; ++i) CHECK(ping(p.port()));
  p.wait_sessions();
  CHECK(b2.accepted() == n / 3);
  CHECK(b3.accepted() == n / 3);
  CHECK(b4.accepted() == n / 3);
  // Each address under its name, in /metrics and /stats.json.
  const std::string metrics = zcproxy::render_prometheus(p.srv->snapshot());
  CHECK(metrics.find("zcproxy_endpoint_connections_total{upstream=\"app\",endpoint=\"" +
                     at("127.0.0.3", port) + "\",name=\"app.test\"} 10") != std::string::npos);
  CHECK(metrics.find("zcproxy_dns_addresses{name=\"app.test\",family=\"any\"} 3") !=
        std::string::npos);
}

TEST_CASE(
    "dns: a changed name moves new connections within its TTL, and a transfer to the "
    "removed address completes intact",
    "[dns][integration]") {
  temp_dir d;
  const std::uint16_t port = shared_port();
  upstream_server before = echo_at("127.0.0.2", port), after = echo_at("127.0.0.3", port);
  dns_server dns(d, "127.0.0.2 app.test\n");
  proxy p(zcproxy::load_config_string(config_text(dns, "\"app.test:" + std::to_string(port) + "\""),
                                      "dns.yaml"));
  REQUIRE(wait_until([&] { return endpoints_of(p) == std::vector{at("127.0.0.2", port)}; }));

  // A connection to the old address, open across the change.
  fd held = connect_to(p.port());
  send_all(held.get(), "h", 1);
  REQUIRE(recv_exact(held.get(), 1) == bytes{'h'});
  REQUIRE(before.accepted() == 1);

  const auto changed = std::chrono::steady_clock::now();
  dns.set_hosts("127.0.0.3 app.test\n");
  REQUIRE(wait_until([&] { return endpoints_of(p) == std::vector{at("127.0.0.3", port)}; }));
  const auto took = std::chrono::steady_clock::now() - changed;
  std::cout << "dns: new addresses in use "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms after the change (TTL 1 s)\n";
  // The TTL (1 s) and the answer on its way; a loaded machine gets as much again.
  CHECK(took < std::chrono::seconds(3));

  // New connections go to the new address while 64 MiB go through the old one.
  const bytes data = random_bytes(64 << 20, 71);
  constexpr int n = 20;
  const bytes echoed = echo_through(held.get(), data, [&] {
    for (int i = 0; i < n; ++i) CHECK(ping(p.port()));
  });
  CHECK(checksum(echoed) == checksum(data));
  shutdown_write(held.get());
  CHECK(recv_all(held.get()).empty());
  held.close();
  p.wait_sessions();
  CHECK(before.accepted() == 1);
  CHECK(after.accepted() == n);
}

TEST_CASE("dns: with the DNS server stopped, traffic goes on to the last addresses",
          "[dns][integration]") {
  temp_dir d;
  const std::uint16_t port = shared_port();
  upstream_server backend = echo_at("127.0.0.2", port);
  dns_server dns(d, "127.0.0.2 app.test\n");
  proxy p(zcproxy::load_config_string(config_text(dns, "\"app.test:" + std::to_string(port) + "\""),
                                      "dns.yaml"));
  REQUIRE(wait_until([&] { return endpoints_of(p).size() == 1; }));
  dns.pause();  // queries time out from now on
  REQUIRE(wait_until([&] {
    return name_stats(p.srv->snapshot(), "app.test")
               .results[static_cast<std::size_t>(zcproxy::dns_result::timeout)] >= 1;
  }));
  for (int i = 0; i < 10; ++i) CHECK(ping(p.port()));
  const auto s = p.srv->snapshot();
  CHECK(endpoints_of(p) == std::vector{at("127.0.0.2", port)});
  CHECK(name_stats(s, "app.test").addresses == 1);
  CHECK(name_stats(s, "app.test").last == zcproxy::dns_result::timeout);
  CHECK(zcproxy::render_prometheus(s).find(
            "zcproxy_dns_resolutions_total{name=\"app.test\",family=\"any\",result=\"timeout\"}") !=
        std::string::npos);
  p.wait_sessions();
  CHECK(backend.accepted() == 10);
  dns.resume();
}

TEST_CASE(
    "dns: a name that does not resolve at start gives no_endpoint, then is served once it "
    "appears",
    "[dns][integration]") {
  temp_dir d;
  const std::uint16_t port = shared_port();
  upstream_server backend = echo_at("127.0.0.2", port);
  dns_server dns(d, "127.0.0.9 other.test\n");
  proxy p(zcproxy::load_config_string(
      config_text(dns, "\"late.test:" + std::to_string(port) + "\""), "dns.yaml"));
  REQUIRE(wait_until([&] {
    return name_stats(p.srv->snapshot(), "late.test")
               .results[static_cast<std::size_t>(zcproxy::dns_result::nxdomain)] >= 1;
  }));
  CHECK_FALSE(ping(p.port()));  // closed: no endpoint yet
  p.wait_sessions();
  CHECK(p.closed("no_endpoint") == 1);
  CHECK(endpoints_of(p).empty());

  dns.set_hosts("127.0.0.9 other.test\n127.0.0.2 late.test\n");
  REQUIRE(wait_until([&] { return endpoints_of(p).size() == 1; }));
  CHECK(ping(p.port()));
  p.wait_sessions();
  CHECK(backend.accepted() == 1);
}

TEST_CASE("dns: an AAAA-only name is served on ::1", "[dns][integration]") {
  std::optional<upstream_server> backend;
  try {
    backend.emplace(echo_handler(), "::1", 0);
  } catch (const std::exception&) {
    WARN("SKIPPED: this machine has no IPv6 loopback (::1)");
    return;
  }
  temp_dir d;
  dns_server dns(d, "::1 six.test\n");
  proxy p(zcproxy::load_config_string(
      config_text(dns, "\"six.test:" + std::to_string(backend->port()) + "\""), "dns.yaml"));
  REQUIRE(wait_until([&] { return endpoints_of(p).size() == 1; }));
  CHECK(endpoints_of(p) == std::vector{"[::1]:" + std::to_string(backend->port())});
  for (int i = 0; i < 5; ++i) CHECK(ping(p.port()));
  p.wait_sessions();
  CHECK(backend->accepted() == 5);
}

TEST_CASE(
    "dns: with health checks on, an address new to a name takes no connection until its "
    "checks pass",
    "[dns][integration]") {
  temp_dir d;
  const std::uint16_t port = shared_port();
  upstream_server live = echo_at("127.0.0.2", port);
  // The new address answers, but only after 3 s: its first check (send "hi", expect "hi") is
  // still under way while the test sends its connections.
  upstream_server slow(
      [](fd s) {
        std::this_thread::sleep_for(3s);  // the backend's behaviour, not a wait of the test
        echo_handler()(std::move(s));
      },
      "127.0.0.3", port);
  dns_server dns(d, "127.0.0.2 app.test\n");
  proxy p(zcproxy::load_config_string(
      config_text(dns, "\"app.test:" + std::to_string(port) + "\"",
                  "    health_check: { interval: 5s, timeout: 5s, rise: 1, fall: 1, send: hi, "
                  "expect: hi }\n"),
      "dns.yaml"));
  REQUIRE(wait_until([&] {
    const auto s = p.srv->snapshot();
    const auto* e = endpoint_at(s, at("127.0.0.2", port));
    return e && e->usable;
  }));
  dns.set_hosts("127.0.0.2 app.test\n127.0.0.3 app.test\n");
  REQUIRE(wait_until([&] { return endpoints_of(p).size() == 2; }));
  auto s = p.srv->snapshot();
  const auto* fresh = endpoint_at(s, at("127.0.0.3", port));
  REQUIRE(fresh);
  CHECK_FALSE(fresh->usable);  // down until its first check passes
  // Round robin would give it every other connection: none goes there (only its check).
  for (int i = 0; i < 10; ++i) CHECK(ping(p.port()));
  CHECK(slow.accepted() <= 1);
  p.wait_sessions();
  CHECK(live.accepted() >= 10);  // and its health checks
  // Its check passes: it takes connections.
  REQUIRE(wait_until([&] {
    s = p.srv->snapshot();
    return endpoint_at(s, at("127.0.0.3", port))->usable;
  }));
}

TEST_CASE(
    "dns: the binary starts without waiting for DNS, and --check warns of a name that "
    "does not resolve",
    "[dns][binary]") {
  temp_dir d;
  const std::uint16_t port = shared_port();
  upstream_server backend = echo_at("127.0.0.2", port);
  dns_server dns(d, "127.0.0.2 app.test\n");
  const std::string yaml =
      "threads: 1\nlog: { level: info, access_log: false }\n"
      "resolve: { resolvers: [\"" +
      dns.address() +
      "\"], min_interval: 100ms }\n"
      "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
      "upstreams:\n  app: { endpoints: [\"app.test:" +
      std::to_string(port) + "\", \"gone.test:" + std::to_string(port) + "\"] }\n";

  process check({"--check", "-c", d.file("check.yaml", yaml)}, d.file("check.out"),
                d.file("check.err"));
  CHECK(check.wait() == 0);  // a warning, not an error
  const std::string said = slurp(d.file("check.out"));
  CHECK_THAT(said, Catch::Contains("name app.test: 1 address(es)"));
  CHECK_THAT(said, Catch::Contains("warning: name gone.test does not resolve now (nxdomain"));

  // With the DNS server not answering, the listener is up before any answer could have come.
  dns.pause();
  running_proxy zc(d, yaml, "web");
  REQUIRE(wait_until([&] { return zc.log().find("dns: app.test: timeout") != std::string::npos; }));
  const std::string log = zc.log();
  CHECK(log.find("listener web on") < log.find("dns: app.test: timeout"));
  CHECK_FALSE(ping(zc.port));  // no address yet: no endpoint
  dns.resume();
  REQUIRE(wait_until([&] { return ping(zc.port); }));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE(
    "dns: a take-over resolves the names before it takes the sockets, so no client meets "
    "a new process without endpoints",
    "[dns][binary][upgrade]") {
  temp_dir d, d_old, d_new;
  const std::uint16_t port = shared_port();
  upstream_server backend = echo_at("127.0.0.2", port);
  dns_server dns(d, "127.0.0.2 app.test\n");
  const std::string yaml =
      "threads: 1\ndrain_timeout: 20s\nlog: { level: info, access_log: false }\n"
      "upgrade_socket: " +
      d.path + "/upgrade.sock\nresolve: { resolvers: [\"" + dns.address() +
      "\"] }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
      "upstreams:\n  app: { endpoints: [\"app.test:" +
      std::to_string(port) + "\"] }\n";
  running_proxy old_proc(d_old, yaml, "web");
  REQUIRE(wait_until([&] { return ping(old_proc.port); }));  // its name has resolved

  // Clients connect without a pause while the new process takes over, and after.
  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, failed{0};
  std::thread clients([&] {
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (!stop && std::chrono::steady_clock::now() < end)
      ++(ping(old_proc.port) ? served : failed);
  });
  // The DNS server is slow to answer the new process: until then the old one serves, alone. (The
  // new process shares the old one's port: it is started without waiting for a port of its own.)
  dns.pause();
  process new_proc({"-c", d_new.file("zcproxy.yaml", yaml), "--takeover"}, d_new.file("out"),
                   d_new.file("err"));
  auto new_log = [&] { return slurp(d_new.file("err")); };
  const bool waiting =
      wait_until([&] { return new_log().find("dns: resolving 1 name(s)") != std::string::npos; });
  dns.resume();
  const bool alone = waiting && wait_until([&] {
                       return new_log().find("this process serves alone") != std::string::npos;
                     });
  const int at_take_over = served;
  if (alone) wait_until([&] { return served >= at_take_over + 50; });  // served by the new one
  stop = true;
  clients.join();
  REQUIRE(waiting);
  REQUIRE(alone);
  CHECK(served >= at_take_over + 50);
  CHECK(new_log().find("dns: app.test: 1 address(es) before start-up") != std::string::npos);
  CHECK(failed == 0);
  std::cout << "dns: take-over: " << served << " connections served, " << failed << " failed\n";
  CHECK(old_proc.proc.wait() == 0);
  REQUIRE(::kill(new_proc.pid, SIGTERM) == 0);
  CHECK(new_proc.wait() == 0);
}
