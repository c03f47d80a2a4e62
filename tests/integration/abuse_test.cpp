// Hostile clients against the binary: clients that reset at once (they must neither pass a deny
// list nor make the proxy connect upstream, and the access log still names them), and a flood of
// bad PROXY headers (a bounded number of main-log lines, every one counted in /metrics).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"
#include "zcproxy/log_limiter.hpp"

using namespace test;

namespace {

// A backend that reads until its client is gone; counts its connections.
upstream_server sink() {
  return upstream_server([](fd s) { recv_to_end(s.get()); });
}

double sample(std::uint16_t admin, const std::string& key) {
  const auto m = scrape_metrics(admin);
  const auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

double closed(std::uint16_t admin, const std::string& listener, const std::string& reason) {
  return sample(admin, R"(zcproxy_listener_connections_closed_total{listener=")" + listener +
                           R"(",reason=")" + reason + R"("})");
}

// `n` clients that connect and reset at once (SO_LINGER 0, as in the issue's reproduction); the
// addresses they came from ("127.0.0.1:PORT").
std::set<std::string> reset_burst(std::uint16_t port, int n) {
  std::set<std::string> from;
  for (int i = 0; i < n; ++i) {
    fd c = connect_to(port);
    sockaddr_in me{};
    socklen_t len = sizeof me;
    REQUIRE(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&me), &len) == 0);
    from.insert("127.0.0.1:" + std::to_string(ntohs(me.sin_port)));
    close_with_reset(c);
  }
  return from;
}

// The access log's JSON lines of `listener`, by client address.
std::map<std::string, boost::json::object> access_lines(const std::string& path,
                                                        const std::string& listener) {
  std::map<std::string, boost::json::object> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);) {
    auto o = boost::json::parse(line).as_object();
    if (o.at("listener").as_string() == listener) out[std::string(o.at("client").as_string())] = o;
  }
  return out;
}

}  // namespace

TEST_CASE(
    "abuse: clients that reset at once are denied by deny, never connected upstream, and "
    "logged with their address",
    "[abuse][acl][integration]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  auto backend = sink();
  temp_dir d;
  const std::string access = d.file("access.log");
  running_proxy zc(
      d,
      "threads: 2\nlog: { level: info, access_format: json, access_file: \"" + access +
          "\" }\nrelay: { engine: " + engine +
          " }\nadmin: { bind: \"127.0.0.1:0\" }\n"
          "listeners:\n"
          "  - { name: d, bind: \"127.0.0.1:0\", upstream: b, deny: [\"127.0.0.0/8\"] }\n"
          "  - { name: open, bind: \"127.0.0.1:0\", upstream: b }\n"
          "upstreams: { b: { endpoints: [\"127.0.0.1:" +
          std::to_string(backend.port()) + "\"] } }\n",
      "d");
  const std::uint16_t admin = zc.port_of("admin"), open = zc.port_of("listener open");

  // The issue's reproduction, as it comes: the proxy accepts while the resets arrive.
  std::set<std::string> denied = reset_burst(zc.port, 100);
  // And with every reset in before the proxy accepts (stopped meanwhile), when getpeername()
  // would already fail: on the deny listener, and on one without rules.
  REQUIRE(::kill(zc.proc.pid, SIGSTOP) == 0);
  const std::set<std::string> late = reset_burst(zc.port, 100);
  const std::set<std::string> gone = reset_burst(open, 100);
  REQUIRE(::kill(zc.proc.pid, SIGCONT) == 0);
  denied.insert(late.begin(), late.end());
  REQUIRE(denied.size() == 200);

  REQUIRE(wait_until([&] {
    return closed(admin, "d", "denied") + closed(admin, "open", "reset") >= 300 &&
           sample(admin, "zcproxy_connections_active{}") == 0;
  }));
  CHECK(closed(admin, "d", "denied") == 200);
  CHECK(closed(admin, "open", "reset") == 100);
  CHECK(backend.accepted_settled() == 0);

  // Every one of them in the access log, under its own address, with no endpoint.
  std::map<std::string, boost::json::object> lines_d, lines_open;
  REQUIRE(wait_until([&] {
    lines_d = access_lines(access, "d");
    lines_open = access_lines(access, "open");
    return lines_d.size() >= denied.size() && lines_open.size() >= gone.size();
  }));
  for (const auto& [from, expected_close, lines] :
       {std::tuple{denied, "denied", &lines_d}, std::tuple{gone, "reset", &lines_open}}) {
    CHECK(lines->size() == from.size());
    for (const auto& client : from) {
      INFO("client " << client);
      const auto it = lines->find(client);
      REQUIRE(it != lines->end());
      CHECK(it->second.at("close").as_string() == expected_close);
      CHECK(it->second.at("endpoint").is_null());
    }
  }
}

TEST_CASE(
    "abuse: a flood of bad PROXY headers writes a bounded number of log lines and counts "
    "each one",
    "[abuse][proxy_protocol][integration]") {
  auto backend = sink();
  temp_dir d;
  running_proxy zc(d,
                   "threads: 2\nlog: { level: info, access_log: false }\n"
                   "admin: { bind: \"127.0.0.1:0\" }\n"
                   "listeners:\n"
                   "  - { name: pp, bind: \"127.0.0.1:0\", upstream: b, accept_proxy: true }\n"
                   "upstreams: { b: { endpoints: [\"127.0.0.1:" +
                       std::to_string(backend.port()) + "\"] } }\n",
                   "pp");
  const std::uint16_t admin = zc.port_of("admin");
  constexpr int clients = 10000, threads = 4;
  const auto started = std::chrono::steady_clock::now();
  std::atomic<int> reset{0};
  {
    thread_group g;
    for (int t = 0; t < threads; ++t)
      g.spawn([&] {
        for (int i = 0; i < clients / threads; ++i) {
          fd c = connect_to(zc.port);
          send_all(c.get(), "GET / HTTP/1.1\r\n\r\n", 18);  // not a PROXY header
          const stream_end e = recv_to_end(c.get());
          if (e.data.empty() && e.reset) ++reset;
        }
      });
    g.join();
    REQUIRE(g.errors().empty());
  }
  CHECK(reset == clients);
  REQUIRE(wait_until([&] { return closed(admin, "pp", "proxy_header") >= clients; }));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(closed(admin, "pp", "proxy_header") == clients);
  CHECK(backend.accepted_settled() == 0);

  // At most `burst` lines per interval, plus one line per interval saying how many were left out.
  const std::string log = zc.log();
  std::size_t refused_lines = 0, summary_lines = 0;
  std::uint64_t told = 0;
  std::istringstream in(log);
  const std::regex summary(
      R"(listener pp: (\d+) more lines about clients closed with proxy_header)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (line.find("refused: PROXY header") != std::string::npos) ++refused_lines;
    if (std::regex_search(line, m, summary)) {
      ++summary_lines;
      told += std::stoull(m[1]);
    }
  }
  const auto intervals = static_cast<std::size_t>(
      elapsed / std::chrono::duration<double>(zcproxy::log_limiter::interval).count() + 1);
  INFO(refused_lines << " lines, " << summary_lines << " summaries in " << elapsed << " s");
  CHECK(refused_lines >= zcproxy::log_limiter::burst);
  CHECK(refused_lines <= intervals * zcproxy::log_limiter::burst);
  CHECK(summary_lines < intervals);
  // What the summaries told of, plus what was written, never exceeds what happened.
  CHECK(refused_lines + told <= static_cast<std::size_t>(clients));
}
