// Every close reason the access log and /metrics promise, produced by a real scenario on loopback
// and read back from both: connect_timeout, no_endpoint, limit, no_route, client_hello, shutdown
// and splice_refused, and the engine value splice+copy (a direction that started on splice and
// went on by copy when the pipe pool ran dry).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"
#include "zcproxy/sys.hpp"

using namespace test;

namespace {

std::string captured(const std::string& name) {
  return slurp(std::string(ZCPROXY_SOURCE_DIR) + "/tests/data/tls/" + name);
}

// "127.0.0.1:PORT" of a client socket, as the access log names it.
std::string client_of(const fd& c) {
  sockaddr_in me{};
  socklen_t len = sizeof me;
  if (::getsockname(c.get(), reinterpret_cast<sockaddr*>(&me), &len) != 0) return "?";
  return "127.0.0.1:" + std::to_string(ntohs(me.sin_port));
}

// The access log's JSON line for `client`, once it is written (bounded wait; throws if never).
boost::json::object line_of(const std::string& access, const std::string& client) {
  boost::json::object found;
  const bool seen = wait_until([&] {
    std::istringstream in(slurp(access));
    for (std::string line; std::getline(in, line);) {
      auto o = boost::json::parse(line).as_object();
      if (o.at("client").as_string() == client) {
        found = o;
        return true;
      }
    }
    return false;
  });
  if (!seen) throw std::runtime_error("no access-log line for " + client);
  return found;
}

double closed(std::uint16_t admin, const std::string& listener, const std::string& reason) {
  const auto m = scrape_metrics(admin);
  const auto it = m.find(R"(zcproxy_listener_connections_closed_total{listener=")" + listener +
                         R"(",reason=")" + reason + R"("})");
  return it == m.end() ? -1 : it->second;
}

// A backend that takes its connection and reads nothing until released (the proxy's FIN cannot
// reach it: its receive window is closed, full of what it never read).
std::atomic<bool> released{false};
void hold(fd) {
  wait_until([] { return released.load(); }, std::chrono::seconds(60));
}

std::string access_config(const std::string& access) {
  return "log: { level: info, access_format: json, access_file: \"" + access + "\" }\n";
}

}  // namespace

TEST_CASE("close reasons: each is produced for real and read from the access log and /metrics",
          "[close_reasons][integration]") {
  temp_dir d;
  const std::string access = d.file("access.log");
  upstream_server echo([](fd s) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(s.get(), buf, sizeof buf, 0)) > 0;)
      send_all(s.get(), buf, static_cast<std::size_t>(n));
  });
  released = false;
  upstream_server stalled(hold);
  struct release_on_exit {  // before `stalled` is joined, whatever happens in between
    ~release_on_exit() { released = true; }
  } release;
  blackhole hang;  // an endpoint that never answers
  auto ep = [](std::uint16_t port) {
    return "{ endpoints: [\"127.0.0.1:" + std::to_string(port) + "\"] }";
  };
  // One worker and one pipe: a second direction that needs a pipe while one is held gets copy.
  proxy p(zcproxy::load_config_string(
      "threads: 1\n" + access_config(access) +
          "relay: { engine: auto, max_pipes: 1 }\n"
          "admin: { bind: \"127.0.0.1:0\" }\n"
          "listeners:\n"
          "  - { name: web, bind: \"127.0.0.1:0\", upstream: echo }\n"
          "  - { name: stall, bind: \"127.0.0.1:0\", upstream: stalled }\n"
          "  - { name: ct, bind: \"127.0.0.1:0\", upstream: hang, connect_timeout: 300ms }\n"
          "  - { name: ne, bind: \"127.0.0.1:0\", upstream: down }\n"
          "  - { name: lim, bind: \"127.0.0.1:0\", upstream: echo, max_connections: 1 }\n"
          "  - { name: sni, bind: \"127.0.0.1:0\", routes: [{sni: api.example.com, upstream: "
          "echo}], "
          "sni_timeout: 10s }\n"
          "upstreams:\n"
          "  echo: " +
          ep(echo.port()) +
          "\n"
          "  stalled: " +
          ep(stalled.port()) +
          "\n"
          "  hang: " +
          ep(hang.port) +
          "\n"
          "  down: { endpoints: [\"127.0.0.1:" +
          std::to_string(dead_port()) +
          "\"], "
          "health_check: { interval: 50ms, timeout: 50ms, rise: 1, fall: 1 } }\n",
      "close_reasons.yaml"));
  const auto at = p.srv->listening();
  const std::uint16_t web = at[0].port, stall = at[1].port, ct = at[2].port, ne = at[3].port,
                      lim = at[4].port, sni = at[5].port;
  const std::uint16_t admin = p.control->admin_address()->port;
  std::map<std::string, std::string> reason_of;  // client -> the close reason expected

  // connect_timeout: the only endpoint never answers.
  {
    fd c = connect_to(ct);
    reason_of[client_of(c)] = "connect_timeout";
    CHECK(recv_to_end(c.get()).reset);
  }
  // no_endpoint: the only endpoint is down by its health checks, so nothing is tried.
  REQUIRE(wait_until([&] {
    for (const auto& e : p.srv->snapshot().endpoints)
      if (e.upstream == "down") return !e.healthy;
    return false;
  }));
  {
    fd c = connect_to(ne);
    reason_of[client_of(c)] = "no_endpoint";
    CHECK(recv_to_end(c.get()).reset);
  }
  // limit: one connection open, the second refused.
  fd first = connect_to(lim);
  send_all(first.get(), "x", 1);
  CHECK(recv_exact(first.get(), 1) == bytes{'x'});
  {
    fd c = connect_to(lim);
    reason_of[client_of(c)] = "limit";
    CHECK(recv_to_end(c.get()).reset);
  }
  reason_of[client_of(first)] = "eof";
  first.close();
  // no_route: a ClientHello without a server name, and no default route.
  {
    fd c = connect_to(sni);
    reason_of[client_of(c)] = "no_route";
    const std::string hello = captured("openssl_no_sni.bin");
    send_all(c.get(), hello.data(), hello.size());
    CHECK(recv_to_end(c.get()).reset);
  }
  // client_hello: the client closes before its ClientHello is complete.
  {
    fd c = connect_to(sni);
    reason_of[client_of(c)] = "client_hello";
    const std::string hello = captured("curl_sni.bin");
    send_all(c.get(), hello.data(), hello.size() / 2);
    shutdown_write(c.get());
    CHECK(recv_to_end(c.get()).data.empty());
  }
  // splice+copy: a connection spliced once, then the only pipe is held by a stalled connection,
  // so its next bytes go by copy, both ways.
  fd a = connect_to(web);
  send_all(a.get(), "ping", 4);
  CHECK(recv_exact(a.get(), 4) == bytes{'p', 'i', 'n', 'g'});
  fd b = connect_to(stall);
  const bytes lots = random_bytes(8 << 20, 1);
  thread_group writer;
  writer.spawn([&] { ::send(b.get(), lots.data(), lots.size(), MSG_NOSIGNAL); });
  REQUIRE(wait_until([&] { return p.srv->snapshot().pipes_leased == 1; }));
  send_all(a.get(), "pong", 4);
  CHECK(recv_exact(a.get(), 4) == bytes{'p', 'o', 'n', 'g'});
  const std::string a_client = client_of(a);
  a.close();
  p.wait_sessions(1);  // only the stalled one is left
  CHECK(closed(admin, "web", "eof") == 1);
  CHECK(
      scrape_metrics(admin).at(
          R"(zcproxy_listener_splice_fallbacks_total{listener="web",reason="pipe_pool_exhausted"})") >=
      1);
  const auto a_line = line_of(access, a_client);
  CHECK(a_line.at("engine_up").as_string() == "splice+copy");
  CHECK(a_line.at("engine_down").as_string() == "splice+copy");

  // Every refusal above, in the access log and in /metrics.
  for (const auto& [client, reason] : reason_of) {
    INFO("client " << client << ", expected " << reason);
    CHECK(line_of(access, client).at("close").as_string() == reason);
  }
  CHECK(closed(admin, "ct", "connect_timeout") == 1);
  CHECK(closed(admin, "ne", "no_endpoint") == 1);
  CHECK(closed(admin, "lim", "limit") == 1);
  CHECK(closed(admin, "lim", "eof") == 1);
  CHECK(closed(admin, "sni", "no_route") == 1);
  CHECK(closed(admin, "sni", "client_hello") == 1);

  // shutdown: the stalled connection is open when the server closes every connection.
  const std::string b_client = client_of(b);
  ::shutdown(b.get(), SHUT_RDWR);  // the writer's send returns
  writer.join();
  p.srv->shutdown(true);  // the admin listener serves on until the server is waited for
  CHECK(line_of(access, b_client).at("close").as_string() == "shutdown");
  CHECK(closed(admin, "stall", "shutdown") == 1);
}

TEST_CASE(
    "close reasons: splice_refused is produced for real and read from the access log and "
    "/metrics",
    "[close_reasons][integration][splice]") {
  temp_dir d;
  const std::string access = d.file("access.log");
  upstream_server sink([](fd s) { recv_all(s.get()); });
  // splice(2) fails with EINVAL through the syscall seam, with engine splice: no fallback.
  zcproxy::sys::splice = [](int, loff_t*, int, loff_t*, size_t, unsigned) -> ssize_t {
    errno = EINVAL;
    return -1;
  };
  struct restore {
    ~restore() { zcproxy::sys::splice = ::splice; }
  } restore_splice;
  proxy p(zcproxy::load_config_string(
      "threads: 1\n" + access_config(access) +
          "relay: { engine: splice }\nadmin: { bind: \"127.0.0.1:0\" }\n"
          "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: sink }\n"
          "upstreams:\n  sink: { endpoints: [\"127.0.0.1:" +
          std::to_string(sink.port()) + "\"] }\n",
      "splice_refused.yaml"));
  fd c = connect_to(p.port());
  const std::string client = client_of(c);
  send_all(c.get(), "data", 4);
  CHECK(recv_all(c.get()).empty());
  p.wait_sessions();
  CHECK(line_of(access, client).at("close").as_string() == "splice_refused");
  CHECK(closed(p.control->admin_address()->port, "web", "splice_refused") == 1);
}
