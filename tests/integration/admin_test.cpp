// The admin listener on real loopback sockets: after known transfers, /metrics and /stats.json
// count exactly the bytes and connections moved; bytes show while a transfer runs; /healthz,
// POST /reload, methods, unknown paths, keep-alive, allow/deny, and a stalled client.
#include <sys/socket.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"

using namespace test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

struct http_response {
  int status = 0;
  std::string headers;
  std::string body;
};

http_response parse_response(const std::string& raw) {
  http_response r;
  const auto end = raw.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  r.headers = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  REQUIRE(raw.rfind("HTTP/1.1 ", 0) == 0);
  r.status = std::stoi(raw.substr(9, 3));
  return r;
}

// One request on a fresh connection (Connection: close), the whole response read.
http_response request(std::uint16_t port, const std::string& method, const std::string& path,
                      const std::string& body = "") {
  fd s = connect_to(port);
  const std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                          "Connection: close\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body;
  send_all(s.get(), req.data(), req.size());
  const bytes raw = recv_all(s.get());
  return parse_response(std::string(raw.begin(), raw.end()));
}

std::map<std::string, double> metrics(std::uint16_t port) {
  const auto r = request(port, "GET", "/metrics");
  REQUIRE(r.status == 200);
  CHECK_THAT(r.headers, Contains("Content-Type: text/plain; version=0.0.4"));
  return parse_prometheus(r.body);
}

std::uint16_t admin_port(const test::proxy& p) {
  return p.control->admin_address().value().port;
}

zcproxy::config with_admin(std::uint16_t backend, const std::string& listener_keys,
                           const std::string& admin_keys = "", const std::string& engine = "auto") {
  return zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app" + listener_keys +
          " }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:" + std::to_string(backend) +
          "\"] }\nadmin: { bind: \"127.0.0.1:0\"" + admin_keys + " }\n",
      "admin.yaml");
}

// A backend that reads the client's bytes to EOF, then answers with twice as many.
upstream_server doubler() {
  return upstream_server([](fd s) {
    const bytes in = recv_all(s.get());
    const bytes out = random_bytes(2 * in.size(), 5);
    send_all(s.get(), out);
  });
}

}  // namespace

TEST_CASE("admin: after known transfers, /metrics and /stats.json count exactly what moved",
          "[admin][integration]") {
  auto backend = doubler();
  test::proxy p(with_admin(backend.port(), ", deny: [\"127.0.0.9\"]"));
  constexpr std::size_t size = 1 << 20;
  for (int i = 0; i < 3; ++i) {
    fd c = connect_to(p.port());
    send_all(c.get(), random_bytes(size, static_cast<std::uint32_t>(i)));
    shutdown_write(c.get());
    CHECK(recv_all(c.get()).size() == 2 * size);
  }
  {
    fd denied = connect_from("127.0.0.9", p.port());
    CHECK(recv_to_end(denied.get()).data.empty());
  }
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));

  const auto m = metrics(admin_port(p));
  const std::string web = R"(listener="web")";
  CHECK(m.at("zcproxy_listener_connections_accepted_total{" + web + "}") == 4);
  CHECK(m.at("zcproxy_listener_connections_active{" + web + "}") == 0);
  CHECK(m.at("zcproxy_listener_connections_refused_total{" + web + R"(,reason="denied"})") == 1);
  CHECK(m.at("zcproxy_listener_connections_closed_total{" + web + R"(,reason="eof"})") == 3);
  CHECK(m.at("zcproxy_listener_bytes_total{" + web + R"(,direction="client_to_upstream"})") ==
        3 * size);
  CHECK(m.at("zcproxy_listener_bytes_total{" + web + R"(,direction="upstream_to_client"})") ==
        6 * size);
  // auto on loopback: splice, and nothing switched to copy.
  CHECK(m.at("zcproxy_listener_relayed_bytes_total{" + web + R"(,engine="splice"})") == 9 * size);
  CHECK(m.at("zcproxy_listener_relayed_bytes_total{" + web + R"(,engine="copy"})") == 0);
  CHECK(m.at("zcproxy_listener_session_duration_seconds_count{" + web + "}") == 4);
  const std::string ep =
      R"(upstream="app",endpoint="127.0.0.1:)" + std::to_string(backend.port()) + "\"";
  CHECK(m.at("zcproxy_endpoint_connections_total{" + ep + "}") == 3);
  CHECK(m.at("zcproxy_endpoint_connect_failures_total{" + ep + "}") == 0);
  CHECK(m.at("zcproxy_endpoint_bytes_total{" + ep + R"(,direction="upstream_to_client"})") ==
        6 * size);
  CHECK(m.at("zcproxy_endpoint_up{" + ep + "}") == 1);

  const auto r = request(admin_port(p), "GET", "/stats.json");
  REQUIRE(r.status == 200);
  CHECK_THAT(r.headers, Contains("Content-Type: application/json"));
  const auto root = boost::json::parse(r.body).as_object();
  const auto& l = root.at("listeners").as_array().at(0).as_object();
  CHECK(l.at("name").as_string() == "web");
  CHECK(l.at("accepted").to_number<int>() == 4);
  CHECK(l.at("bytes_up").to_number<std::uint64_t>() == 3 * size);
  CHECK(l.at("bytes_down").to_number<std::uint64_t>() == 6 * size);
  CHECK(l.at("closed").at("denied").to_number<int>() == 1);
  CHECK(root.at("endpoints").as_array().at(0).at("connections").to_number<int>() == 3);
}

TEST_CASE("admin: bytes count while a transfer runs, and connect failures per endpoint",
          "[admin][integration]") {
  const std::string engine = GENERATE("copy", "splice");
  INFO("engine " << engine);
  constexpr std::size_t size = 4 << 20, reply_size = 1 << 20;
  // Sends a reply first, then takes everything to EOF.
  auto backend = upstream_server([](fd s) {
    send_all(s.get(), random_bytes(reply_size, 2));
    recv_all(s.get());
  });
  const std::uint16_t dead = dead_port();
  test::proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
          "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
          std::to_string(dead) + "\", \"127.0.0.1:" + std::to_string(backend.port()) +
          "\"] }\nadmin: { bind: \"127.0.0.1:0\" }\n",
      "admin.yaml"));
  fd c = connect_to(p.port());
  CHECK(recv_exact(c.get(), reply_size).size() == reply_size);
  send_all(c.get(), random_bytes(size, 1));
  // The connection is still open: its bytes show already, the listener's and the endpoint's.
  const std::string ep =
      R"(upstream="app",endpoint="127.0.0.1:)" + std::to_string(backend.port()) + "\"";
  const std::string ep_up =
      "zcproxy_endpoint_bytes_total{" + ep + R"(,direction="client_to_upstream"})";
  const std::string ep_down =
      "zcproxy_endpoint_bytes_total{" + ep + R"(,direction="upstream_to_client"})";
  REQUIRE(wait_until([&] {
    const auto m = metrics(admin_port(p));
    return m.at(R"(zcproxy_listener_bytes_total{listener="web",direction="client_to_upstream"})") ==
               size &&
           m.at(ep_up) == size;
  }));
  const auto m = metrics(admin_port(p));
  CHECK(m.at(R"(zcproxy_listener_connections_active{listener="web"})") == 1);
  CHECK(m.at(R"(zcproxy_listener_relayed_bytes_total{listener="web",engine=")" + engine + "\"}") ==
        size + reply_size);
  CHECK(m.at(R"(zcproxy_listener_bytes_total{listener="web",direction="upstream_to_client"})") ==
        reply_size);
  CHECK(m.at(ep_up) == size);
  CHECK(m.at(ep_down) == reply_size);
  // /stats.json says the same.
  const auto r = request(admin_port(p), "GET", "/stats.json");
  REQUIRE(r.status == 200);
  const auto root = boost::json::parse(r.body).as_object();
  for (const auto& e : root.at("endpoints").as_array()) {
    if (e.at("address").as_string() != "127.0.0.1:" + std::to_string(backend.port())) continue;
    CHECK(e.at("bytes_up").to_number<std::uint64_t>() == size);
    CHECK(e.at("bytes_down").to_number<std::uint64_t>() == reply_size);
  }
  // Round-robin tried the dead endpoint first, or will for the next client: make sure of one.
  fd second = connect_to(p.port());
  shutdown_write(second.get());
  recv_all(second.get());
  const auto after = metrics(admin_port(p));
  CHECK(after.at(R"(zcproxy_endpoint_connect_failures_total{upstream="app",endpoint="127.0.0.1:)" +
                 std::to_string(dead) + "\"}") >= 1);
}

TEST_CASE("admin: /healthz, /stats, unknown paths, wrong methods, HEAD and keep-alive",
          "[admin][integration]") {
  auto backend = doubler();
  test::proxy p(with_admin(backend.port(), ""));
  const auto port = admin_port(p);
  auto health = request(port, "GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  auto page = request(port, "GET", "/stats");
  CHECK(page.status == 200);
  CHECK_THAT(page.headers, Contains("Content-Type: text/html"));
  CHECK_THAT(page.body, Contains("<svg"));
  CHECK(request(port, "GET", "/nope").status == 404);
  auto post = request(port, "POST", "/metrics", "x");
  CHECK(post.status == 405);
  CHECK_THAT(post.headers, Contains("Allow: GET, HEAD"));
  auto reload = request(port, "POST", "/reload");
  CHECK(reload.status == 403);
  CHECK_THAT(reload.body, Contains("admin.reload: true"));
  CHECK(request(port, "GET", "/reload").status == 405);
  auto head = request(port, "HEAD", "/metrics");
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  // Two requests on one connection, and a client that stalls mid-request blocks no one.
  fd stalled = connect_to(port);
  send_all(stalled.get(), "GET /met", 8);
  fd s = connect_to(port);
  const std::string two =
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send_all(s.get(), two.data(), two.size());
  const bytes raw = recv_all(s.get());
  const std::string text(raw.begin(), raw.end());
  std::size_t responses = 0;
  for (auto at = text.find("HTTP/1.1 200 OK"); at != std::string::npos;
       at = text.find("HTTP/1.1 200 OK", at + 1))
    ++responses;
  CHECK(responses == 2);

  // Draining: /healthz says so.
  p.srv->shutdown();
  auto draining = request(port, "GET", "/healthz");
  CHECK(draining.status == 503);
}

TEST_CASE("admin: allow/deny keeps other clients out", "[admin][integration]") {
  auto backend = doubler();
  test::proxy p(with_admin(backend.port(), "", ", allow: [\"127.0.0.2\"]"));
  fd out = connect_from("127.0.0.3", admin_port(p));
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(out.get(), req.data(), req.size(), MSG_NOSIGNAL);
  CHECK(recv_to_end(out.get()).data.empty());
  fd in = connect_from("127.0.0.2", admin_port(p));
  send_all(in.get(), req.data(), req.size());
  const bytes got = recv_exact(in.get(), 15);
  CHECK(std::string(got.begin(), got.end()) == "HTTP/1.1 200 OK");
}

TEST_CASE("admin: POST /reload rereads the config file, and refuses a broken one",
          "[admin][reload][integration]") {
  temp_dir d;
  auto a = doubler();
  auto b = upstream_server([](fd s) { send_all(s.get(), "B", 1); });
  auto yaml = [&](std::uint16_t port) {
    return "threads: 2\nlog: { level: warn, access_log: false }\n"
           "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
           "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
           std::to_string(port) + "\"] }\nadmin: { bind: \"127.0.0.1:0\", reload: true }\n";
  };
  const std::string file = d.file("zcproxy.yaml", yaml(a.port()));
  test::proxy p(zcproxy::load_config_file(file));
  const auto port = admin_port(p);
  { std::ofstream(file) << yaml(b.port()); }
  auto ok = request(port, "POST", "/reload");
  CHECK(ok.status == 200);
  fd c = connect_to(p.port());
  CHECK(recv_exact(c.get(), 1) == bytes{'B'});
  { std::ofstream(file) << "listeners: [\n"; }
  auto refused = request(port, "POST", "/reload");
  CHECK(refused.status == 422);
  CHECK_THAT(refused.body, StartsWith("reload refused, the running config stays: "));
  const auto m = metrics(port);
  CHECK(m.at(R"(zcproxy_config_reloads_total{result="applied"})") == 1);
  CHECK(m.at(R"(zcproxy_config_reloads_total{result="refused"})") == 1);
}
