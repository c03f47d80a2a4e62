#include "zcproxy/admin.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <variant>

#include "metrics.hpp"
#include "zcproxy/acl.hpp"
#include "zcproxy/control_api.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto request_timeout = 30s;  // to send a whole request, and between requests
constexpr std::size_t history_seconds = 60;

// Total bytes relayed so far, both directions, over the snapshot's listeners.
std::pair<std::uint64_t, std::uint64_t> bytes_moved(const proxy_stats& s) {
  std::uint64_t up = 0, down = 0;
  for (const auto& l : s.listeners) {
    up += l.bytes_up;
    down += l.bytes_down;
  }
  return {up, down};
}

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

// Equal, in a time that does not depend on where they differ (the length is no secret).
bool same_secret(std::string_view given, std::string_view secret) {
  if (secret.empty() || given.size() != secret.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < secret.size(); ++i) diff |= given[i] ^ secret[i];
  return diff == 0;
}

// The credentials of an `Authorization: Bearer TOKEN` header: the scheme's name is compared in
// any case, and one or more spaces follow it (RFC 9110 11.1, 11.4); the token is as sent.
std::optional<std::string_view> bearer_token(std::string_view header) {
  constexpr std::string_view scheme = "bearer";
  const auto space = header.find(' ');
  if (space != scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), header.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
    return std::nullopt;
  const auto token = header.find_first_not_of(' ', space);
  if (token == std::string_view::npos) return std::nullopt;
  return header.substr(token);
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

// Run-time changes are taken with a token, on a loopback listener only.
bool takes_changes(const admin_config& cfg) {
  return !cfg.token.empty() && asio::ip::make_address(cfg.bind.ip).is_loopback();
}

}  // namespace

std::string admin_paths(const admin_config& cfg) {
  std::string out = "/stats, /stats.json, /metrics, /healthz, /upstreams";
  if (cfg.reload) out += ", POST /reload";
  if (takes_changes(cfg)) out += ", POST /upstreams/NAME/endpoints/ENDPOINT";
  return out;
}

struct admin_server::impl {
  impl(control_api& api, const admin_config& cfg)
      : api(api), cfg(cfg), access(cfg.allow, cfg.deny), acceptor(io), sampler(io) {}

  control_api& api;
  const admin_config cfg;
  const acl access;
  asio::io_context io{1};
  tcp::acceptor acceptor;
  asio::steady_timer sampler;
  std::thread thread;

  // The last minute of throughput, one sample a second (touched on the admin thread only).
  std::deque<throughput_sample> history;
  std::uint64_t last_up = 0, last_down = 0;
  std::chrono::steady_clock::time_point last_time;

  asio::awaitable<void> sample_loop() {
    bool first = true;
    for (;;) {
      const proxy_stats s = api.snapshot();
      const auto now = std::chrono::steady_clock::now();
      const auto [up, down] = bytes_moved(s);
      if (!first) {
        const double dt = std::chrono::duration<double>(now - last_time).count();
        // A reload that drops a listener drops its counts: never a negative rate.
        auto rate = [dt](std::uint64_t now_bytes, std::uint64_t before) {
          return now_bytes >= before && dt > 0 ? static_cast<double>(now_bytes - before) / dt : 0;
        };
        history.push_back({s.now, rate(up, last_up), rate(down, last_down)});
        if (history.size() > history_seconds) history.pop_front();
      }
      first = false;
      last_up = up;
      last_down = down;
      last_time = now;
      sampler.expires_after(1s);
      auto [ec] = co_await sampler.async_wait(use_tuple);
      if (ec) co_return;
    }
  }

  http::response<http::string_body> handle(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "zcproxy/" ZCPROXY_VERSION);
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    auto reply = [&](http::status status, std::string_view type, std::string body) {
      res.result(status);
      res.set(http::field::content_type, type);
      res.body() = std::move(body);
    };
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    const bool read_only = req.method() == http::verb::get || req.method() == http::verb::head;
    constexpr std::string_view upstreams_path = "/upstreams";
    if (path == upstreams_path || path.starts_with("/upstreams/")) {
      upstreams(req, path.substr(upstreams_path.size()), res);
    } else if (path == "/reload") {
      if (req.method() != http::verb::post) {
        res.set(http::field::allow, "POST");
        reply(http::status::method_not_allowed, "text/plain", "use POST\n");
      } else if (!cfg.reload) {
        reply(http::status::forbidden, "text/plain",
              "reload over HTTP is off; set admin.reload: true to allow it\n");
      } else if (!cfg.token.empty() && !authorized(req, res)) {
        // answered
      } else {
        const reload_result r = api.reload_from_file();
        if (r.applied)
          reply(http::status::ok, "text/plain", "reloaded\n");
        else
          reply(http::status::unprocessable_entity, "text/plain",
                "reload refused, the running config stays: " + r.error + "\n");
      }
    } else if (path == "/metrics" || path == "/stats" || path == "/stats.json" ||
               path == "/healthz" || path == "/") {
      if (!read_only) {
        res.set(http::field::allow, "GET, HEAD");
        reply(http::status::method_not_allowed, "text/plain", "use GET\n");
      } else if (path == "/metrics") {
        reply(http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
              render_prometheus(api.snapshot()));
      } else if (path == "/stats.json") {
        reply(http::status::ok, "application/json",
              render_stats_json(api.snapshot(), {history.begin(), history.end()}));
      } else if (path == "/stats") {
        reply(http::status::ok, "text/html; charset=utf-8", std::string(stats_page_html()));
      } else if (path == "/healthz") {
        if (api.draining())
          reply(http::status::service_unavailable, "text/plain", "draining\n");
        else
          reply(http::status::ok, "text/plain", "ok\n");
      } else {
        res.result(http::status::found);
        res.set(http::field::location, "/stats");
      }
    } else {
      reply(http::status::not_found, "text/plain", "not found; try " + admin_paths(cfg) + "\n");
    }
    res.prepare_payload();  // HEAD: Content-Length of the body a GET would get
    if (req.method() == http::verb::head) res.body().clear();
    return res;
  }

  using request = http::request<http::string_body>;
  using response = http::response<http::string_body>;

  static void answer(response& res, http::status status, std::string text) {
    res.result(status);
    res.set(http::field::content_type, "text/plain");
    res.body() = std::move(text) + "\n";
  }

  // Whether the request carries the token (`Authorization: Bearer TOKEN`, the scheme's name in
  // any case, RFC 9110 11.1); else answered 401 (no token) or 403 (a wrong one).
  bool authorized(const request& req, response& res) const {
    const auto token = bearer_token(req[http::field::authorization]);
    if (!token) {
      res.set(http::field::www_authenticate, "Bearer realm=\"zcproxy\"");
      answer(res, http::status::unauthorized,
             "this call needs the admin token: Authorization: Bearer <token>");
      return false;
    }
    if (!same_secret(*token, cfg.token)) {
      answer(res, http::status::forbidden, "wrong token");
      return false;
    }
    return true;
  }

  // /upstreams[/NAME[/endpoints/ENDPOINT]] (`rest` is what follows /upstreams): GET lists, POST
  // to an endpoint changes its state or weight.
  void upstreams(const request& req, std::string_view rest, response& res) {
    constexpr std::string_view endpoints = "/endpoints/";
    const auto at = rest.find(endpoints);
    if (at == std::string_view::npos) {
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.set(http::field::allow, "GET, HEAD");
        return answer(res, http::status::method_not_allowed, "use GET");
      }
      const auto name = percent_decoded(rest.empty() ? rest : rest.substr(1));
      if (!name) return answer(res, http::status::bad_request, "a bad %-escape in the path");
      const auto body =
          render_upstreams_json(api.snapshot(), rest.empty() ? std::nullopt : std::optional(*name));
      if (!body) return answer(res, http::status::not_found, "no upstream " + *name);
      res.set(http::field::content_type, "application/json");
      res.body() = *body;
      return;
    }
    if (req.method() != http::verb::post) {
      res.set(http::field::allow, "POST");
      return answer(res, http::status::method_not_allowed, "use POST");
    }
    if (cfg.token.empty())
      return answer(res, http::status::forbidden,
                    "run-time changes are off; set admin.token_file to allow them");
    if (!takes_changes(cfg))
      return answer(res, http::status::forbidden,
                    "run-time changes are taken only on a loopback admin listener");
    if (!authorized(req, res)) return;
    const auto name = percent_decoded(rest.substr(1, at - 1));
    const auto endpoint = percent_decoded(rest.substr(at + endpoints.size()));
    if (!name || !endpoint) return answer(res, http::status::bad_request, "a bad %-escape");
    std::string why;
    const auto address = parse_address(*endpoint, why);
    if (!address)
      return answer(res, http::status::bad_request, "endpoint " + *endpoint + ": " + why);
    auto update = parse_endpoint_update(req.body());
    if (auto* error = std::get_if<std::string>(&update))
      return answer(res, http::status::bad_request, *error);
    const auto r = api.update_endpoint(*name, *address, std::get<endpoint_update>(update));
    using status = endpoint_update_result::status;
    if (r.what != status::applied)
      return answer(res,
                    r.what == status::invalid ? http::status::bad_request : http::status::not_found,
                    r.error);
    res.set(http::field::content_type, "application/json");
    res.body() = render_upstreams_json(api.snapshot(), *name).value_or("{}");
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(64 * 1024);
      stream.expires_after(request_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
            ec != asio::error::operation_aborted)
          main_log().debug("admin: bad request: {}", ec.message());
        break;
      }
      auto res = handle(parser.get());
      const bool keep = res.keep_alive();
      auto [write_ec, m] = co_await http::async_write(stream, res, use_tuple);
      if (write_ec || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      tcp::endpoint peer;  // from accept(2): a client that reset since has no getpeername()
      auto [ec, socket] = co_await acceptor.async_accept(peer, use_tuple);
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {  // out of fds, say: wait a little, never spin
        asio::steady_timer pause(io, 100ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      const auto ip = peer.address();
      const std::string bytes = ip_bytes({ip.to_string(), peer.port(), ip.is_v6()});
      if (!access.permits({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()})) {
        main_log().info("admin: client {} refused by allow/deny", ip.to_string());
        continue;  // closed as `socket` goes
      }
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }
};

admin_server::admin_server(control_api& api, const admin_config& cfg)
    : impl_(std::make_unique<impl>(api, cfg)) {
  auto& m = *impl_;
  try {
    const tcp::endpoint ep(asio::ip::make_address(cfg.bind.ip), cfg.bind.port);
    m.acceptor.open(ep.protocol());
    m.acceptor.set_option(tcp::acceptor::reuse_address(true));
    m.acceptor.bind(ep);
    m.acceptor.listen();
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("admin: cannot listen on " + cfg.bind.to_string() + ": " +
                             e.code().message());
  }
  const auto ip = asio::ip::make_address(cfg.bind.ip);
  if (!ip.is_loopback() && cfg.allow.empty())
    main_log().warn(
        "admin: listening on {}, which is not a loopback address, with no allow list: anyone who "
        "can reach it sees the proxy's stats{}",
        bound().to_string(), cfg.reload ? " and can make it reload" : "");
  if (!cfg.token.empty() && !ip.is_loopback())
    main_log().warn("admin: run-time changes are refused on {}, which is not a loopback address",
                    bound().to_string());
  main_log().info("admin on {}: {}", bound().to_string(), admin_paths(cfg));
  asio::co_spawn(m.io, m.accept_loop(), asio::detached);
  asio::co_spawn(m.io, m.sample_loop(), asio::detached);
  m.thread = std::thread([&m] { m.io.run(); });
}

admin_server::~admin_server() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

address admin_server::bound() const {
  boost::system::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  address a = impl_->cfg.bind;
  if (!ec) a.port = ep.port();
  return a;
}

}  // namespace zcproxy
