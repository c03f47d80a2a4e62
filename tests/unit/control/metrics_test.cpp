// Metric rendering: the Prometheus text passes a strict reader and carries the values given;
// stats.json parses and carries every field; the counters' bookkeeping (close reasons,
// fallbacks, the duration histogram, per-worker byte slots).
#include "control/metrics.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <regex>

#include "support/prometheus.hpp"

using Catch::Matchers::Contains;
using namespace zcproxy;

namespace {

proxy_stats sample_stats() {
  listener_metrics m(2);
  m.accepted = 5;
  m.active = 1;
  add_single_writer(m.traffic[0].up, 1000);
  add_single_writer(m.traffic[1].up, 24);
  add_single_writer(m.traffic[0].down, 4096);
  add_single_writer(m.traffic[0].spliced, 5000);
  add_single_writer(m.traffic[1].copied, 120);
  m.ended(close_reason::eof, 0.0005, splice_fallback::none, splice_fallback::none);
  m.ended(close_reason::eof, 2.5, splice_fallback::refused, splice_fallback::refused);
  m.ended(close_reason::denied, 0.002, splice_fallback::none, splice_fallback::none);
  m.ended(close_reason::idle_timeout, 601, splice_fallback::pool_exhausted, splice_fallback::none);
  m.ended(close_reason::fallback, 7200, splice_fallback::none, splice_fallback::none);

  proxy_stats s;
  s.version = "1.2.3";
  s.start_time = 1795600000.25;
  s.now = 1795600100.5;
  s.sessions = 1;
  s.pipes_leased = 2;
  s.pipes_idle = 3;
  s.reloads = 4;
  s.reloads_failed = 1;
  listener_stats l = listener_stats::read(m);
  l.name = "we\"b\\\n";  // every character a label value must escape
  l.bind = "127.0.0.1:8080";
  l.destination = "upstream app";
  s.listeners.push_back(l);
  l.name = "tls";
  s.listeners.push_back(l);
  endpoint_stats e;
  e.upstream = "app";
  e.at = *parse_address("[::1]:9000");
  e.healthy = false;
  e.usable = false;
  e.active = 2;
  e.weight = 4;
  e.effective_weight = 1.5;  // in its slow start
  e.connections = 7;
  e.connect_failures = 3;
  e.bytes_up = 11;
  e.bytes_down = 22;
  s.endpoints.push_back(e);
  return s;
}

}  // namespace

TEST_CASE("metrics: close reasons, refusals and timeout kinds", "[metrics]") {
  CHECK(to_string(close_reason::eof) == "eof");
  CHECK(to_string(close_reason::no_route) == "no_route");
  CHECK(to_string(close_reason::fallback) == "fallback");
  CHECK(is_refusal(close_reason::denied));
  CHECK(is_refusal(close_reason::sni_timeout));
  CHECK_FALSE(is_refusal(close_reason::reset));
  CHECK(timeout_kind(close_reason::idle_timeout) == "idle");
  CHECK(timeout_kind(close_reason::connect_timeout) == "connect");
  CHECK(timeout_kind(close_reason::eof).empty());
}

TEST_CASE("metrics: a listener's counters sum the worker slots and bucket durations", "[metrics]") {
  const listener_stats l = sample_stats().listeners[0];
  CHECK(l.accepted == 5);
  CHECK(l.active == 1);
  CHECK(l.bytes_up == 1024);
  CHECK(l.bytes_down == 4096);
  CHECK(l.spliced == 5000);
  CHECK(l.copied == 120);
  CHECK(l.closed[close_reason::eof] == 2);
  CHECK(l.closed[close_reason::denied] == 1);
  CHECK(l.closed[close_reason::fallback] == 1);
  CHECK(l.fallbacks[0] == 2);  // splice_refused, both directions of one connection
  CHECK(l.fallbacks[1] == 1);  // pipe_pool_exhausted
  // 0.0005 <= 0.001; 0.002 <= 0.01; 2.5 <= 10; 601 <= 1800; 7200 > 3600: +Inf.
  CHECK(l.durations[0] == 1);
  CHECK(l.durations[1] == 1);
  CHECK(l.durations[4] == 1);
  CHECK(l.durations[7] == 1);
  CHECK(l.durations[duration_buckets.size()] == 1);
  CHECK(l.duration_sum == Approx(0.0005 + 2.5 + 0.002 + 601 + 7200));
}

TEST_CASE("metrics: the Prometheus text is well-formed and carries the values", "[metrics]") {
  const std::string text = render_prometheus(sample_stats());
  INFO(text);
  const auto series = test::parse_prometheus(text);
  const std::string web = R"(listener="we\"b\\\n")";
  CHECK(series.at(R"(zcproxy_build_info{version="1.2.3"})") == 1);
  CHECK(series.at("zcproxy_start_time_seconds{}") == 1795600000.25);
  CHECK(series.at(R"(zcproxy_pipes{state="leased"})") == 2);
  CHECK(series.at(R"(zcproxy_config_reloads_total{result="refused"})") == 1);
  CHECK(series.at("zcproxy_listener_connections_accepted_total{" + web + "}") == 5);
  CHECK(series.at(R"(zcproxy_listener_connections_accepted_total{listener="tls"})") == 5);
  CHECK(series.at("zcproxy_listener_connections_refused_total{" + web + R"(,reason="denied"})") ==
        1);
  CHECK(series.count("zcproxy_listener_connections_refused_total{" + web + R"(,reason="eof"})") ==
        0);
  CHECK(series.at("zcproxy_listener_connections_closed_total{" + web + R"(,reason="eof"})") == 2);
  CHECK(series.at("zcproxy_listener_timeouts_total{" + web + R"(,kind="idle"})") == 1);
  CHECK(series.at("zcproxy_listener_bytes_total{" + web + R"(,direction="client_to_upstream"})") ==
        1024);
  CHECK(series.at("zcproxy_listener_relayed_bytes_total{" + web + R"(,engine="copy"})") == 120);
  CHECK(series.at("zcproxy_listener_splice_fallbacks_total{" + web +
                  R"(,reason="pipe_pool_exhausted"})") == 1);
  CHECK(series.at("zcproxy_listener_session_duration_seconds_bucket{" + web + R"(,le="0.01"})") ==
        2);
  CHECK(series.at("zcproxy_listener_session_duration_seconds_bucket{" + web + R"(,le="+Inf"})") ==
        5);
  CHECK(series.at("zcproxy_listener_session_duration_seconds_count{" + web + "}") == 5);
  const std::string ep = R"(upstream="app",endpoint="[::1]:9000")";
  CHECK(series.at("zcproxy_endpoint_up{" + ep + "}") == 0);
  CHECK(series.at("zcproxy_endpoint_connections_active{" + ep + "}") == 2);
  CHECK(series.at("zcproxy_endpoint_weight{" + ep + "}") == 4);
  CHECK(series.at("zcproxy_endpoint_effective_weight{" + ep + "}") == 1.5);
  CHECK(series.at("zcproxy_endpoint_connections_total{" + ep + "}") == 7);
  CHECK(series.at("zcproxy_endpoint_connect_failures_total{" + ep + "}") == 3);
  CHECK(series.at("zcproxy_endpoint_bytes_total{" + ep + R"(,direction="upstream_to_client"})") ==
        22);
}

TEST_CASE("metrics: the strict reader refuses what the format does not allow", "[metrics]") {
  const char* bad[] = {
      "x 1\n",                                  // no TYPE
      "# TYPE x_total counter\nx_total 1",      // no final line feed
      "# TYPE x counter\nx 1\n",                // counter without _total
      "# TYPE x gauge\nx{a=\"1} 1\n",           // unterminated label value
      "# TYPE x gauge\nx{a=\"\\q\"} 1\n",       // bad escape
      "# TYPE x gauge\nx one\n",                // bad value
      "# TYPE x gauge\nx 1\nx 2\n",             // series twice
      "# TYPE x gauge\n# TYPE x gauge\n",       // family twice
      "# TYPE x gauge\n# TYPE y gauge\nx 1\n",  // not contiguous
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",  // count differs
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\n",     // no +Inf
  };
  for (const char* text : bad) {
    INFO(text);
    CHECK_THROWS(test::parse_prometheus(text));
  }
  CHECK(test::parse_prometheus("# HELP x a gauge\n# TYPE x gauge\nx{a=\"q\\\"\"} -1.5e3\n")
            .at("x{a=\"q\\\"\"}") == -1500);
}

TEST_CASE("metrics: stats.json parses and carries every field", "[metrics]") {
  const proxy_stats s = sample_stats();
  const std::string text =
      render_stats_json(s, {{1795600099.5, 100.5, 200}, {1795600100.5, 0, 3000}});
  const auto root = boost::json::parse(text).as_object();
  CHECK(root.at("version").as_string() == "1.2.3");
  CHECK(root.at("start_time").to_number<double>() == 1795600000.25);
  CHECK(root.at("connections_active").to_number<int>() == 1);
  CHECK(root.at("pipes").at("idle").to_number<int>() == 3);
  CHECK(root.at("reloads").at("applied").to_number<int>() == 4);
  const auto& l = root.at("listeners").as_array().at(0).as_object();
  CHECK(l.at("name").as_string() == "we\"b\\\n");
  for (const char* key : {"bind", "destination", "accepted", "active", "bytes_up", "bytes_down",
                          "spliced", "copied", "closed", "fallbacks"}) {
    INFO(key);
    CHECK(l.contains(key));
  }
  CHECK(l.at("bytes_up").to_number<std::uint64_t>() == 1024);
  CHECK(l.at("closed").at("eof").to_number<int>() == 2);
  CHECK(l.at("closed").as_object().size() == close_reasons.size());
  CHECK(l.at("fallbacks").at("splice_refused").to_number<int>() == 2);
  const auto& e = root.at("endpoints").as_array().at(0).as_object();
  CHECK(e.at("address").as_string() == "[::1]:9000");
  CHECK(e.at("healthy").as_bool() == false);
  CHECK(e.at("connect_failures").to_number<int>() == 3);
  CHECK(e.at("weight").to_number<int>() == 4);
  CHECK(e.at("effective_weight").to_number<double>() == 1.5);
  const auto& h = root.at("history").as_array();
  REQUIRE(h.size() == 2);
  CHECK(h[0].at("up").to_number<double>() == 100.5);
  CHECK(h[1].at("down").to_number<double>() == 3000);
}

TEST_CASE("metrics: the stats page is one self-contained document", "[metrics]") {
  const std::string page(stats_page_html());
  CHECK_THAT(page, Contains("<!doctype html>") && Contains("stats.json") && Contains("<svg"));
  // No external assets: the only absolute URL is the SVG namespace, a name that is never
  // loaded; nothing names a resource to load (src, href, url(), @import, link, frames, objects);
  // the only request is a relative fetch of stats.json.
  std::string rest = page;
  for (std::size_t at; (at = rest.find("\"http://www.w3.org/2000/svg\"")) != std::string::npos;)
    rest.erase(at, 28);
  CHECK_THAT(rest, !Contains("http:", Catch::CaseSensitive::No) &&
                       !Contains("https:", Catch::CaseSensitive::No));
  const std::regex loads(
      R"((\bsrc|\bhref|\baction|\bsrcset)\s*=|url\s*\(|@import|<link|<iframe|<object|<embed|\bimport\s*\(|new\s+(WebSocket|EventSource|Worker)|XMLHttpRequest|sendBeacon)",
      std::regex::icase);
  CHECK_FALSE(std::regex_search(page, loads));
  const std::regex fetches(R"(fetch\s*\(\s*([^,)]*))");
  int n = 0;
  for (std::sregex_iterator it(page.begin(), page.end(), fetches), end; it != end; ++it, ++n)
    CHECK((*it)[1].str() == "\"stats.json\"");
  CHECK(n == 1);
}
