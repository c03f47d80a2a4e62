// The live stats page in a real browser (Debian's headless Chromium over the DevTools protocol):
// it refreshes in place while traffic flows, and once traffic stops the text a person reads on
// it is stats.json's numbers, formatted as the page formats them, which are what the test moved;
// the chart's points are the history's samples; a dead endpoint's health badge says down; and
// with nothing but loopback reachable, every request the page makes goes to the admin origin.
// Leaves a screenshot in the build's test-output/.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/cdp.hpp"
#include "support/net.hpp"

using namespace test;
namespace json = boost::json;

namespace {

constexpr std::size_t chunk_size = 32 << 10;
constexpr int chunks_per_connection = 8;

// Sends each whole chunk it reads back twice; at the client's EOF it sends the 8-byte count of
// what it read. So the two directions' totals differ (a page that swapped them would show).
upstream_server echo_chunks_twice() {
  return upstream_server([](fd s) {
    bytes chunk(chunk_size);
    std::size_t have = 0;
    std::uint64_t total = 0;
    for (;;) {
      const ssize_t n = ::recv(s.get(), chunk.data() + have, chunk.size() - have, 0);
      if (n <= 0) break;
      have += static_cast<std::size_t>(n);
      total += static_cast<std::uint64_t>(n);
      if (have < chunk.size()) continue;  // a chunk may arrive in pieces
      send_all(s.get(), chunk);
      send_all(s.get(), chunk);
      have = 0;
    }
    send_all(s.get(), reinterpret_cast<const char*>(&total), sizeof total);
  });
}

// Connections through the proxy, one after another with a short pause between, until stopped or
// a minute has passed. Only whole connections are counted, and a connection started is always
// finished, so once stopped the counts are exactly what the proxy carried.
class traffic {
 public:
  explicit traffic(std::uint16_t port) : thread_([this, port] { run(port); }) {}
  ~traffic() { stop(); }
  // Stop after the connection in progress and wait for it; returns why it failed, if it did.
  std::string stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    return failure();
  }
  // Why the traffic stopped by itself ("" while it runs).
  std::string failure() {
    std::lock_guard lock(mutex_);
    return failure_;
  }

  std::atomic<std::uint64_t> up{0};    // client -> upstream
  std::atomic<std::uint64_t> down{0};  // upstream -> client
  std::atomic<std::uint64_t> connections{0};

 private:
  void run(std::uint16_t port) {
    try {
      connect_until_stopped(port);
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      failure_ = e.what();
    }
  }

  void connect_until_stopped(std::uint16_t port) {
    const bytes chunk = random_bytes(chunk_size, 6);
    bytes twice = chunk;
    twice.insert(twice.end(), chunk.begin(), chunk.end());
    const auto end = std::chrono::steady_clock::now() + 60s;
    std::unique_lock lock(mutex_);
    while (!stopping_ && std::chrono::steady_clock::now() < end) {
      lock.unlock();
      fd c = connect_to(port);
      for (int i = 0; i < chunks_per_connection; ++i) {
        send_all(c.get(), chunk);
        if (checksum(recv_exact(c.get(), twice.size())) != checksum(twice))
          throw std::runtime_error("the echo through the proxy differs from what was sent");
      }
      shutdown_write(c.get());
      const bytes count = recv_all(c.get());
      std::uint64_t counted = 0;
      if (count.size() != sizeof counted) throw std::runtime_error("no byte count at the end");
      std::memcpy(&counted, count.data(), sizeof counted);
      if (counted != chunk_size * chunks_per_connection)
        throw std::runtime_error("the backend counted " + std::to_string(counted) + " bytes");
      up += chunk_size * chunks_per_connection;
      down += 2 * chunk_size * chunks_per_connection + sizeof counted;
      ++connections;
      lock.lock();
      // The pause keeps the rate modest on a two-core machine that also runs the browser.
      wake_.wait_for(lock, 50ms, [&] { return stopping_; });
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string failure_;
  std::thread thread_;  // last: it uses the members above from its first instruction
};

// What the page shows, as a person sees it: the visible text (innerText) of the cards, keyed by
// their element's id, and of the two tables' rows, keyed by the column headers. Also its refresh
// count, its navigation entries, the marker the test left in its window, the chart's polylines,
// and the stats.json the page last drew from (which the test's hook in render() keeps: the chart
// is checked against exactly the samples it was drawn from).
struct page_view {
  int refreshes = 0;
  int navigations = 0;
  std::string marker;
  json::object cards;
  json::array listeners, endpoints;
  json::object chart;
  json::value rendered;

  std::string card(const std::string& id) const {
    const json::value* v = cards.if_contains(id);
    if (!v) throw std::runtime_error("the page shows no card #" + id);
    return std::string(v->as_string());
  }
  // The row of `rows` whose column `key` shows `value` (an empty object when there is none).
  static json::object row(const json::array& rows, const std::string& key,
                          const std::string& value) {
    for (const auto& r : rows)
      if (const auto* k = r.as_object().if_contains(key); k && k->as_string() == value)
        return r.as_object();
    return {};
  }
  json::object listener(const std::string& name) const { return row(listeners, "Name", name); }
  json::object endpoint(const std::string& address) const {
    return row(endpoints, "Endpoint", address);
  }
  // A whole number shown in a column of a row.
  static std::uint64_t number(const json::object& row, const std::string& column) {
    const json::value* v = row.if_contains(column);
    const std::string text = v && v->is_string() ? std::string(v->as_string()) : "";
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error("the page shows no whole number under " + column + ": \"" + text +
                               "\"");
    return std::stoull(text);
  }
};

// For a failure's message: what the page showed and what the traffic had done.
std::string state(const page_view& v, traffic& t) {
  return "the page had refreshed " + std::to_string(v.refreshes) + " times, its listener row " +
         json::serialize(v.listener("web")) + "; the traffic had made " +
         std::to_string(t.connections) + " connections" +
         (t.failure().empty() ? "" : " and failed: " + t.failure());
}

// What the page asked of the network, as the browser reported it (Network.requestWillBeSent).
struct request_log {
  std::vector<std::string> urls;
  // Keep the requests reported so far and forget the browser's other events, which would
  // otherwise pile up (a handful every refresh).
  void collect(cdp::page& page, cdp::browser& browser) {
    for (const auto& e : page.take_events("Network.requestWillBeSent"))
      urls.emplace_back(e.at("request").as_object().at("url").as_string());
    browser.drop_events();
  }
};

page_view observe(cdp::page& page) {
  const json::value v = page.evaluate(R"js((() => {
    // Cards: the value under each label. Table cells under their column's header (its text as
    // written: innerText would upper-case what CSS transforms).
    const cards = {};
    for (const e of document.querySelectorAll(".card .value")) cards[e.id] = e.innerText;
    cards.uptime = document.getElementById("uptime").innerText;
    cards.version = document.getElementById("version").innerText;
    const table = id => {
      const body = document.getElementById(id);
      const heads = [...body.closest("table").tHead.rows[0].cells].map(c => c.textContent.trim());
      return [...body.rows].map(r => {
        const row = {};
        [...r.cells].forEach((c, i) => row[heads[i] ?? "column " + i] = c.innerText);
        const badge = r.querySelector(".badge");
        if (badge)
          Object.assign(row, {"badge class": badge.className,
                              "badge color": getComputedStyle(badge).backgroundColor,
                              "badge visible": badge.checkVisibility()});
        return row;
      });
    };
    const svg = document.getElementById("chart");
    return {refreshes: Number(document.getElementById("status").dataset.refreshes),
            navigations: performance.getEntriesByType("navigation").length,
            marker: String(window.zcproxyTestMarker ?? ""),
            cards, listeners: table("listeners"), endpoints: table("endpoints"),
            chart: {viewBox: svg.getAttribute("viewBox") ?? "",
                    lines: [...svg.querySelectorAll("polyline")].map(
                        p => ({stroke: p.getAttribute("stroke"), points: p.getAttribute("points")}))},
            rendered: window.zcproxyRendered ?? null};
  })())js");
  const json::object& o = v.as_object();
  return {o.at("refreshes").to_number<int>(),
          o.at("navigations").to_number<int>(),
          std::string(o.at("marker").as_string()),
          o.at("cards").as_object(),
          o.at("listeners").as_array(),
          o.at("endpoints").as_array(),
          o.at("chart").as_object(),
          o.at("rendered")};
}

// The page's formatting, in C++, so the test knows what the page must show for a value of
// stats.json. JavaScript's Number.prototype.toFixed rounds the exact value of the double, a tie
// upwards; printf's digits are exact too (with enough of them), so the digit after the last one
// kept decides.
std::string to_fixed(double v, int digits) {
  char exact[1500];  // a double has at most 1074 fractional digits
  std::snprintf(exact, sizeof exact, "%.1100f", v);
  std::string s(exact);
  const std::size_t point = s.find('.');
  const bool up = s[point + 1 + digits] >= '5';
  s.resize(point + 1 + digits);
  bool carry = up;
  for (std::size_t i = s.size(); carry && i-- > 0;) {
    if (s[i] == '.') continue;
    carry = s[i] == '9';
    s[i] = carry ? '0' : static_cast<char>(s[i] + 1);
  }
  if (carry) s.insert(0, "1");
  if (digits == 0) s.pop_back();  // the point
  return s;
}

// bytes(): 1023 B, 1.00 KiB .. 9.99 KiB, 10.0 KiB .. 1023.9 KiB, 1.00 MiB, ...
std::string format_bytes(std::uint64_t value) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double n = static_cast<double>(value);
  std::size_t i = 0;
  while (n >= 1024 && i < std::size(units) - 1) {
    n /= 1024;
    ++i;
  }
  return (i ? to_fixed(n, n < 10 ? 2 : 1) : std::to_string(value)) + " " + units[i];
}

// bits(): a rate in bytes per second as bit/s, kbit/s, Mbit/s, ... (powers of 1000).
std::string format_bits(double bytes_per_second) {
  static const char* const units[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  double n = bytes_per_second * 8;
  std::size_t i = 0;
  while (n >= 1000 && i < std::size(units) - 1) {
    n /= 1000;
    ++i;
  }
  return to_fixed(n, n < 10 ? 2 : 1) + " " + units[i];
}

// share(): the spliced part of all bytes relayed, in percent, or "-" before any.
std::string format_share(double spliced, double copied) {
  const double total = spliced + copied;
  return total != 0 ? to_fixed(100 * spliced / total, 1) + "%" : "-";
}

// duration(): "1h 2m 3s", "4m 5s".
std::string format_duration(double seconds) {
  const auto s = static_cast<std::uint64_t>(std::floor(seconds));
  const auto d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
  return (d ? std::to_string(d) + "d " : "") + (d || h ? std::to_string(h) + "h " : "") +
         std::to_string(m) + "m " + std::to_string(s % 60) + "s";
}

// A plain GET over a loopback socket; the body, once the status is 200.
std::string http_get(std::uint16_t port, const std::string& target) {
  fd s = connect_to(port);
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  send_all(s.get(), request.data(), request.size());
  const bytes got = recv_all(s.get());
  const std::string response(got.begin(), got.end());
  INFO(response.substr(0, 300));
  REQUIRE(response.starts_with("HTTP/1.1 200 "));
  const auto body = response.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  return response.substr(body + 4);
}

// The entry of `array` whose `key` is `value`.
const json::object& entry_with(const json::value& array, const char* key,
                               const std::string& value) {
  for (const auto& e : array.as_array())
    if (e.as_object().at(key).as_string() == value) return e.as_object();
  throw std::runtime_error(std::string("stats.json has no entry with ") + key + " " + value);
}

std::uint64_t count(const json::object& o, const char* key) {
  return o.at(key).to_number<std::uint64_t>();
}

// The page's sums over a listener's close reasons: refused before any upstream connect, errors.
constexpr const char* refusals[] = {"denied",      "limit",        "proxy_header",
                                    "sni_timeout", "client_hello", "no_route"};
constexpr const char* errors[] = {"reset",           "splice_refused", "connect_failed",
                                  "connect_timeout", "no_endpoint",    "source_failed",
                                  "proxy_header",    "sni_timeout",    "client_hello"};
template <std::size_t n>
std::uint64_t sum(const json::object& closed, const char* const (&keys)[n]) {
  std::uint64_t total = 0;
  for (const char* k : keys)
    if (const json::value* v = closed.if_contains(k)) total += v->to_number<std::uint64_t>();
  return total;
}

double real(const json::object& o, const char* key) {
  return o.at(key).to_number<double>();
}

// What a listener's row must show for its entry in stats.json, column by column.
json::object listener_row(const json::object& l) {
  const json::object& closed = l.at("closed").as_object();
  return {{"Name", l.at("name")},
          {"Address", l.at("bind")},
          {"Routes to", l.at("destination")},
          {"Active", std::to_string(count(l, "active"))},
          {"Accepted", std::to_string(count(l, "accepted"))},
          {"Bytes up", format_bytes(count(l, "bytes_up"))},
          {"Bytes down", format_bytes(count(l, "bytes_down"))},
          {"Splice", format_share(real(l, "spliced"), real(l, "copied"))},
          {"Refused", std::to_string(sum(closed, refusals))},
          {"Errors", std::to_string(sum(closed, errors))}};
}

// What an endpoint's row must show: its health badge says down (failing its checks), ejected
// (passing them, taken out by passive checks) or up.
json::object endpoint_row(const json::object& e) {
  const char* health = !e.at("healthy").as_bool() ? "down"
                       : e.at("usable").as_bool() ? "up"
                                                  : "ejected";
  return {{"Upstream", e.at("upstream")},
          {"Endpoint", e.at("address")},
          {"Health", health},
          {"Active", std::to_string(count(e, "active"))},
          {"Connections", std::to_string(count(e, "connections"))},
          {"Connect failures", std::to_string(count(e, "connect_failures"))},
          {"Bytes up", format_bytes(count(e, "bytes_up"))},
          {"Bytes down", format_bytes(count(e, "bytes_down"))}};
}

// Every column `expected` names shows its text in `shown`.
void check_row(const json::object& shown, const json::object& expected, const std::string& what) {
  INFO(what << " row shown: " << json::serialize(shown));
  for (const auto& [column, text] : expected) {
    INFO("column " << std::string(column));
    const json::value* got = shown.if_contains(column);
    REQUIRE(got);
    CHECK(got->as_string() == text.as_string());
  }
}

// The chart's geometry (as the page's chart() computes it): a polyline per direction, a point per
// sample of the last minute, x by the sample's time (the newest at the right edge), y by its rate
// (the top line is the largest rate of either direction, the bottom one zero).
constexpr double chart_height = 180, chart_left = 70, chart_bottom = 20, chart_top = 8;

struct point {
  double x, y;
};

std::vector<point> parse_points(const std::string& text) {
  std::vector<point> points;
  std::istringstream in(text);
  std::string pair;
  while (in >> pair) {
    const auto comma = pair.find(',');
    if (comma == std::string::npos) throw std::runtime_error("a polyline point without a comma");
    points.push_back({std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1))});
  }
  return points;
}

}  // namespace

TEST_CASE("stats page: a browser sees live counters that settle on stats.json's",
          "[admin][browser]") {
  if (!cdp::chromium_installed())
    FAIL(cdp::chromium_binary << " is missing: this test drives headless Chromium; install "
                                 "Debian's chromium package (apt-get install chromium)");

  // Two endpoints under active health checks: the backend, and a port with nothing listening,
  // which the first check (at start) takes out.
  auto backend = echo_chunks_twice();
  const std::string endpoint_address = "127.0.0.1:" + std::to_string(backend.port());
  const std::string dead_address = "127.0.0.1:" + std::to_string(dead_port());
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: auto }\n"
      "admin: { bind: \"127.0.0.1:0\" }\n"
      "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
      "upstreams:\n  app:\n    endpoints: [\"" +
          endpoint_address + "\", \"" + dead_address +
          "\"]\n"
          "    health_check: { interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }\n",
      "stats_page.yaml"));
  const auto admin = p.control->admin_address();
  REQUIRE(admin);
  const std::string origin = "http://127.0.0.1:" + std::to_string(admin->port);

  // Traffic starts once the dead endpoint is out, so every connection goes to the backend at the
  // first try and the counts below are exact.
  auto health = [&](const std::string& address) {
    const json::value stats = json::parse(http_get(admin->port, "/stats.json"));
    return entry_with(stats.at("endpoints"), "address", address).at("healthy").as_bool();
  };
  REQUIRE(wait_until([&] { return !health(dead_address); }, 10s));
  REQUIRE(health(endpoint_address));

  traffic t(p.port());
  // The browser reaches nothing but loopback (see cdp.hpp): what the page shows, it got from the
  // proxy's admin origin; the requests it made are checked at the end.
  cdp::browser browser;
  cdp::page page(browser, origin + "/stats");
  request_log requests;
  requests.collect(page, browser);
  page.evaluate("window.zcproxyTestMarker = 'kept'");
  // From now on each redraw keeps, in the window, the stats.json it drew from.
  page.evaluate(R"js({
    const draw = render;
    window.render = s => { window.zcproxyRendered = s; draw(s); };
  })js");

  // From its first refresh on, the page shows numbers.
  page_view first;
  const bool shown = wait_until(
      [&] {
        first = observe(page);
        requests.collect(page, browser);
        const json::object web = first.listener("web");
        return first.refreshes >= 1 && !web.empty() && page_view::number(web, "Accepted") > 0;
      },
      15s);
  if (!shown) FAIL(state(first, t));
  const json::object first_web = first.listener("web");
  CHECK(std::regex_match(std::string(first_web.at("Bytes up").as_string()),
                         std::regex("[0-9.]+ [KMG]?i?B")));
  CHECK(std::regex_match(first.card("active"), std::regex("[0-9]+")));

  // While traffic flows the counters grow, refreshed in place: the same document throughout.
  page_view later;
  const bool grew = wait_until(
      [&] {
        later = observe(page);
        requests.collect(page, browser);
        return later.refreshes > first.refreshes && later.rendered.is_object() &&
               page_view::number(later.listener("web"), "Accepted") >
                   page_view::number(first_web, "Accepted");
      },
      15s);
  if (!grew) FAIL("first " << state(first, t) << "; then " << state(later, t));
  CHECK(later.listener("web").at("Bytes up") != first_web.at("Bytes up"));
  CHECK(later.navigations == 1);
  CHECK(later.marker == "kept");

  // Once traffic has stopped and every session has ended, the page settles: it has refreshed
  // twice more and drawn a sample of a second without traffic.
  const std::string failure = t.stop();
  CHECK(failure == "");
  REQUIRE(t.connections > 0);
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }, 10s));
  const int settled_from = observe(page).refreshes;
  page_view last;
  auto idle_sample = [](const json::value& rendered) {
    if (!rendered.is_object()) return false;
    const json::array& h = rendered.at("history").as_array();
    return !h.empty() && real(h.back().as_object(), "up") == 0 &&
           real(h.back().as_object(), "down") == 0;
  };
  REQUIRE(wait_until(
      [&] {
        last = observe(page);
        requests.collect(page, browser);
        return last.refreshes >= settled_from + 2 && idle_sample(last.rendered);
      },
      15s));

  // What a person reads on the page now is stats.json's numbers, formatted as the page formats
  // them (the counters no longer change: the test's own request gets what the page got).
  const json::value stats = json::parse(http_get(admin->port, "/stats.json"));
  const json::object& root = stats.as_object();
  const json::object& web = entry_with(stats.at("listeners"), "name", "web");
  const json::object& ep = entry_with(stats.at("endpoints"), "address", endpoint_address);
  const json::object& dead = entry_with(stats.at("endpoints"), "address", dead_address);
  check_row(last.listener("web"), listener_row(web), "listener web");
  check_row(last.endpoint(endpoint_address), endpoint_row(ep), "endpoint " + endpoint_address);
  check_row(last.endpoint(dead_address), endpoint_row(dead), "endpoint " + dead_address);
  CHECK(last.listeners.size() == root.at("listeners").as_array().size());
  CHECK(last.endpoints.size() == root.at("endpoints").as_array().size());

  std::uint64_t all_errors = 0;
  double spliced = 0, copied = 0;
  for (const auto& l : root.at("listeners").as_array()) {
    all_errors += sum(l.at("closed").as_object(), errors);
    spliced += real(l.as_object(), "spliced");
    copied += real(l.as_object(), "copied");
  }
  const json::object& pipes = root.at("pipes").as_object();
  const json::array& history = root.at("history").as_array();
  REQUIRE(!history.empty());
  const json::object& newest = history.back().as_object();
  const struct {
    const char* card;
    std::string text;
  } cards[] = {
      {"active", std::to_string(count(root, "connections_active"))},
      {"rate-up", format_bits(real(newest, "up"))},
      {"rate-down", format_bits(real(newest, "down"))},
      {"splice-share", format_share(spliced, copied)},
      {"errors", std::to_string(all_errors)},
      {"pipes",
       std::to_string(count(pipes, "leased")) + " / " + std::to_string(count(pipes, "idle"))},
      {"version", "v" + std::string(root.at("version").as_string())},
  };
  for (const auto& c : cards) {
    INFO("card #" << c.card);
    CHECK(last.card(c.card) == c.text);
  }
  // The uptime ticks: it is the one of the stats.json the page drew from.
  const json::object& drawn = last.rendered.as_object();
  CHECK(last.card("uptime") == format_duration(real(drawn, "now") - real(drawn, "start_time")));
  CHECK(real(drawn, "start_time") == real(root, "start_time"));

  // And stats.json's numbers are what the test moved; the dead endpoint carried nothing.
  const struct {
    const char* what;
    std::uint64_t in_json, moved;
  } moved[] = {
      {"listener bytes_up", count(web, "bytes_up"), t.up},
      {"listener bytes_down", count(web, "bytes_down"), t.down},
      {"listener accepted", count(web, "accepted"), t.connections},
      {"listener active", count(web, "active"), 0},
      {"endpoint connections", count(ep, "connections"), t.connections},
      {"endpoint bytes_up", count(ep, "bytes_up"), t.up},
      {"endpoint bytes_down", count(ep, "bytes_down"), t.down},
      {"dead endpoint connections", count(dead, "connections"), 0},
      {"dead endpoint connect_failures", count(dead, "connect_failures"), 0},
      {"connections_active", count(root, "connections_active"), 0},
  };
  for (const auto& m : moved) {
    INFO(m.what);
    CHECK(m.in_json == m.moved);
  }

  // The health badges: the dead endpoint's says down, in another colour than the live one's up.
  const json::object live_row = last.endpoint(endpoint_address);
  const json::object dead_row = last.endpoint(dead_address);
  CHECK_FALSE(dead.at("healthy").as_bool());
  CHECK(ep.at("healthy").as_bool());
  CHECK(dead_row.at("Health").as_string() == "down");
  CHECK(live_row.at("Health").as_string() == "up");
  CHECK(dead_row.at("badge visible").as_bool());
  CHECK(live_row.at("badge visible").as_bool());
  CHECK(dead_row.at("badge color") != live_row.at("badge color"));
  CHECK(last.navigations == 1);
  CHECK(last.marker == "kept");

  // The chart draws the samples of the stats.json the page drew from, which are stats.json's:
  // each one still in the test's copy is there unchanged.
  const json::array& samples = drawn.at("history").as_array();
  REQUIRE(samples.size() >= 2);
  for (const auto& sample : samples) {
    const double time = real(sample.as_object(), "time");
    if (time < real(history.front().as_object(), "time")) continue;  // gone since
    bool found = false;
    for (const auto& h : history)
      found = found || (real(h.as_object(), "time") == time &&
                        real(h.as_object(), "up") == real(sample.as_object(), "up") &&
                        real(h.as_object(), "down") == real(sample.as_object(), "down"));
    INFO("sample " << json::serialize(sample));
    CHECK(found);
  }
  // A point per sample, each where chart() puts it: one per second, the newest at the right edge,
  // a second with traffic higher up than one without.
  const std::string view_box(last.chart.at("viewBox").as_string());
  double width = 0;
  REQUIRE(std::sscanf(view_box.c_str(), "0 0 %lf", &width) == 1);
  const double now = real(samples.back().as_object(), "time");
  double top = 1;
  for (const auto& h : samples)
    top = std::max({top, real(h.as_object(), "up"), real(h.as_object(), "down")});
  const json::array& lines = last.chart.at("lines").as_array();
  REQUIRE(lines.size() == 2);
  const struct {
    const char* key;
    const char* stroke;
  } directions[] = {{"up", "var(--up)"}, {"down", "var(--down)"}};
  for (std::size_t d = 0; d < 2; ++d) {
    const json::object& line = lines[d].as_object();
    INFO("the " << directions[d].key << " polyline: " << json::serialize(line));
    CHECK(line.at("stroke").as_string() == directions[d].stroke);
    const std::vector<point> points = parse_points(std::string(line.at("points").as_string()));
    std::vector<double> rates;
    for (const auto& h : samples)
      if (now - real(h.as_object(), "time") <= 60)
        rates.push_back(real(h.as_object(), directions[d].key));
    REQUIRE(points.size() == rates.size());
    std::size_t busy = rates.size(), idle = rates.size();  // a second with traffic, one without
    for (std::size_t i = 0; i < points.size(); ++i) {
      const double time = real(samples[samples.size() - points.size() + i].as_object(), "time");
      const double x = chart_left + (width - chart_left - 4) * (1 - (now - time) / 60);
      const double y = chart_top + (chart_height - chart_top - chart_bottom) * (1 - rates[i] / top);
      INFO("point " << i << " at " << points[i].x << "," << points[i].y << ", expected at " << x
                    << "," << y);
      CHECK(std::abs(points[i].x - x) <= 0.051);
      CHECK(std::abs(points[i].y - y) <= 0.051);
      if (i > 0) CHECK(points[i].x > points[i - 1].x);
      if (rates[i] > 0 && (busy == rates.size() || rates[i] > rates[busy])) busy = i;
      if (rates[i] == 0) idle = i;
    }
    REQUIRE(busy < rates.size());
    REQUIRE(idle < rates.size());
    INFO("a busy second's point " << busy << ", an idle one's " << idle);
    CHECK(points[busy].y < points[idle].y);
    CHECK(std::abs(points[idle].y - (chart_height - chart_bottom)) <= 0.051);
    CHECK(std::abs(points.back().x - (width - 4)) <= 0.051);
  }

  // Offline: every request the page made (the document, then stats.json every second) went to
  // the admin origin.
  requests.collect(page, browser);
  std::string all_requests;
  for (const auto& url : requests.urls) all_requests += "\n  " + url;
  INFO("the page's requests:" << all_requests);
  REQUIRE(!requests.urls.empty());
  CHECK(requests.urls.front() == origin + "/stats");
  CHECK(std::count(requests.urls.begin(), requests.urls.end(), origin + "/stats.json") >=
        last.refreshes);
  for (const auto& url : requests.urls) CHECK(url.starts_with(origin + "/"));
  // And the browser could not have fetched anything from elsewhere: a request to an address
  // other than loopback fails at the refusing proxy at once.
  const json::value outside = page.evaluate(R"js(Promise.race([
    fetch("http://192.0.2.1/probe", {mode: "no-cors", cache: "no-store"})
        .then(() => "reached", e => "failed: " + e.message),
    new Promise(done => setTimeout(() => done("no answer in 5 s"), 5000))]))js");
  CHECK(outside.as_string().starts_with("failed"));
  std::string probe_id;
  for (const auto& e : page.take_events("Network.requestWillBeSent"))
    if (e.at("request").as_object().at("url").as_string() == "http://192.0.2.1/probe")
      probe_id = e.at("requestId").as_string();
  REQUIRE(probe_id != "");
  std::string refusal;
  while (refusal.empty()) {  // each wait bounded; the probe's failure has been reported already
    const json::object failed = page.wait_for_event("Network.loadingFailed", 5s);
    if (failed.at("requestId").as_string() == probe_id)
      refusal = failed.at("errorText").as_string();
  }
  CHECK_THAT(refusal, Catch::Matchers::Contains("PROXY"));

  // A picture for a person to look at (and a check that the browser can draw the page).
  const std::vector<unsigned char> png = page.screenshot();
  const std::filesystem::path out =
      std::filesystem::path(ZCPROXY_TEST_OUTPUT_DIR) / "stats_page.png";
  std::filesystem::create_directories(out.parent_path());
  std::ofstream(out, std::ios::binary)
      .write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  INFO(out.string());
  REQUIRE(std::filesystem::file_size(out) > 8);
  std::ifstream in(out, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof magic);
  CHECK(std::memcmp(magic, "\x89PNG\r\n\x1a\n", sizeof magic) == 0);
}
