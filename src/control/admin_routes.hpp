// The admin listener's routes as a table (Envoy's Admin::addHandler): each entry says its path,
// its methods, whether it asks for the token, a line of help and its handler, so that the 405
// (with Allow), HEAD, the token check, the 404 and the list of paths are each written once, here,
// for every route. Dispatch is a pure function of the request line, the Authorization header, the
// table and the admin config: no socket, no running proxy.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "metrics.hpp"
#include "zcproxy/config.hpp"

namespace zcproxy {

class control_api;

using admin_request = boost::beast::http::request<boost::beast::http::string_body>;
using admin_response = boost::beast::http::response<boost::beast::http::string_body>;

// The methods of a route, a bit each. HEAD comes with GET: the same headers, no body.
enum admin_method : unsigned { admin_get = 1u << 0, admin_post = 1u << 1 };

// What the handlers of the admin's own table reach the proxy through (on the control loop).
struct admin_context {
  control_api& api;
  const admin_config& cfg;
  const std::deque<throughput_sample>& history;  // the last minute, one sample a second
};

// One call of a handler: the request, the pattern's captures in order (as sent: %-escapes are the
// handler's to decode), and the response to fill, which is 200 with the common headers already.
struct admin_call {
  const admin_request& req;
  std::span<const std::string_view> captures;
  admin_response& res;
  admin_context& ctx;
};

struct admin_route {
  // "/upstreams/NAME/endpoints/ENDPOINT": a word in capitals captures up to the text that follows
  // it, or to the end of the path when it is last (slashes included, "unix:/run/app.sock").
  std::string_view pattern;
  unsigned methods = 0;      // admin_method bits
  bool needs_token = false;  // a listener with a token asks for it: 401 without, 403 when wrong
  std::string_view help;     // one line: what the route does
  void (*handler)(admin_call&) = nullptr;
  // Why the route is refused under `cfg` (403, and left out of the list), or nullopt when it is
  // served; no function: always served.
  std::optional<std::string> (*off)(const admin_config& cfg) = nullptr;
};

// An answer given without a handler: 401, 403, 404 or 405, as text/plain.
struct admin_answer {
  boost::beast::http::status status{};
  std::string body;
  std::vector<std::pair<boost::beast::http::field, std::string>> headers;  // Allow, ...
};

// The route to run, with what its pattern captured (views into the target).
struct admin_match {
  const admin_route* route = nullptr;
  std::vector<std::string_view> captures;
};

// Where a request goes: the first route (in table order) whose pattern matches the target's path
// wins, so a pattern comes before a shorter one that would take its paths. Then, in this order:
// the method (405), the route being off under `cfg` (403), the token (401, 403).
std::variant<admin_match, admin_answer> dispatch(std::span<const admin_route> table,
                                                 const admin_config& cfg,
                                                 boost::beast::http::verb method,
                                                 std::string_view target,
                                                 std::string_view authorization);

// The whole answer to `req`: dispatch, the handler, the common headers, and for HEAD the headers
// a GET would get with no body.
admin_response respond(std::span<const admin_route> table, admin_context& ctx,
                       const admin_request& req);

// "/stats, POST /reload, ...": the routes served under `cfg`, in table order; GET goes unsaid.
std::string listed_paths(std::span<const admin_route> table, const admin_config& cfg);

// The admin listener's own table (admin_handlers.cpp).
std::span<const admin_route> admin_table();

}  // namespace zcproxy
