// The admin listener's own routes and their handlers: the table is the one place that says what
// the listener serves; admin_routes.cpp answers methods, HEAD, the token and 404 for all of them.
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>

#include "admin_routes.hpp"
#include "zcproxy/control_api.hpp"

namespace zcproxy {
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

// %XX escapes decoded (an endpoint in a path: unix%3A%2Frun%2Fapp.sock); nullopt when malformed.
std::optional<std::string> percent_decoded(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= in.size() ||
        std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16).ptr != in.data() + i + 3)
      return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

// The first key that an object of the JSON text `body` repeats at its top level, if any: Boost.JSON
// keeps one value of a repeated key without a word, and a change request should mean one thing.
// A SAX pass (basic_parser) over the same text json::parse then reads.
class repeated_key_finder {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::optional<std::string> repeated;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { return ++depth_, true; }
  bool on_object_end(std::size_t, boost::system::error_code&) { return --depth_, true; }
  bool on_array_begin(boost::system::error_code&) { return ++depth_, true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return --depth_, true; }
  bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
    key_ += s;
    return true;
  }
  bool on_key(json::string_view s, std::size_t, boost::system::error_code&) {
    key_ += s;
    if (depth_ == 1 && !repeated && std::find(keys_.begin(), keys_.end(), key_) != keys_.end())
      repeated = key_;
    if (depth_ == 1) keys_.push_back(key_);
    key_.clear();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, json::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }

 private:
  int depth_ = 0;
  std::string key_;
  std::vector<std::string> keys_;
};

std::optional<std::string> repeated_key(std::string_view body) {
  json::basic_parser<repeated_key_finder> p{json::parse_options{}};
  boost::system::error_code ec;
  p.write_some(false, body.data(), body.size(), ec);
  return ec ? std::nullopt : p.handler().repeated;
}

// The body of a change to an endpoint: {"state": "ready"|"drain"|"maint", "weight": 1..256},
// either or both, nothing else; or why not.
std::variant<endpoint_update, std::string> parse_endpoint_update(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec) return "the body is not JSON: " + ec.message();
  if (!v.is_object()) return std::string("expected a JSON object {\"state\", \"weight\"}");
  if (const auto key = repeated_key(body)) return "\"" + *key + "\" is given more than once";
  endpoint_update u;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "state") {
      const auto* text = value.if_string();
      u.mode = text ? parse_endpoint_mode(*text) : std::nullopt;
      if (!u.mode) return std::string("state: expected \"ready\", \"drain\" or \"maint\"");
    } else if (key == "weight") {
      const auto w = value.is_int64() ? value.as_int64() : 0;
      if (w < 1 || w > 256) return std::string("weight: expected an integer from 1 to 256");
      u.weight = static_cast<unsigned>(w);
    } else {
      return "unknown key \"" + std::string(key) + "\"; expected state and/or weight";
    }
  }
  if (!u.mode && !u.weight) return std::string("nothing to change: give state and/or weight");
  return u;
}

void reply(admin_call& c, http::status status, std::string_view type, std::string body) {
  c.res.result(status);
  c.res.set(http::field::content_type, type);
  c.res.body() = std::move(body);
}

// A line of text: an error, or a short outcome.
void say(admin_call& c, http::status status, std::string text) {
  reply(c, status, "text/plain", std::move(text) + "\n");
}

void to_stats_page(admin_call& c) {
  c.res.result(http::status::found);
  c.res.set(http::field::location, "/stats");
}

void stats_page(admin_call& c) {
  reply(c, http::status::ok, "text/html; charset=utf-8", std::string(stats_page_html()));
}

void stats_json(admin_call& c) {
  const auto& h = c.ctx.history;
  reply(c, http::status::ok, "application/json",
        render_stats_json(c.ctx.api.snapshot(), {h.begin(), h.end()}));
}

void metrics(admin_call& c) {
  reply(c, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
        render_prometheus(c.ctx.api.snapshot()));
}

void healthz(admin_call& c) {
  if (c.ctx.api.draining())
    say(c, http::status::service_unavailable, "draining");
  else
    say(c, http::status::ok, "ok");
}

void all_upstreams(admin_call& c) {
  reply(c, http::status::ok, "application/json",
        render_upstreams_json(c.ctx.api.snapshot()).value_or("{}"));
}

void one_upstream(admin_call& c) {
  const auto name = percent_decoded(c.captures[0]);
  if (!name) return say(c, http::status::bad_request, "a bad %-escape in the path");
  const auto body = render_upstreams_json(c.ctx.api.snapshot(), *name);
  if (!body) return say(c, http::status::not_found, "no upstream " + *name);
  reply(c, http::status::ok, "application/json", *body);
}

void reload(admin_call& c) {
  const reload_result r = c.ctx.api.reload_from_file();
  if (r.applied)
    say(c, http::status::ok, "reloaded");
  else
    say(c, http::status::unprocessable_entity,
        "reload refused, the running config stays: " + r.error);
}

// {"state": ..., "weight": ...} to the endpoint ENDPOINT of upstream NAME; answers with the
// upstream as it is now.
void change_endpoint(admin_call& c) {
  const auto name = percent_decoded(c.captures[0]);
  const auto endpoint = percent_decoded(c.captures[1]);
  if (!name || !endpoint) return say(c, http::status::bad_request, "a bad %-escape");
  std::string why;
  const auto address = parse_address(*endpoint, why);
  if (!address) return say(c, http::status::bad_request, "endpoint " + *endpoint + ": " + why);
  auto update = parse_endpoint_update(c.req.body());
  if (auto* error = std::get_if<std::string>(&update))
    return say(c, http::status::bad_request, *error);
  const auto r = c.ctx.api.update_endpoint(*name, *address, std::get<endpoint_update>(update));
  using status = endpoint_update_result::status;
  if (r.what != status::applied)
    return say(c, r.what == status::invalid ? http::status::bad_request : http::status::not_found,
               r.error);
  reply(c, http::status::ok, "application/json",
        render_upstreams_json(c.ctx.api.snapshot(), *name).value_or("{}"));
}

std::optional<std::string> reload_off(const admin_config& cfg) {
  if (cfg.reload) return std::nullopt;
  return "reload over HTTP is off; set admin.reload: true to allow it";
}

// Run-time changes are taken with a token, on a loopback listener only.
std::optional<std::string> changes_off(const admin_config& cfg) {
  if (cfg.token.empty()) return "run-time changes are off; set admin.token_file to allow them";
  if (!boost::asio::ip::make_address(cfg.bind.ip).is_loopback())
    return "run-time changes are taken only on a loopback admin listener";
  return std::nullopt;
}

// The first match wins: /upstreams/NAME/endpoints/ENDPOINT comes before /upstreams/NAME, whose
// NAME would take the rest. The order is also the list's (start-up line, --check, 404).
constexpr admin_route routes[] = {
    {.pattern = "/stats",
     .methods = admin_get,
     .help = "a live page of the counters and the last minute of throughput (HTML)",
     .handler = stats_page},
    {.pattern = "/stats.json",
     .methods = admin_get,
     .help = "the stats page's data, with the last minute of throughput (JSON)",
     .handler = stats_json},
    {.pattern = "/metrics",
     .methods = admin_get,
     .help = "the counters in Prometheus text format 0.0.4",
     .handler = metrics},
    {.pattern = "/healthz",
     .methods = admin_get,
     .help = "200 ok, or 503 draining once a drain has begun",
     .handler = healthz},
    {.pattern = "/upstreams",
     .methods = admin_get,
     .help = "every upstream's endpoints: state, weight, health, connections (JSON)",
     .handler = all_upstreams},
    {.pattern = "/reload",
     .methods = admin_post,
     .needs_token = true,
     .help = "reread the config file, as SIGHUP does: 200, or 422 with why",
     .handler = reload,
     .off = reload_off},
    {.pattern = "/upstreams/NAME/endpoints/ENDPOINT",
     .methods = admin_post,
     .needs_token = true,
     .help = "set an endpoint's state and/or weight: {\"state\": \"drain\", \"weight\": 3}",
     .handler = change_endpoint,
     .off = changes_off},
    {.pattern = "/upstreams/NAME",
     .methods = admin_get,
     .help = "one upstream's endpoints (JSON)",
     .handler = one_upstream},
    {.pattern = "/", .methods = admin_get, .help = "redirects to /stats", .handler = to_stats_page},
};

}  // namespace

std::span<const admin_route> admin_table() {
  return routes;
}

}  // namespace zcproxy
