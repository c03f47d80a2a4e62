// The admin API's run-time control of endpoints, through a real HTTP client (Beast) on loopback:
// the token (missing, wrong, right), bad input that changes nothing, drain under load (new
// connections go to the others while the drained endpoint's open transfer completes), weights
// that split new connections 1:3, maint that stops health checks, and a reload that keeps what
// was set. The binary with curl is in binary_test.cpp.
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cctype>
#include <future>
#include <string>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr const char* token = "0123456789abcdef-the-admin-token";

struct reply {
  unsigned status = 0;
  std::string body;
  std::string www_authenticate;
};

// One request on a connection of its own, by Beast's client, with this Authorization header
// (none when empty).
reply call_authorized(std::uint16_t port, http::verb verb, const std::string& target,
                      const std::string& body, const std::string& authorization) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!authorization.empty()) req.set(http::field::authorization, authorization);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  return {res.result_int(), res.body(), std::string(res[http::field::www_authenticate])};
}

reply call(std::uint16_t port, http::verb verb, const std::string& target,
           const std::string& body = "", const std::string& bearer = token) {
  return call_authorized(port, verb, target, body, bearer.empty() ? "" : "Bearer " + bearer);
}

std::string endpoint_path(std::uint16_t backend) {
  return "/upstreams/app/endpoints/127.0.0.1:" + std::to_string(backend);
}

reply change(std::uint16_t admin, std::uint16_t backend, const std::string& body,
             const std::string& bearer = token) {
  return call(admin, http::verb::post, endpoint_path(backend), body, bearer);
}

// The endpoint at 127.0.0.1:backend, as GET /upstreams/app shows it.
json::object shown(std::uint16_t admin, std::uint16_t backend) {
  const reply r = call(admin, http::verb::get, "/upstreams/app");
  REQUIRE(r.status == 200);
  const std::string address = "127.0.0.1:" + std::to_string(backend);
  const json::value v = json::parse(r.body);
  for (const auto& e : v.at("endpoints").as_array())
    if (e.at("address").as_string() == address) return e.as_object();
  FAIL("no endpoint " << address << " in " << r.body);
  return {};
}

std::string state_of(std::uint16_t admin, std::uint16_t backend) {
  return std::string(shown(admin, backend).at("state").as_string());
}

std::string ep(std::uint16_t port) {
  return "\"127.0.0.1:" + std::to_string(port) + "\"";
}

// The token in a file of mode 0600, as admin.token_file wants it.
std::string token_file(const temp_dir& d, const std::string& text = std::string(token) + "\n") {
  const std::string path = d.file("token", text);
  ::chmod(path.c_str(), 0600);
  return path;
}

std::string config_text(const std::string& endpoints, const std::string& admin_keys,
                        const std::string& upstream_keys = "") {
  return "threads: 2\nlog: { level: warn, access_log: false }\nlisteners:\n"
         "  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
         "upstreams:\n  app:\n    endpoints: [" +
         endpoints + "]\n" + upstream_keys + "admin: { bind: \"127.0.0.1:0\"" + admin_keys + " }\n";
}

std::uint16_t admin_port(const proxy& p) {
  return p.control->admin_address().value().port;
}

upstream_server echo() {
  return upstream_server(echo_handler());
}

}  // namespace

TEST_CASE("admin API: a change needs the token, and bad input changes nothing",
          "[admin][integration]") {
  temp_dir d;
  upstream_server a = echo(), b = echo();
  proxy p(zcproxy::load_config_string(
      config_text(ep(a.port()) + ", " + ep(b.port()), ", token_file: \"" + token_file(d) + "\""),
      "admin.yaml"));
  const std::uint16_t admin = admin_port(p);

  // Reading needs no token.
  const reply list = call(admin, http::verb::get, "/upstreams", "", "");
  REQUIRE(list.status == 200);
  const auto upstreams = json::parse(list.body).at("upstreams").as_array();
  REQUIRE(upstreams.size() == 1);
  CHECK(upstreams[0].at("name").as_string() == "app");
  CHECK(upstreams[0].at("endpoints").as_array().size() == 2);
  CHECK(state_of(admin, a.port()) == "ready");
  CHECK(shown(admin, a.port()).at("weight").to_number<std::int64_t>() == 1);

  // No token: 401 with a challenge; a wrong one (same length, one longer): 403.
  const reply none = change(admin, a.port(), R"({"state": "drain"})", "");
  CHECK(none.status == 401);
  CHECK(none.www_authenticate.starts_with("Bearer"));
  CHECK(
      change(admin, a.port(), R"({"state": "drain"})", "0123456789abcdef-the-admin-tokeN").status ==
      403);
  CHECK(change(admin, a.port(), R"({"state": "drain"})", std::string(token) + "x").status == 403);
  // Another scheme, or none: 401; the token in another case: 403.
  const std::string path_a = endpoint_path(a.port());
  for (const std::string& h : {"Basic " + std::string(token), std::string(token),
                               std::string("Bearer "), std::string("Bearer")}) {
    INFO(h);
    CHECK(call_authorized(admin, http::verb::post, path_a, R"({"state": "drain"})", h).status ==
          401);
  }
  std::string upper(token);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(call_authorized(admin, http::verb::post, path_a, R"({"state": "drain"})", "bearer " + upper)
            .status == 403);
  CHECK(state_of(admin, a.port()) == "ready");
  // The scheme's name in any case, and more than one space after it (RFC 9110 11.1, 11.4).
  for (const std::string scheme : {"bearer ", "BEARER ", "bEaReR   "}) {
    INFO(scheme);
    CHECK(call_authorized(admin, http::verb::post, path_a, R"({"weight": 2})",
                          scheme + std::string(token))
              .status == 200);
  }
  CHECK(change(admin, a.port(), R"({"weight": 1})").status == 200);
  // A key given twice means two things: refused, naming it, and nothing changes.
  for (const std::string body :
       {R"({"weight": 4, "weight": 9})", R"({"state": "drain", "weight": 2, "state": "maint"})"}) {
    INFO(body);
    const reply r = change(admin, a.port(), body);
    CHECK(r.status == 400);
    CHECK_THAT(r.body, Catch::Contains(body.find("\"state\": \"maint\"") != std::string::npos
                                           ? "\"state\" is given more than once"
                                           : "\"weight\" is given more than once"));
  }
  CHECK(state_of(admin, a.port()) == "ready");
  CHECK(shown(admin, a.port()).at("weight").to_number<std::int64_t>() == 1);

  // Bad input: a 4xx with a message, and nothing changed.
  struct bad_case {
    std::string target, body;
    unsigned status;
  };
  const bad_case bad[] = {
      {endpoint_path(a.port()), "{\"state\": ", 400},
      {endpoint_path(a.port()), "[1, 2]", 400},
      {endpoint_path(a.port()), "{}", 400},
      {endpoint_path(a.port()), R"({"state": "sleep"})", 400},
      {endpoint_path(a.port()), R"({"state": 1})", 400},
      {endpoint_path(a.port()), R"({"weight": 0})", 400},
      {endpoint_path(a.port()), R"({"weight": 257})", 400},
      {endpoint_path(a.port()), R"({"weight": "3"})", 400},
      {endpoint_path(a.port()), R"({"state": "drain", "wieght": 3})", 400},
      {"/upstreams/nope/endpoints/127.0.0.1:" + std::to_string(a.port()), R"({"state": "drain"})",
       404},
      {endpoint_path(dead_port()), R"({"state": "drain"})", 404},
      {"/upstreams/app/endpoints/not-an-address", R"({"state": "drain"})", 400},
      {"/upstreams/app/endpoints/127.0.0.1%3", R"({"state": "drain"})", 400},
  };
  for (const auto& c : bad) {
    INFO(c.target << " " << c.body);
    const reply r = call(admin, http::verb::post, c.target, c.body);
    CHECK(r.status == c.status);
    CHECK(!r.body.empty());
  }
  CHECK(call(admin, http::verb::get, "/upstreams/nope").status == 404);
  CHECK(call(admin, http::verb::put, endpoint_path(a.port()), R"({"state": "drain"})").status ==
        405);
  for (auto port : {a.port(), b.port()}) {
    CHECK(state_of(admin, port) == "ready");
    CHECK(shown(admin, port).at("weight").to_number<std::int64_t>() == 1);
  }

  // The right token: applied, and the answer shows it. %-escapes in the endpoint are decoded.
  const reply ok = call(admin, http::verb::post,
                        "/upstreams/app/endpoints/127.0.0.1%3A" + std::to_string(a.port()),
                        R"({"state": "maint", "weight": 7})");
  CHECK(ok.status == 200);
  CHECK(ok.body.find("\"maint\"") != std::string::npos);
  CHECK(state_of(admin, a.port()) == "maint");
  CHECK(shown(admin, a.port()).at("weight").to_number<std::int64_t>() == 7);
  CHECK(state_of(admin, b.port()) == "ready");
  const auto snapshot = p.srv->snapshot();
  CHECK(snapshot.endpoints.at(0).mode == zcproxy::endpoint_mode::maint);
  CHECK(!snapshot.endpoints.at(0).usable);
}

TEST_CASE("admin API: without a token file, or off loopback, changes are refused",
          "[admin][integration]") {
  upstream_server a = echo();
  proxy p(zcproxy::load_config_string(config_text(ep(a.port()), ""), "admin.yaml"));
  const reply r = change(admin_port(p), a.port(), R"({"state": "drain"})");
  CHECK(r.status == 403);
  CHECK(r.body.find("token_file") != std::string::npos);
  CHECK(state_of(admin_port(p), a.port()) == "ready");
  // The loopback rule is the admin's bind address; every address here is loopback, so it is
  // shown by the config the proxy was given, through its own check.
}

TEST_CASE("admin API: a drained endpoint takes no new connection, and its open transfer completes",
          "[admin][integration]") {
  temp_dir d;
  upstream_server a = echo(), b = echo();
  proxy p(zcproxy::load_config_string(
      config_text(ep(a.port()) + ", " + ep(b.port()), ", token_file: \"" + token_file(d) + "\""),
      "admin.yaml"));
  const std::uint16_t admin = admin_port(p);

  // A connection that stays open: which endpoint took it?
  fd held = connect_to(p.port());
  send_all(held.get(), "h", 1);
  REQUIRE(recv_exact(held.get(), 1) == bytes{'h'});
  upstream_server& busy = a.accepted() == 1 ? a : b;
  upstream_server& other = a.accepted() == 1 ? b : a;
  REQUIRE(busy.accepted() == 1);
  REQUIRE(other.accepted() == 0);

  REQUIRE(change(admin, busy.port(), R"({"state": "drain"})").status == 200);
  CHECK(shown(admin, busy.port()).at("active").to_number<std::int64_t>() == 1);

  // 64 MiB through the held connection while new connections keep coming.
  const bytes data = random_bytes(64 << 20, 61);
  constexpr int flow = 60;
  const bytes echoed = echo_through(held.get(), data, [&] {
    for (int i = 0; i < flow; ++i) CHECK(ping(p.port()));
  });
  CHECK(checksum(echoed) == checksum(data));
  shutdown_write(held.get());
  CHECK(recv_all(held.get()).empty());
  held.close();
  p.wait_sessions();
  const int busy_then = busy.accepted_settled();
  CHECK(busy_then == 1);
  CHECK(other.accepted_settled() == flow);

  // Ready again: it takes its turns (counted past the connection the count above made itself).
  REQUIRE(change(admin, busy.port(), R"({"state": "ready"})").status == 200);
  for (int i = 0; i < 4; ++i) CHECK(ping(p.port()));
  p.wait_sessions();
  CHECK(busy.accepted_settled() == busy_then + 1 + 2);
}

TEST_CASE("admin API: weights set at run time split new connections 1:3", "[admin][integration]") {
  temp_dir d;
  upstream_server a = echo(), b = echo();
  proxy p(zcproxy::load_config_string(
      config_text(ep(a.port()) + ", " + ep(b.port()), ", token_file: \"" + token_file(d) + "\""),
      "admin.yaml"));
  const std::uint16_t admin = admin_port(p);
  REQUIRE(change(admin, b.port(), R"({"weight": 3})").status == 200);
  CHECK(shown(admin, b.port()).at("weight").to_number<std::int64_t>() == 3);
  // Round robin plays the weights' cycle (a b b b, spread): 400 picks are 100 whole cycles.
  constexpr int n = 400;
  for (int i = 0; i < n; ++i) CHECK(ping(p.port()));
  p.wait_sessions();
  CHECK(a.accepted_settled() == n / 4);
  CHECK(b.accepted_settled() == 3 * n / 4);
}

TEST_CASE("admin API: maint stops an endpoint's health checks, drain does not",
          "[admin][integration]") {
  temp_dir d;
  upstream_server a([](fd) {}), b([](fd) {});  // accept and close: a check passes
  proxy p(zcproxy::load_config_string(
      config_text(ep(a.port()) + ", " + ep(b.port()), ", token_file: \"" + token_file(d) + "\"",
                  "    health_check: { interval: 50ms, timeout: 50ms }\n"),
      "admin.yaml"));
  const std::uint16_t admin = admin_port(p);
  // Drained: still checked.
  REQUIRE(change(admin, a.port(), R"({"state": "drain"})").status == 200);
  int a_then = a.accepted();
  REQUIRE(wait_until([&] { return a.accepted() >= a_then + 3; }));
  // Maint: not checked, while the other endpoint is checked 5 times more (one check of `a`
  // already under way may still land).
  REQUIRE(change(admin, a.port(), R"({"state": "maint"})").status == 200);
  a_then = a.accepted();
  const int b_then = b.accepted();
  REQUIRE(wait_until([&] { return b.accepted() >= b_then + 5; }));
  CHECK(a.accepted() <= a_then + 1);
  // Ready: checked again.
  REQUIRE(change(admin, a.port(), R"({"state": "ready"})").status == 200);
  a_then = a.accepted();
  REQUIRE(wait_until([&] { return a.accepted() >= a_then + 3; }));
}

TEST_CASE("admin API: a reload keeps run-time states and weights of the endpoints still there",
          "[admin][integration]") {
  temp_dir d;
  upstream_server a = echo(), b = echo(), c = echo();
  const std::string admin_keys = ", token_file: \"" + token_file(d) + "\"";
  proxy p(zcproxy::load_config_string(config_text(ep(a.port()) + ", " + ep(b.port()), admin_keys),
                                      "admin.yaml"));
  const std::uint16_t admin = admin_port(p);
  REQUIRE(change(admin, a.port(), R"({"state": "drain", "weight": 5})").status == 200);
  REQUIRE(change(admin, b.port(), R"({"weight": 9})").status == 200);

  // The same endpoints, and one more: a and b keep what was set, c starts ready.
  auto next = config_text(ep(a.port()) + ", " + ep(b.port()) + ", " + ep(c.port()), admin_keys);
  REQUIRE(p.srv->reload(zcproxy::load_config_string(next, "admin.yaml")).applied);
  CHECK(state_of(admin, a.port()) == "drain");
  CHECK(shown(admin, a.port()).at("weight").to_number<std::int64_t>() == 5);
  CHECK(shown(admin, b.port()).at("weight").to_number<std::int64_t>() == 9);
  CHECK(state_of(admin, c.port()) == "ready");

  // The file now gives b a weight of its own: the file's wins; a's state stays.
  next = config_text(ep(a.port()) + ", {address: " + ep(b.port()) + ", weight: 2}", admin_keys);
  REQUIRE(p.srv->reload(zcproxy::load_config_string(next, "admin.yaml")).applied);
  CHECK(state_of(admin, a.port()) == "drain");
  CHECK(shown(admin, b.port()).at("weight").to_number<std::int64_t>() == 2);
}
