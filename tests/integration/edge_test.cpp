// At the edge, on real loopback sockets: allow/deny, connection limits, and the PROXY protocol
// accepted from clients and sent to upstreams.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <string>

#include "support/net.hpp"
#include "zcproxy/proxy_protocol.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// One listener on port 0 in front of one endpoint; `listener_keys` and `upstream_keys` add to it.
zcproxy::config config_with(std::uint16_t endpoint, const std::string& listener_keys,
                            const std::string& upstream_keys = "",
                            const std::string& engine = "adaptive") {
  return zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\n"
          "listeners:\n  - { name: edge, bind: \"127.0.0.1:0\", upstream: app" +
          (listener_keys.empty() ? "" : ", " + listener_keys) +
          " }\n"
          "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
          std::to_string(endpoint) + "\"]" + (upstream_keys.empty() ? "" : ", " + upstream_keys) +
          " }\n",
      "edge.yaml");
}

// An echo backend that counts its connections (upstream_server::accepted()).
upstream_server echo() {
  return upstream_server([](fd s) {
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
  });
}

// A round trip through the proxy to the echo backend works.
bool echoes(int s) {
  send_all(s, "ping", 4);
  const bytes got = recv_exact(s, 4);
  return std::string(got.begin(), got.end()) == "ping";
}

bool refused(int s) {
  const stream_end e = recv_to_end(s);
  return e.data.empty() && e.reset;
}

}  // namespace

TEST_CASE("edge: deny refuses a client before any upstream connect", "[edge][acl][integration]") {
  auto up = echo();
  proxy p(config_with(up.port(), "deny: [\"127.0.0.0/8\"]"));
  fd c = connect_to(p.port());
  CHECK(refused(c.get()));
  p.wait_sessions();
  CHECK(up.accepted_settled() == 0);
}

TEST_CASE("edge: allow lets in only the listed blocks, deny wins over allow",
          "[edge][acl][integration]") {
  auto up = echo();
  proxy p(
      config_with(up.port(), "allow: [\"127.0.0.2/32\", \"127.0.1.0/24\"], deny: [\"127.0.1.9\"]"));
  fd in = connect_from("127.0.0.2", p.port());
  CHECK(echoes(in.get()));
  fd in_block = connect_from("127.0.1.7", p.port());
  CHECK(echoes(in_block.get()));
  fd out = connect_from("127.0.0.3", p.port());
  CHECK(refused(out.get()));
  fd denied = connect_from("127.0.1.9", p.port());
  CHECK(refused(denied.get()));
  p.wait_sessions(2);  // the two let in are still open
  CHECK(up.accepted_settled() == 2);
}

TEST_CASE("edge: max_connections refuses the excess at once and admits again when one closes",
          "[edge][limits][integration]") {
  auto up = echo();
  proxy p(config_with(up.port(), "max_connections: 2"));
  fd a = connect_to(p.port());
  fd b = connect_to(p.port());
  CHECK(echoes(a.get()));
  CHECK(echoes(b.get()));
  fd c = connect_to(p.port());
  CHECK(refused(c.get()));
  p.wait_sessions(2);
  CHECK(p.closed("limit") == 1);  // refused for the limit, before any connect
  CHECK(up.accepted_settled() == 2);
  a.close();
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 1; }));
  fd d = connect_to(p.port());
  CHECK(echoes(d.get()));
}

TEST_CASE("edge: max_connections_per_ip limits each client address on its own",
          "[edge][limits][integration]") {
  auto up = echo();
  proxy p(config_with(up.port(), "max_connections_per_ip: 1"));
  fd a = connect_from("127.0.0.2", p.port());
  CHECK(echoes(a.get()));
  fd again = connect_from("127.0.0.2", p.port());
  CHECK(refused(again.get()));
  fd other = connect_from("127.0.0.3", p.port());
  CHECK(echoes(other.get()));
}

TEST_CASE(
    "edge: accept_proxy takes the client's address from a v1 or v2 header, passes only the "
    "payload, and splices it",
    "[edge][proxy_protocol][integration]") {
  auto up = echo();
  const zcproxy::address src{"10.1.2.3", 5555, false}, dst{"10.0.0.1", 80, false};
  const bool v2 = GENERATE(false, true);
  INFO((v2 ? "v2" : "v1"));
  proxy p(config_with(up.port(), "accept_proxy: true", "", "auto"));
  const std::string header = v2 ? zcproxy::proxy_protocol::encode_v2(src, dst)
                                : zcproxy::proxy_protocol::encode_v1(src, dst);
  const bytes payload = random_bytes(1 << 20, 7);
  fd c = connect_to(p.port());
  send_all(c.get(), header.data(), header.size());
  thread_group t;
  t.spawn([&] {
    send_all(c.get(), payload);
    shutdown_write(c.get());
  });
  CHECK(checksum(recv_all(c.get())) == checksum(payload));  // the header never reached the echo
  t.join();
  CHECK(t.errors().empty());
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  CHECK(p.srv->snapshot().bytes_spliced >= 2 * payload.size());  // splice carried the payload
}

TEST_CASE("edge: access control applies to the address from the PROXY header",
          "[edge][proxy_protocol][acl][integration]") {
  auto up = echo();
  proxy p(config_with(up.port(), "accept_proxy: true, deny: [\"10.0.0.0/8\"]"));
  const std::string denied =
      zcproxy::proxy_protocol::encode_v1({"10.9.9.9", 1000, false}, {"10.0.0.1", 80, false});
  fd c = connect_to(p.port());
  send_all(c.get(), denied.data(), denied.size());
  CHECK(refused(c.get()));
  const std::string allowed =
      zcproxy::proxy_protocol::encode_v1({"192.0.2.1", 1000, false}, {"10.0.0.1", 80, false});
  fd d = connect_to(p.port());
  send_all(d.get(), allowed.data(), allowed.size());
  CHECK(echoes(d.get()));
  p.wait_sessions(1);
  CHECK(up.accepted_settled() == 1);
}

TEST_CASE("edge: a malformed, a missing or a slow PROXY header closes the connection",
          "[edge][proxy_protocol][integration]") {
  auto up = echo();
  proxy p(config_with(up.port(), "accept_proxy: true, proxy_timeout: 300ms"));
  SECTION("not a PROXY header: refused at its first byte") {
    fd c = connect_to(p.port());
    send_all(c.get(), "GET / HTTP/1.1\r\n\r\n", 18);
    CHECK(refused(c.get()));
  }
  SECTION("malformed v1") {
    fd c = connect_to(p.port());
    const std::string bad = "PROXY TCP4 10.1.2.3 10.0.0.1 99999 80\r\n";
    send_all(c.get(), bad.data(), bad.size());
    CHECK(refused(c.get()));
  }
  SECTION("slowloris: half a header, then nothing") {
    const auto t0 = clock_type::now();
    fd c = connect_to(p.port());
    send_all(c.get(), "PROXY TCP4 ", 11);
    CHECK(refused(c.get()));
    const auto waited = clock_type::now() - t0;
    CHECK(waited >= 250ms);
    CHECK(waited < 3s);
  }
  CHECK(up.accepted() == 0);
}

TEST_CASE("edge: send_proxy puts the client's addresses first on the upstream connection",
          "[edge][proxy_protocol][integration]") {
  const bool v2 = GENERATE(false, true);
  const bool behind_proxy = GENERATE(false, true);  // the client's address from a PROXY header
  INFO((v2 ? "v2" : "v1") << (behind_proxy ? ", accept_proxy" : ""));
  std::mutex m;
  std::string seen;  // what the backend read first
  upstream_server up([&](fd s) {
    char buf[512];
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    {
      std::lock_guard lock(m);
      seen.assign(buf, static_cast<std::size_t>(n));
    }
    send_all(s.get(), "ok", 2);
  });
  proxy p(config_with(up.port(), behind_proxy ? "accept_proxy: true" : "",
                      v2 ? "send_proxy: v2" : "send_proxy: v1"));
  fd c = connect_to(p.port());
  if (behind_proxy) {
    const std::string h = zcproxy::proxy_protocol::encode_v2({"192.0.2.7", 4242, false},
                                                             {"198.51.100.1", 443, false});
    send_all(c.get(), h.data(), h.size());
  }
  CHECK(recv_exact(c.get(), 2) == bytes{'o', 'k'});
  std::lock_guard lock(m);
  const auto r = zcproxy::proxy_protocol::parse({seen.data(), seen.size()});
  REQUIRE(r.status == zcproxy::proxy_protocol::status::complete);
  CHECK(r.header.version == (v2 ? 2 : 1));
  if (behind_proxy) {
    CHECK(r.header.source.to_string() == "192.0.2.7:4242");
    CHECK(r.header.destination.to_string() == "198.51.100.1:443");
  } else {
    CHECK(r.header.source.ip == "127.0.0.1");
    CHECK(r.header.destination.to_string() == "127.0.0.1:" + std::to_string(p.port()));
  }
}

namespace {

// An IPv6 loopback listener, or an empty fd when this machine has no ::1.
fd listen_v6(std::uint16_t& port) {
  fd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return {};
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(s.get(), 64) != 0)
    return {};
  socklen_t len = sizeof sa;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  port = ntohs(sa.sin6_port);
  return s;
}

fd connect_v6(std::uint16_t port) {
  fd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(s);
  timeval tv{10, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  sa.sin6_port = htons(port);
  REQUIRE(::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  return s;
}

}  // namespace

TEST_CASE("edge: an IPv6 listener relays to an IPv6 endpoint, by splice, and deny works on IPv6",
          "[edge][ipv6][integration]") {
  std::uint16_t backend_port = 0;
  fd backend = listen_v6(backend_port);
  if (!backend) {
    WARN("SKIPPED: this machine has no IPv6 loopback (::1)");
    return;
  }
  thread_group t;
  t.spawn([&] {  // one echo connection
    fd s(::accept4(backend.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!s) throw std::runtime_error("accept");
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
  });
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: auto }\n"
      "listeners:\n"
      "  - { name: v6, bind: \"[::1]:0\", upstream: app }\n"
      "  - { name: v6deny, bind: \"[::1]:0\", upstream: app, deny: [\"::1/128\"] }\n"
      "upstreams:\n  app: { endpoints: [\"[::1]:" +
          std::to_string(backend_port) + "\"] }\n",
      "v6.yaml"));
  const bytes payload = random_bytes(1 << 20, 9);
  fd c = connect_v6(p.srv->listening().at(0).port);
  thread_group w;
  w.spawn([&] {
    send_all(c.get(), payload);
    shutdown_write(c.get());
  });
  CHECK(checksum(recv_all(c.get())) == checksum(payload));
  w.join();
  t.join();
  CHECK(t.errors().empty());
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  CHECK(p.srv->snapshot().bytes_spliced >= 2 * payload.size());  // auto: splice on IPv6 too

  fd denied = connect_v6(p.srv->listening().at(1).port);
  CHECK(refused(denied.get()));
}

TEST_CASE("edge: rate_limit holds each direction of a connection to its rate, on both engines",
          "[edge][rate_limit][integration]") {
  // Each direction's limit on its own: the limited one is held to its rate, the other is not
  // touched. The backend takes 'u' + bytes (and says "done" at their end) or 'd' (and sends the
  // payload).
  const bytes payload = random_bytes(2 << 20, 11);
  upstream_server up([&](fd s) {
    char what = 0;
    if (::recv(s.get(), &what, 1, 0) != 1) return;
    if (what == 'u') {
      const bytes got = recv_all(s.get());
      send_all(s.get(), checksum(got) == checksum(payload) ? "done" : "bad!", 4);
    } else {
      send_all(s.get(), payload);
    }
  });
  const std::string engine = GENERATE(std::string("splice"), std::string("copy"));
  const std::string limited = GENERATE(std::string("upload"), std::string("download"));
  INFO("engine " << engine << ", " << limited << " limited to 1 MiB/s");
  // The default burst is 100 KiB, so 2 MiB at 1 MiB/s cannot take less than (2048 - 100) / 1024
  // s, about 1.9 s; unlimited, 2 MiB over loopback takes milliseconds.
  proxy p(config_with(up.port(), "rate_limit: { " + limited + ": 1MiB/s }", "", engine));
  const auto upload = [&] {
    const auto t0 = clock_type::now();
    fd c = connect_to(p.port());
    send_all(c.get(), "u", 1);
    send_all(c.get(), payload);
    shutdown_write(c.get());
    CHECK(recv_all(c.get()) == bytes{'d', 'o', 'n', 'e'});
    return clock_type::now() - t0;
  };
  const auto download = [&] {
    const auto t0 = clock_type::now();
    fd c = connect_to(p.port());
    send_all(c.get(), "d", 1);
    CHECK(checksum(recv_all(c.get())) == checksum(payload));
    return clock_type::now() - t0;
  };
  const auto up_took = upload(), down_took = download();
  const auto held = limited == "upload" ? up_took : down_took;
  const auto free = limited == "upload" ? down_took : up_took;
  CHECK(held >= 1800ms);
  CHECK(held < 20s);
  CHECK(free < 1800ms);  // the other direction is not held to that rate
}

TEST_CASE("edge: a rate-limited direction that has ended is not touched when the other one fails",
          "[edge][rate_limit][integration]") {
  // The upload ends first (the client's FIN); then the upstream resets, which stops the
  // connection: the ended direction's rate-limit timer must no longer be reachable from it.
  upstream_server up([](fd s) {
    recv_all(s.get());
    send_all(s.get(), "bye", 3);
    close_with_reset(s);
  });
  proxy p(config_with(up.port(), "rate_limit: { upload: 1MiB/s, download: 1MiB/s }"));
  for (int i = 0; i < 20; ++i) {
    fd c = connect_to(p.port());
    send_all(c.get(), "hello", 5);
    shutdown_write(c.get());
    const stream_end got = recv_to_end(c.get());
    CHECK(got.data.size() <= 3);
    CHECK(got.reset);
  }
  CHECK(up.stop_and_collect_errors().empty());
}
