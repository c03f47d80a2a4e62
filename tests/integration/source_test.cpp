// An upstream's `source:`: the backend sees the client's own address (`source: client`,
// transparent proxying), a fixed one, or the proxy's without it. The real thing runs in three
// network namespaces the test makes and removes (198.18.0.0/15, and for IPv6 its twin
// 2001:2::/48 of RFC 5180), with the README's policy routing in the proxy's; what the capability
// check refuses runs on loopback. They need root (as CI has): without it, or where namespaces
// cannot be made, they are reported as skipped (CTest's SKIP_REGULAR_EXPRESSION "SKIPPED:"), and
// CI fails on any skipped test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "support/net.hpp"
#include "support/process.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/socket.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

bool root() {
  if (::geteuid() == 0) return true;
  WARN("SKIPPED: not root: this test needs root (network namespaces, capabilities)");
  return false;
}

// A command of the namespaces' set-up, its output dropped; whether it succeeded.
bool sh(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// Three namespaces, each veth pair made inside them (the host never sees it, no packet leaves):
//   client 198.18.1.1/24 -- 198.18.1.2/24 proxy 198.18.2.1/24 -- 198.18.2.2/24 backend
// The proxy does not forward (ip_forward 0): a packet from the client's address reaches the
// backend only as the proxy's own. The backend routes the client's network back through the
// proxy, whose namespace gets the README's policy routing: replies to a transparent socket are
// delivered locally. 198.18.2.3 is the proxy's too (a fixed source). Removed when it goes.
struct netns_lab {
  netns_lab() {
    const std::string id = std::to_string(::getpid());
    for (const char* role : {"c", "p", "b"}) {
      const std::string name = "zcsrc" + id + role;
      if (!sh("ip netns add " + name)) return;
      made.push_back(name);
    }
    created = true;
    const std::string &c = made[0], &p = made[1], &b = made[2];
    const std::vector<std::string> setup{
        "ip link add to-proxy netns " + c + " type veth peer name to-client netns " + p,
        "ip link add to-backend netns " + p + " type veth peer name to-proxy netns " + b,
        "ip -n " + c + " addr add 198.18.1.1/24 dev to-proxy",
        "ip -n " + p + " addr add 198.18.1.2/24 dev to-client",
        "ip -n " + p + " addr add 198.18.2.1/24 dev to-backend",
        "ip -n " + p + " addr add 198.18.2.3/32 dev to-backend",
        "ip -n " + b + " addr add 198.18.2.2/24 dev to-proxy",
        "ip -n " + c + " link set lo up",
        "ip -n " + p + " link set lo up",
        "ip -n " + b + " link set lo up",
        "ip -n " + c + " link set to-proxy up",
        "ip -n " + p + " link set to-client up",
        "ip -n " + p + " link set to-backend up",
        "ip -n " + b + " link set to-proxy up",
        "ip -n " + b + " route add 198.18.1.0/24 via 198.18.2.1",
        "ip netns exec " + p + " sysctl -qw net.ipv4.ip_forward=0",
        // The README's commands, as an operator runs them on the proxy's host.
        "ip netns exec " + p +
            " iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK "
            "--set-mark 1",
        "ip -n " + p + " rule add fwmark 1 lookup 100",
        "ip -n " + p + " route add local 0.0.0.0/0 dev lo table 100",
        // IPv6 the same, in the IPv6 benchmarking range 2001:2::/48 (RFC 5180, 198.18's twin);
        // nodad: usable at once.
        "ip -n " + c + " addr add 2001:2:0:1::1/64 dev to-proxy nodad",
        "ip -n " + p + " addr add 2001:2:0:1::2/64 dev to-client nodad",
        "ip -n " + p + " addr add 2001:2:0:2::1/64 dev to-backend nodad",
        "ip -n " + b + " addr add 2001:2:0:2::2/64 dev to-proxy nodad",
        "ip -n " + b + " route add 2001:2:0:1::/64 via 2001:2:0:2::1",
        "ip netns exec " + p +
            " ip6tables -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK "
            "--set-mark 1",
        "ip -n " + p + " -6 rule add fwmark 1 lookup 100",
        "ip -n " + p + " -6 route add local ::/0 dev lo table 100",
    };
    for (const auto& command : setup)
      if (!sh(command)) {
        failed = command;
        return;
      }
  }
  ~netns_lab() {
    for (const auto& name : made) sh("ip netns delete " + name);
  }
  netns_lab(const netns_lab&) = delete;
  netns_lab& operator=(const netns_lab&) = delete;

  std::vector<std::string> made;  // client, proxy, backend
  bool created = false;           // false: namespaces cannot be made here (skip)
  std::string failed;             // the set-up command that failed, if one did
};

// Runs `f` on this thread inside the namespace `name`: the sockets it makes and the processes it
// starts stay there; the thread comes back to its own namespace however `f` ends.
template <class F>
void in_netns(const std::string& name, F f) {
  fd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  fd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(own);
  REQUIRE(target);
  REQUIRE(::setns(target.get(), CLONE_NEWNET) == 0);
  struct back {
    int to;
    ~back() { ::setns(to, CLONE_NEWNET); }
  } going_back{own.get()};
  f();
}

// A client connected to `to` ("198.18.1.2:8080", "[2001:2:0:1::2]:8080").
fd connect_ip(const std::string& to) {
  const auto at = zcproxy::parse_address(to);
  REQUIRE(at);
  const auto ep = zcproxy::endpoint_of(*at);
  fd s(::socket(at->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const timeval tv{10, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(::connect(s.get(), ep.data(), ep.size()) == 0);
  return s;
}

// The peer address the backend sees for a client of the proxy's listener at `port`: the
// backend accepts it, writes the address it got from accept(2), and closes.
std::string seen_by_backend(const netns_lab& lab, int backend, const std::string& listener) {
  fd client;
  in_netns(lab.made[0], [&] { client = connect_ip(listener); });
  send_all(client.get(), "hi", 2);
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  fd accepted(::accept4(backend, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  REQUIRE(accepted);
  char ip[INET6_ADDRSTRLEN] = {};
  const void* raw =
      peer.ss_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
  ::inet_ntop(peer.ss_family, raw, ip, sizeof ip);
  send_all(accepted.get(), ip, std::strlen(ip));
  accepted.close();
  const bytes back = recv_all(client.get());
  return std::string(back.begin(), back.end());
}

}  // namespace

TEST_CASE(
    "source: in network namespaces, the backend sees the client's own address with source: "
    "client, the fixed one with source: IP, and the proxy's without source",
    "[source][netns][binary]") {
  if (!root()) return;
  netns_lab lab;
  if (!lab.created) {
    WARN("SKIPPED: network namespaces cannot be made here (ip netns add failed)");
    return;
  }
  INFO("namespace set-up failed at: " << lab.failed);
  REQUIRE(lab.failed.empty());
  fd backend, backend6;
  in_netns(lab.made[2], [&] {
    std::uint16_t port = 9000;
    backend = listen_on("198.18.2.2", port);
    backend6 = listen_on("2001:2:0:2::2", port);
  });
  temp_dir d;
  const std::string conf = d.file("zcproxy.yaml", R"(threads: 1
listeners:
  - { name: transparent, bind: "198.18.1.2:8080", upstream: as_client }
  - { name: fixed, bind: "198.18.1.2:8081", upstream: fixed }
  - { name: plain, bind: "198.18.1.2:8082", upstream: plain }
  - { name: transparent6, bind: "[2001:2:0:1::2]:8080", upstream: as_client6 }
upstreams:
  as_client6: { endpoints: ["[2001:2:0:2::2]:9000"], source: client }
  as_client: { endpoints: ["198.18.2.2:9000"], source: client }
  fixed: { endpoints: ["198.18.2.2:9000"], source: 198.18.2.3 }
  plain: { endpoints: ["198.18.2.2:9000"] }
)");
  std::optional<process> proxy;
  in_netns(lab.made[1], [&] {
    proxy.emplace(std::vector<std::string>{"-c", conf}, d.file("out"), d.file("err"));
  });
  REQUIRE(wait_until(
      [&] { return slurp(d.file("err")).find("listener transparent6 on") != std::string::npos; },
      20s));
  CHECK(seen_by_backend(lab, backend.get(), "198.18.1.2:8080") == "198.18.1.1");
  CHECK(seen_by_backend(lab, backend.get(), "198.18.1.2:8081") == "198.18.2.3");
  CHECK(seen_by_backend(lab, backend.get(), "198.18.1.2:8082") == "198.18.2.1");
  // Again through the transparent listener: a second connection from the same client address
  // gets a port of its own (the kernel's, chosen at connect).
  CHECK(seen_by_backend(lab, backend.get(), "198.18.1.2:8080") == "198.18.1.1");
  CHECK(seen_by_backend(lab, backend6.get(), "[2001:2:0:1::2]:8080") == "2001:2:0:1::1");
  INFO(slurp(d.file("err")));
  CHECK(slurp(d.file("err")).find("source") == std::string::npos);  // no source failure logged
}

TEST_CASE(
    "source: without CAP_NET_ADMIN, --check and a start fail with exit 2 saying so, and so does "
    "a fixed source that is not this host's address",
    "[source][security][binary]") {
  if (!root()) return;
  temp_dir d;
  REQUIRE(::chmod(d.path.c_str(), 0755) == 0);  // nobody reads the config
  const std::string head =
      "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\nupstreams:\n";
  const std::string transparent =
      d.file("t.yaml", head + "  app: { endpoints: [\"127.0.0.1:9\"], source: client }\n");
  for (const bool check : {true, false}) {
    INFO((check ? "--check" : "a start"));
    std::vector<std::string> args{
        "--reuid=65534", "--regid=65534", "--clear-groups", ZCPROXY_BINARY, "-c", transparent};
    if (check) args.push_back("--check");
    process p("setpriv", args, "/dev/null", d.file("out"), d.file("err"));
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d.file("err")),
               Contains("upstream app: source: client needs CAP_NET_ADMIN (IP_TRANSPARENT: "
                        "Operation not permitted)"));
  }
  // As root the same config passes --check.
  {
    process p({"-c", transparent, "--check"}, d.file("out"), d.file("err"));
    CHECK(p.wait() == 0);
  }
  const std::string foreign =
      d.file("f.yaml", head + "  app: { endpoints: [\"127.0.0.1:9\"], source: 198.51.100.7 }\n");
  process p({"-c", foreign, "--check"}, d.file("out"), d.file("err"));
  CHECK(p.wait() == 2);
  CHECK_THAT(slurp(d.file("err")),
             Contains("upstream app: source: 198.51.100.7: cannot bind it: Cannot assign "
                      "requested address (not an address of this host)"));
}

TEST_CASE("source: with user:, source: client keeps CAP_NET_ADMIN and no other capability",
          "[source][security][binary]") {
  if (!root()) return;
  temp_dir d;
  REQUIRE(::chmod(d.path.c_str(), 0755) == 0);
  running_proxy zc(d, R"(user: nobody
listeners:
  - { name: web, bind: "127.0.0.1:0", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9"], source: client }
)",
                   "web");
  REQUIRE(wait_until([&] { return zc.log().find("running as user nobody") != std::string::npos; }));
  CHECK(status_fields(zc.proc.pid, "Uid") ==
        std::vector<std::string>{"65534", "65534", "65534", "65534"});
  const std::vector<std::string> net_admin_only{"0000000000001000"};  // bit 12
  CHECK(status_fields(zc.proc.pid, "CapEff") == net_admin_only);
  CHECK(status_fields(zc.proc.pid, "CapPrm") == net_admin_only);
}

TEST_CASE(
    "source: a Unix client of an upstream with source: client is refused with source_failed, "
    "no connect made, the endpoint not blamed",
    "[source][unix]") {
  if (!root()) return;  // the start's check of IP_TRANSPARENT needs CAP_NET_ADMIN
  upstream_server backend(echo_handler());
  temp_dir d;
  const std::string path = d.path + "/zc.sock";
  proxy p(zcproxy::load_config_string(
      "listeners:\n  - { name: web, bind: \"unix:" + path +
      "\", upstream: app }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:" +
      std::to_string(backend.port()) + "\"], source: client, max_fails: 1 }\n"));
  for (int i = 0; i < 2; ++i) {
    fd c = connect_unix(path);  // refused before it could send: nothing is sent
    const stream_end end = recv_to_end(c.get());
    CHECK(end.data.empty());  // closed without a byte (a Unix socket has no reset to send)
  }
  p.wait_sessions();
  CHECK(p.closed("source_failed") == 2);
  CHECK(backend.accepted_settled() == 0);
}
