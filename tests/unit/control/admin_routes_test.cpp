// The admin route table's dispatch, without a socket or a running proxy: unknown paths, wrong
// methods (and their Allow), HEAD, the token, routes that are off, captures and the order of
// matching; then the admin's own table: every route has help and a method, it routes the paths
// the integration tests use, and its list is what --check prints.
#include "control/admin_routes.hpp"

#include <boost/beast/http/field.hpp>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "zcproxy/admin.hpp"
#include "zcproxy/control_api.hpp"

using namespace zcproxy;
namespace http = boost::beast::http;
using Catch::Matchers::Contains;

namespace {

// Says that it ran, and what the pattern captured: "ran a|b".
void echo(admin_call& c) {
  std::string out = "ran";
  for (std::size_t i = 0; i < c.captures.size(); ++i)
    out += (i ? "|" : " ") + std::string(c.captures[i]);
  c.res.set(http::field::content_type, "text/plain");
  c.res.body() = out;
}

std::optional<std::string> always_off(const admin_config&) {
  return "off for the test";
}

constexpr admin_route table[] = {
    {.pattern = "/things/NAME/parts/PART",
     .methods = admin_post,
     .needs_token = true,
     .help = "change a part",
     .handler = echo},
    {.pattern = "/things/NAME", .methods = admin_get, .help = "one thing", .handler = echo},
    {.pattern = "/page", .methods = admin_get, .help = "a page", .handler = echo},
    {.pattern = "/both", .methods = admin_get | admin_post, .help = "either", .handler = echo},
    {.pattern = "/off",
     .methods = admin_post,
     .needs_token = true,
     .help = "never served here",
     .handler = echo,
     .off = always_off},
};

constexpr const char* secret = "0123456789abcdef-the-admin-token";

admin_config with_token(std::string token = secret) {
  admin_config cfg;
  cfg.bind = {"127.0.0.1", 9901};
  cfg.token = std::move(token);
  return cfg;
}

using routed = std::variant<admin_match, admin_answer>;

routed route(std::span<const admin_route> t, const admin_config& cfg, http::verb method,
             std::string_view target, std::string_view authorization = "") {
  return dispatch(t, cfg, method, target, authorization);
}

// The answer, failing the test when the request was routed to a handler instead.
admin_answer answer_of(const routed& r) {
  REQUIRE(std::holds_alternative<admin_answer>(r));
  return std::get<admin_answer>(r);
}

admin_match match_of(const routed& r) {
  if (const auto* a = std::get_if<admin_answer>(&r))
    FAIL("answered " << static_cast<unsigned>(a->status) << ": " << a->body);
  return std::get<admin_match>(r);
}

// The value of `field` among an answer's headers; empty when it has none.
std::string header(const admin_answer& a, http::field field) {
  for (const auto& [f, v] : a.headers)
    if (f == field) return v;
  return {};
}

std::vector<std::string> captures(const admin_match& m) {
  return {m.captures.begin(), m.captures.end()};
}

// A proxy that records what the admin asked of it.
struct fake_proxy final : control_api {
  bool drain = false;
  int reloads = 0;
  std::vector<std::string> updates;  // "UPSTREAM ADDRESS"

  proxy_stats snapshot() override { return {}; }
  reload_result reload_from_file() override {
    ++reloads;
    return reload_result::done();
  }
  endpoint_update_result update_endpoint(std::string_view upstream, const address& at,
                                         const endpoint_update&) override {
    updates.push_back(std::string(upstream) + " " + at.to_string());
    return {endpoint_update_result::status::no_upstream, "no upstream " + std::string(upstream)};
  }
  bool draining() const override { return drain; }
};

admin_request request(http::verb method, std::string target, std::string authorization = "",
                      std::string body = "") {
  admin_request req{method, target, 11};
  if (!authorization.empty()) req.set(http::field::authorization, authorization);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// Every header of `res`, in order, as "Name: value".
std::vector<std::string> headers_of(const admin_response& res) {
  std::vector<std::string> out;
  for (const auto& f : res)
    out.push_back(std::string(f.name_string()) + ": " + std::string(f.value()));
  return out;
}

}  // namespace

TEST_CASE("admin routes: an unknown path is 404, and the answer lists what is served",
          "[admin][routes]") {
  const admin_config cfg = with_token();
  for (const char* target : {"/nope", "/", "/pagex", "/page/", "/pag", "/things", "/both/x"}) {
    INFO(target);
    const auto a = answer_of(route(table, cfg, http::verb::get, target));
    CHECK(a.status == http::status::not_found);
    CHECK_THAT(a.body, Contains("GET /page: a page") && Contains("POST /things/NAME/parts/PART"));
    // A route that is off is not offered.
    CHECK(a.body.find("never served here") == std::string::npos);
  }
  // The query is not part of the path.
  CHECK(captures(match_of(route(table, cfg, http::verb::get, "/page?x=1&y=/nope"))).empty());
}

TEST_CASE("admin routes: a known path with a method it does not take is 405 with its Allow",
          "[admin][routes]") {
  const admin_config cfg = with_token();
  struct wrong_case {
    http::verb method;
    const char* target;
    const char* allow;
    const char* body;
  };
  const wrong_case cases[] = {
      {http::verb::post, "/page", "GET, HEAD", "use GET\n"},
      {http::verb::delete_, "/things/a", "GET, HEAD", "use GET\n"},
      {http::verb::get, "/things/a/parts/b", "POST", "use POST\n"},
      {http::verb::head, "/things/a/parts/b", "POST", "use POST\n"},
      {http::verb::put, "/both", "GET, HEAD, POST", "use GET or POST\n"},
      // The method is answered before the route is found off, or the token asked for.
      {http::verb::get, "/off", "POST", "use POST\n"},
  };
  for (const auto& c : cases) {
    INFO(c.target << " " << c.method);
    const auto a = answer_of(route(table, cfg, c.method, c.target));
    CHECK(a.status == http::status::method_not_allowed);
    CHECK(header(a, http::field::allow) == c.allow);
    CHECK(a.body == c.body);
  }
  // The methods it does take reach the handler: HEAD with GET.
  for (auto method : {http::verb::get, http::verb::head, http::verb::post})
    CHECK(match_of(route(table, cfg, method, "/both")).route == &table[3]);
  CHECK(match_of(route(table, cfg, http::verb::head, "/page")).route == &table[2]);
}

TEST_CASE("admin routes: a token route without, with a wrong and with the right token",
          "[admin][routes]") {
  const admin_config cfg = with_token();
  const std::string target = "/things/app/parts/127.0.0.1:80";
  const std::string token(secret);
  // No credentials, or not a bearer's: 401 with a challenge.
  for (const std::string& h : {std::string(), "Basic " + token, token, std::string("Bearer "),
                               std::string("Bearer"), std::string("Bearertoken")}) {
    INFO("Authorization: " << h);
    const auto a = answer_of(route(table, cfg, http::verb::post, target, h));
    CHECK(a.status == http::status::unauthorized);
    CHECK(header(a, http::field::www_authenticate) == "Bearer realm=\"zcproxy\"");
  }
  // A bearer token that is not the one (one byte off, one byte more, one less, another case): 403.
  std::string upper = token;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const std::string off_by_one = token.substr(0, token.size() - 1) + "X";
  for (const std::string& t : {off_by_one, token + "x", token.substr(1), upper}) {
    INFO("Bearer " << t);
    const auto a = answer_of(route(table, cfg, http::verb::post, target, "Bearer " + t));
    CHECK(a.status == http::status::forbidden);
    CHECK(a.body == "wrong token\n");
  }
  // The right one: the handler runs, whatever the scheme's case and the spaces after it.
  for (const std::string scheme : {"Bearer ", "bearer ", "bEaReR   "}) {
    INFO(scheme);
    const auto m = match_of(route(table, cfg, http::verb::post, target, scheme + token));
    CHECK(m.route == &table[0]);
    CHECK(captures(m) == std::vector<std::string>{"app", "127.0.0.1:80"});
  }
  // A route without the flag asks for nothing, and a wrong token does not stop it.
  CHECK(match_of(route(table, cfg, http::verb::get, "/page", "Bearer nope")).route == &table[2]);
  // A listener without a token asks for none.
  CHECK(match_of(route(table, admin_config{}, http::verb::post, target)).route == &table[0]);
}

TEST_CASE("admin routes: a route that is off is 403 with why, even with the token",
          "[admin][routes]") {
  const admin_config cfg = with_token();
  for (const std::string& h : {std::string(), "Bearer " + std::string(secret)}) {
    const auto a = answer_of(route(table, cfg, http::verb::post, "/off", h));
    CHECK(a.status == http::status::forbidden);
    CHECK(a.body == "off for the test\n");
  }
  CHECK(listed_paths(table, cfg) ==
        "POST /things/NAME/parts/PART, /things/NAME, /page, GET|POST /both");
}

TEST_CASE("admin routes: captures, and the first matching route wins", "[admin][routes]") {
  const admin_config cfg;  // no token
  // A capture runs to the text after it; the last one takes the rest, slashes and all.
  CHECK(
      captures(match_of(route(table, cfg, http::verb::post, "/things/a/parts/unix:/run/x.sock"))) ==
      std::vector<std::string>{"a", "unix:/run/x.sock"});
  // %-escapes are left to the handler, and an empty capture is the handler's to refuse.
  CHECK(captures(match_of(route(table, cfg, http::verb::get, "/things/a%2Fb"))) ==
        std::vector<std::string>{"a%2Fb"});
  CHECK(captures(match_of(route(table, cfg, http::verb::get, "/things/"))) ==
        std::vector<std::string>{""});
  // /things/NAME would take this path too: the route listed first has it (so GET is 405).
  CHECK(answer_of(route(table, cfg, http::verb::get, "/things/a/parts/b")).status ==
        http::status::method_not_allowed);
  // Without "/parts/" it is /things/NAME's, slashes in NAME and all.
  CHECK(captures(match_of(route(table, cfg, http::verb::get, "/things/a/parts"))) ==
        std::vector<std::string>{"a/parts"});
}

TEST_CASE("admin routes: HEAD answers with GET's status and headers, and no body",
          "[admin][routes]") {
  fake_proxy proxy;
  const admin_config cfg = with_token();
  const std::deque<throughput_sample> history;
  admin_context ctx{proxy, cfg, history};
  for (const char* target : {"/page", "/things/a", "/nope"}) {
    INFO(target);
    const admin_response get = respond(table, ctx, request(http::verb::get, target));
    const admin_response head = respond(table, ctx, request(http::verb::head, target));
    REQUIRE(!get.body().empty());
    CHECK(head.result() == get.result());
    CHECK(headers_of(head) == headers_of(get));
    CHECK(std::string(head[http::field::content_length]) == std::to_string(get.body().size()));
    CHECK(head.body().empty());
  }
  const admin_response page = respond(table, ctx, request(http::verb::get, "/things/a"));
  CHECK(page.result() == http::status::ok);
  CHECK(page.body() == "ran a");
  CHECK(std::string(page[http::field::server]).starts_with("zcproxy/"));
  CHECK(std::string(page[http::field::cache_control]) == "no-store");
  // An answer without a handler is text, with its own headers.
  const admin_response wrong = respond(table, ctx, request(http::verb::post, "/page"));
  CHECK(wrong.result() == http::status::method_not_allowed);
  CHECK(std::string(wrong[http::field::allow]) == "GET, HEAD");
  CHECK(std::string(wrong[http::field::content_type]) == "text/plain");
  CHECK(wrong.body() == "use GET\n");
}

TEST_CASE("admin routes: every route of the admin's table has help and a method",
          "[admin][routes]") {
  const auto routes = admin_table();
  REQUIRE(!routes.empty());
  std::set<std::string_view> patterns;
  for (const auto& r : routes) {
    INFO(r.pattern);
    CHECK(r.pattern.starts_with("/"));
    CHECK(!r.help.empty());
    CHECK(r.help.find('\n') == std::string_view::npos);
    CHECK(r.methods != 0);
    CHECK((r.methods & ~unsigned(admin_get | admin_post)) == 0);
    CHECK(r.handler != nullptr);
    CHECK(patterns.insert(r.pattern).second);
  }
}

TEST_CASE("admin routes: the admin's table routes its paths, and lists what --check prints",
          "[admin][routes]") {
  admin_config cfg;
  cfg.bind = {"127.0.0.1", 9901};
  CHECK(listed_paths(admin_table(), cfg) ==
        "/stats, /stats.json, /metrics, /healthz, /upstreams, /upstreams/NAME, /");
  cfg.reload = true;
  cfg.token = secret;
  CHECK(admin_paths(cfg) ==
        "/stats, /stats.json, /metrics, /healthz, /upstreams, POST /reload, "
        "POST /upstreams/NAME/endpoints/ENDPOINT, /upstreams/NAME, /");
  const auto routes = admin_table();
  CHECK(match_of(route(routes, cfg, http::verb::get, "/upstreams/app")).route->pattern ==
        "/upstreams/NAME");
  CHECK(match_of(route(routes, cfg, http::verb::get, "/upstreams")).route->pattern == "/upstreams");
  const auto get_endpoint =
      answer_of(route(routes, cfg, http::verb::get, "/upstreams/app/endpoints/127.0.0.1:80"));
  CHECK(header(get_endpoint, http::field::allow) == "POST");
  CHECK(header(answer_of(route(routes, cfg, http::verb::post, "/metrics")), http::field::allow) ==
        "GET, HEAD");
  // Off a loopback address, run-time changes are refused, and not listed.
  cfg.bind.ip = "10.0.0.1";
  const auto far =
      answer_of(route(routes, cfg, http::verb::post, "/upstreams/app/endpoints/127.0.0.1:80",
                      "Bearer " + std::string(secret)));
  CHECK(far.status == http::status::forbidden);
  CHECK_THAT(far.body, Contains("loopback"));
  CHECK(admin_paths(cfg).find("/endpoints/") == std::string::npos);
}

TEST_CASE("admin routes: the admin's handlers, on a fake proxy", "[admin][routes]") {
  fake_proxy proxy;
  admin_config cfg = with_token();
  cfg.reload = true;
  const std::deque<throughput_sample> history;
  admin_context ctx{proxy, cfg, history};
  const auto call = [&](http::verb method, std::string target, std::string authorization = "",
                        std::string body = "") {
    return respond(admin_table(), ctx, request(method, target, authorization, body));
  };
  const std::string bearer = "Bearer " + std::string(secret);

  CHECK(call(http::verb::get, "/healthz").body() == "ok\n");
  proxy.drain = true;
  const auto draining = call(http::verb::get, "/healthz");
  CHECK(draining.result() == http::status::service_unavailable);
  CHECK(draining.body() == "draining\n");

  const auto index = call(http::verb::get, "/");
  CHECK(index.result() == http::status::found);
  CHECK(std::string(index[http::field::location]) == "/stats");

  // Reload asks for the token the listener has, and runs only with it.
  CHECK(call(http::verb::post, "/reload").result() == http::status::unauthorized);
  CHECK(call(http::verb::post, "/reload", "Bearer wrong").result() == http::status::forbidden);
  CHECK(proxy.reloads == 0);
  const auto reloaded = call(http::verb::post, "/reload", bearer);
  CHECK(reloaded.body() == "reloaded\n");
  CHECK(proxy.reloads == 1);

  // An endpoint change: bad input never reaches the proxy; good input does, %-decoded.
  CHECK(call(http::verb::post, "/upstreams/app/endpoints/127.0.0.1:80", bearer, "{\"state\": 1}")
            .result() == http::status::bad_request);
  CHECK(call(http::verb::post, "/upstreams/app/endpoints/127.0.0.1%3", bearer, "{}").result() ==
        http::status::bad_request);
  CHECK(proxy.updates.empty());
  const auto missing = call(http::verb::post, "/upstreams/a%70p/endpoints/127.0.0.1%3A80", bearer,
                            R"({"state": "drain"})");
  CHECK(missing.result() == http::status::not_found);
  CHECK(proxy.updates == std::vector<std::string>{"app 127.0.0.1:80"});
}
