#include "admin_routes.hpp"

#include <algorithm>
#include <cctype>

namespace zcproxy {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view capitals = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

// What `path` gives each capture of `pattern`, or nullopt when it does not match. A capture ends
// where the first occurrence of the text after it begins, so "/upstreams/NAME/endpoints/ENDPOINT"
// reads "/upstreams/a/endpoints/unix:/x" as "a" and "unix:/x".
std::optional<std::vector<std::string_view>> matched(std::string_view pattern,
                                                     std::string_view path) {
  std::vector<std::string_view> captures;
  for (;;) {
    const std::string_view literal = pattern.substr(0, pattern.find_first_of(capitals));
    if (!path.starts_with(literal)) return std::nullopt;
    path.remove_prefix(literal.size());
    pattern.remove_prefix(literal.size());
    if (pattern.empty()) break;
    pattern.remove_prefix(std::min(pattern.find_first_not_of(capitals), pattern.size()));
    const std::string_view next = pattern.substr(0, pattern.find_first_of(capitals));
    const auto end = next.empty() ? path.size() : path.find(next);
    if (end == std::string_view::npos) return std::nullopt;
    captures.push_back(path.substr(0, end));
    path.remove_prefix(end);
  }
  if (!path.empty()) return std::nullopt;
  return captures;
}

// The admin_method bit a request's method asks for; 0 for one no route takes.
unsigned method_bit(http::verb method) {
  switch (method) {
    case http::verb::get:
    case http::verb::head:  // answered as GET, its body left out
      return admin_get;
    case http::verb::post:
      return admin_post;
    default:
      return 0;
  }
}

// "GET", "POST", "GET|POST": the methods a route takes, HEAD unsaid.
std::string method_names(unsigned methods) {
  std::string out;
  if (methods & admin_get) out = "GET";
  if (methods & admin_post) out += out.empty() ? "POST" : "|POST";
  return out;
}

admin_answer wrong_method(unsigned methods) {
  std::string allow, use;
  if (methods & admin_get) allow = "GET, HEAD", use = "GET";
  if (methods & admin_post) {
    allow += allow.empty() ? "POST" : ", POST";
    use += use.empty() ? "POST" : " or POST";
  }
  return {http::status::method_not_allowed, "use " + use + "\n", {{http::field::allow, allow}}};
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

// 401 when the header carries no bearer token (with the challenge), 403 when it is not `secret`;
// nullopt when it is.
std::optional<admin_answer> refused_token(std::string_view authorization, std::string_view secret) {
  const auto token = bearer_token(authorization);
  if (!token)
    return admin_answer{http::status::unauthorized,
                        "this call needs the admin token: Authorization: Bearer <token>\n",
                        {{http::field::www_authenticate, "Bearer realm=\"zcproxy\""}}};
  if (!same_secret(*token, secret))
    return admin_answer{http::status::forbidden, "wrong token\n", {}};
  return std::nullopt;
}

bool served(const admin_route& route, const admin_config& cfg) {
  return !route.off || !route.off(cfg);
}

// The 404's body: what is there instead, a route a line with its help.
std::string not_found(std::span<const admin_route> table, const admin_config& cfg) {
  std::string out = "not found; this admin listener serves:\n";
  for (const auto& route : table)
    if (served(route, cfg))
      out += "  " + method_names(route.methods) + " " + std::string(route.pattern) + ": " +
             std::string(route.help) + "\n";
  return out;
}

}  // namespace

std::variant<admin_match, admin_answer> dispatch(std::span<const admin_route> table,
                                                 const admin_config& cfg, http::verb method,
                                                 std::string_view target,
                                                 std::string_view authorization) {
  const std::string_view path = target.substr(0, target.find('?'));
  for (const auto& route : table) {
    auto captures = matched(route.pattern, path);
    if (!captures) continue;
    if (!(method_bit(method) & route.methods)) return wrong_method(route.methods);
    if (route.off)
      if (auto why = route.off(cfg)) return admin_answer{http::status::forbidden, *why + "\n", {}};
    // Without a token of its own the listener asks for none; a route that must not run so says
    // it through `off`.
    if (route.needs_token && !cfg.token.empty())
      if (auto refused = refused_token(authorization, cfg.token)) return *refused;
    return admin_match{&route, std::move(*captures)};
  }
  return admin_answer{http::status::not_found, not_found(table, cfg), {}};
}

admin_response respond(std::span<const admin_route> table, admin_context& ctx,
                       const admin_request& req) {
  admin_response res{http::status::ok, req.version()};
  res.set(http::field::server, "zcproxy/" ZCPROXY_VERSION);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  const auto target = req.target();
  const auto authorization = req[http::field::authorization];
  auto routed = dispatch(table, ctx.cfg, req.method(), {target.data(), target.size()},
                         {authorization.data(), authorization.size()});
  if (const auto* match = std::get_if<admin_match>(&routed)) {
    admin_call call{req, match->captures, res, ctx};
    match->route->handler(call);
  } else {
    auto& answer = std::get<admin_answer>(routed);
    res.result(answer.status);
    for (auto& [field, value] : answer.headers) res.set(field, value);
    res.set(http::field::content_type, "text/plain");
    res.body() = std::move(answer.body);
  }
  res.prepare_payload();  // HEAD: the Content-Length of the body a GET would get
  if (req.method() == http::verb::head) res.body().clear();
  return res;
}

std::string listed_paths(std::span<const admin_route> table, const admin_config& cfg) {
  std::string out;
  for (const auto& route : table) {
    if (!served(route, cfg)) continue;
    if (!out.empty()) out += ", ";
    if (route.methods != admin_get) out += method_names(route.methods) + " ";
    out += route.pattern;
  }
  return out;
}

}  // namespace zcproxy
