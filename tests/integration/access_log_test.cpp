// The access log's lines for connections that last (log.on_connect, log.interval), from the
// binary on real loopback sockets: a connect line as the upstream connection is made, an interim
// line per interval with the bytes so far, and the final line as it always was, in both formats;
// and the interim lines of many idle connections written by each worker's one sweep timer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;

namespace {

// The file's complete lines, without their newlines (read while the proxy writes, the last one
// may not be whole yet).
std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::string text = slurp(path);
  text.erase(text.find_last_of('\n') + 1);  // npos + 1 == 0: no complete line, nothing
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "127.0.0.1:PORT" of a client socket, as the access log names it.
std::string client_of(const fd& c) {
  sockaddr_in me{};
  socklen_t len = sizeof me;
  REQUIRE(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&me), &len) == 0);
  return "127.0.0.1:" + std::to_string(ntohs(me.sin_port));
}

// A line's fields by name, whichever the format: a text line's key=value pairs, or a JSON line's
// members (strings as they are, numbers as digits, null as "-"). "event" is absent from a final
// line in both.
std::map<std::string, std::string> fields_of(const std::string& line, bool json) {
  std::map<std::string, std::string> out;
  if (!json) {
    std::istringstream words(line);
    std::string time, tag;
    words >> time >> tag;
    REQUIRE(tag == "access");
    for (std::string w; words >> w;) {
      const auto eq = w.find('=');
      REQUIRE(eq != std::string::npos);
      out[w.substr(0, eq)] = w.substr(eq + 1);
    }
    return out;
  }
  const boost::json::value parsed = boost::json::parse(line);
  for (const auto& [key, value] : parsed.as_object()) {
    if (value.is_string())
      out[std::string(key)] = std::string(value.as_string());
    else if (value.is_null())
      out[std::string(key)] = "-";
    else
      out[std::string(key)] = std::to_string(value.to_number<std::uint64_t>());
  }
  return out;
}

// What kind of line: "connect", "interim", or "close" for the final line (no event field).
std::string event_of(const std::map<std::string, std::string>& f) {
  const auto it = f.find("event");
  return it == f.end() ? "close" : it->second;
}

std::uint64_t number(const std::map<std::string, std::string>& f, const std::string& key) {
  INFO(key);
  REQUIRE(f.count(key) == 1);
  return std::stoull(f.at(key));
}

// Send `n` bytes and read them back from the echo behind the proxy.
void echo_bytes(const fd& c, std::size_t n) {
  const bytes data = random_bytes(n, static_cast<std::uint32_t>(n));
  send_all(c.get(), data);
  REQUIRE(recv_exact(c.get(), n) == data);
}

// Milliseconds since the epoch of a JSON line's "2026-11-25T17:02:20.123Z".
std::int64_t epoch_ms(const std::string& rfc3339) {
  std::tm parts{};
  REQUIRE(::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &parts) != nullptr);
  return static_cast<std::int64_t>(::timegm(&parts)) * 1000 + std::stoi(rfc3339.substr(20, 3));
}

}  // namespace

TEST_CASE(
    "access log: a connection open for 3 intervals gives 1 connect line, 3 interim lines with "
    "growing byte counts, then its final line as it always was",
    "[integration][log][access_events]") {
  const std::string format = GENERATE(as<std::string>{}, "text", "json");
  const bool json = format == "json";
  INFO(format);
  upstream_server echo(echo_handler());
  temp_dir d;
  const std::string access = d.file("access.log");
  running_proxy zc(d, echo.port(),
                   "threads: 1\nlog: { level: info, access_format: " + format +
                       ", access_file: " + access + ", on_connect: true, interval: 1s }\n");
  fd c = connect_to(zc.port);
  const std::string client = client_of(c);
  auto kinds = [&](const std::string& event) {
    std::size_t n = 0;
    for (const auto& line : lines_of(access)) n += event_of(fields_of(line, json)) == event;
    return n;
  };
  REQUIRE(wait_until([&] { return kinds("connect") == 1; }, 10s));
  // Between interim lines the client moves 1000, then 2000, then 3000 bytes each way, read back
  // before the next line is awaited: each interim line's counts are exact and growing. The
  // client closes once the third is written (about 3 intervals in; the fourth is due at 4).
  std::size_t sent = 0;
  for (std::size_t k = 1; k <= 3; ++k) {
    echo_bytes(c, 1000 * k);
    sent += 1000 * k;
    REQUIRE(wait_until([&] { return kinds("interim") == k; }, 10s));
  }
  echo_bytes(c, 4000);
  shutdown_write(c.get());
  CHECK(recv_all(c.get()).empty());
  REQUIRE(wait_until([&] { return kinds("close") == 1; }, 10s));

  const auto lines = lines_of(access);
  REQUIRE(lines.size() == 5);  // exactly: 1 connect, 3 interim, 1 final, in that order
  std::vector<std::map<std::string, std::string>> f;
  for (const auto& line : lines) f.push_back(fields_of(line, json));
  const std::string endpoint = "127.0.0.1:" + std::to_string(echo.port());
  CHECK(event_of(f[0]) == "connect");
  CHECK(f[0].at("client") == client);
  CHECK(f[0].at("listener") == "web");
  CHECK(f[0].at("endpoint") == endpoint);
  CHECK(number(f[0], "connect_ms") < 3000);  // a loopback connect; the timeout is 3 s
  CHECK(f[0].count("bytes_up") == 0);
  const std::uint64_t expected[] = {1000, 3000, 6000};
  for (std::size_t k = 1; k <= 3; ++k) {
    INFO("interim line " << k);
    CHECK(event_of(f[k]) == "interim");
    CHECK(f[k].at("client") == client);
    CHECK(f[k].at("endpoint") == endpoint);
    CHECK(number(f[k], "bytes_up") == expected[k - 1]);
    CHECK(number(f[k], "bytes_down") == expected[k - 1]);
    // Due every interval from the relay's start, written by a sweep within 100 ms of it (and a
    // little for a loaded machine).
    CHECK(number(f[k], "duration_ms") >= 1000 * k);
    CHECK(number(f[k], "duration_ms") < 1000 * k + 600);
    CHECK(f[k].count("close") == 0);
  }
  CHECK(sent == 6000);
  // The final line: no event, the totals, and its close.
  CHECK(event_of(f[4]) == "close");
  CHECK(f[4].at("client") == client);
  CHECK(number(f[4], "bytes_up") == 10000);
  CHECK(number(f[4], "bytes_down") == 10000);
  CHECK(number(f[4], "duration_ms") >= 3000);
  CHECK(f[4].at("close") == "eof");
  if (!json)
    CHECK_THAT(lines[4], Catch::Matches(R"(\S+ access client=\S+ listener=web .* close=eof)"));
  if (json) CHECK(boost::json::parse(lines[4]).as_object().size() == 13);
}

TEST_CASE(
    "access log: the interim lines of 1,000 idle connections come in batches of the worker's one "
    "sweep timer, not one timer each",
    "[integration][log][access_events]") {
  // An upstream that never accepts: the kernel completes each connect into its queue, and the
  // connections stay idle (no thread or fd here per connection).
  std::uint16_t up_port = 0;
  fd up = listen_loopback(up_port, 2048);
  temp_dir d;
  const std::string access = d.file("access.log");
  running_proxy zc(d, up_port,
                   "threads: 1\nlog: { level: info, access_format: json, access_file: " + access +
                       ", interval: 1s }\n");
  // 1,000 connections opened one a millisecond (paced: their starts are meant to be spread
  // evenly over about a second), so a timer of each connection's own would write their interim
  // lines just as evenly spread, one a millisecond.
  constexpr std::size_t count = 1000;
  std::vector<fd> clients;
  std::set<std::string> names;
  const auto began = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    std::this_thread::sleep_until(began + std::chrono::milliseconds(i));
    clients.push_back(connect_to(zc.port));
    names.insert(client_of(clients.back()));
  }
  // The first interim line of each.
  std::map<std::string, std::int64_t> first;
  REQUIRE(wait_until(
      [&] {
        for (const auto& line : lines_of(access)) {
          const auto o = boost::json::parse(line).as_object();
          const std::string client(o.at("client").as_string());
          if (o.at("event") == "interim" && !first.count(client))
            first[client] = epoch_ms(std::string(o.at("time").as_string()));
        }
        return first.size() == count;
      },
      30s));
  for (const auto& [client, at] : first) REQUIRE(names.count(client) == 1);
  // Batches: a batch starts at a line and holds every later line written within 20 ms of that
  // start. One sweep (every 100 ms) writes the lines due at its tick together, so the lines come
  // in about one batch per 100 ms of their span; a timer per connection would give about one per
  // 21 ms of it (evenly spread lines, a new batch each 20 ms). The bound doubles the sweep's count
  // for a loaded machine that stalls a sweep halfway.
  std::vector<std::int64_t> times;
  for (const auto& [client, at] : first) times.push_back(at);
  std::sort(times.begin(), times.end());
  const std::int64_t span = times.back() - times.front();
  std::size_t batches = 0;
  for (std::size_t i = 0; i < times.size();) {
    const std::int64_t start = times[i];
    while (i < times.size() && times[i] <= start + 20) ++i;
    ++batches;
  }
  INFO("interim lines over " << span << " ms in " << batches << " batches");
  CHECK(span >= 500);  // the connections' starts were spread
  CHECK(batches <= 2 * (static_cast<std::size_t>(span) / 100 + 1));
  CHECK(batches < static_cast<std::size_t>(span) / 21);
  // Idle: nothing moved.
  for (const auto& line : lines_of(access)) {
    const auto o = boost::json::parse(line).as_object();
    CHECK(o.at("bytes_up").to_number<std::uint64_t>() == 0);
  }
}
