// The live stats page in a real browser (Debian's headless Chromium over the DevTools protocol):
// it refreshes in place while traffic flows, and once traffic stops it shows exactly what
// stats.json says and what the test moved. Leaves a screenshot in the build's test-output/.
#include <sys/socket.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <string>
#include <thread>

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

// What the page shows: its refresh count, its navigation entries, the marker the test left in
// its window, and every element with data-field (its text and data-value).
struct page_view {
  int refreshes = 0;
  int navigations = 0;
  std::string marker;
  json::object fields;

  std::string text(const std::string& field) const { return entry(field, "text"); }
  std::uint64_t number(const std::string& field) const {
    const std::string v = entry(field, "value");
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error("the page shows no whole number for " + field + ": \"" + v + "\"");
    return std::stoull(v);
  }

 private:
  std::string entry(const std::string& field, const char* key) const {
    const json::value* f = fields.if_contains(field);
    if (!f) throw std::runtime_error("the page has no data-field " + field);
    return std::string(f->as_object().at(key).as_string());
  }
};

// For a failure's message: what the page showed and what the traffic had done.
std::string state(const page_view& v, traffic& t) {
  std::string shown;
  for (const char* f :
       {"listeners.web.bytes_up", "listeners.web.bytes_down", "listeners.web.active"})
    if (const json::value* e = v.fields.if_contains(f))
      shown += std::string(", ") + f + " " + json::serialize(e->as_object().at("value"));
  return "the page had refreshed " + std::to_string(v.refreshes) + " times" + shown +
         "; the traffic had made " + std::to_string(t.connections) + " connections" +
         (t.failure().empty() ? "" : " and failed: " + t.failure());
}

page_view observe(cdp::page& page) {
  const json::value v = page.evaluate(R"js((() => {
    const fields = {};
    for (const e of document.querySelectorAll("[data-field]"))
      fields[e.dataset.field] = {text: e.textContent, value: e.dataset.value ?? ""};
    return {refreshes: Number(document.getElementById("status").dataset.refreshes),
            navigations: performance.getEntriesByType("navigation").length,
            marker: String(window.zcproxyTestMarker ?? ""),
            fields};
  })())js");
  const json::object& o = v.as_object();
  return {o.at("refreshes").to_number<int>(), o.at("navigations").to_number<int>(),
          std::string(o.at("marker").as_string()), o.at("fields").as_object()};
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

}  // namespace

TEST_CASE("stats page: a browser sees live counters that settle on stats.json's",
          "[admin][browser]") {
  if (!cdp::chromium_installed())
    FAIL(cdp::chromium_binary << " is missing: this test drives headless Chromium; install "
                                 "Debian's chromium package (apt-get install chromium)");

  auto backend = echo_chunks_twice();
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: auto }\n"
      "admin: { bind: \"127.0.0.1:0\" }\n"
      "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
      "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
          std::to_string(backend.port()) + "\"] }\n",
      "stats_page.yaml"));
  const auto admin = p.srv->admin_address();
  REQUIRE(admin);
  const std::string endpoint_address = "127.0.0.1:" + std::to_string(backend.port());
  const std::string endpoint = "endpoints.app." + endpoint_address + ".";

  traffic t(p.port());
  cdp::browser browser;
  cdp::page page(browser, "http://127.0.0.1:" + std::to_string(admin->port) + "/stats");
  page.evaluate("window.zcproxyTestMarker = 'kept'");

  // From its first refresh on, the page shows numbers.
  page_view first;
  const bool shown = wait_until(
      [&] {
        first = observe(page);
        return first.refreshes >= 1 && first.number("listeners.web.bytes_up") > 0;
      },
      15s);
  if (!shown) FAIL(state(first, t));
  CHECK(std::regex_match(first.text("listeners.web.accepted"), std::regex("[0-9]+")));
  CHECK(std::regex_match(first.text("listeners.web.bytes_up"), std::regex("[0-9.]+ [KMG]?i?B")));
  CHECK(std::regex_match(first.text("connections_active"), std::regex("[0-9]+")));

  // While traffic flows the counters grow, refreshed in place: the same document throughout.
  page_view later;
  const bool grew = wait_until(
      [&] {
        later = observe(page);
        return later.refreshes > first.refreshes &&
               later.number("listeners.web.bytes_up") > first.number("listeners.web.bytes_up");
      },
      15s);
  if (!grew) FAIL("first " << state(first, t) << "; then " << state(later, t));
  CHECK(later.navigations == 1);
  CHECK(later.marker == "kept");

  // Once traffic has stopped and every session has ended, the page settles on stats.json's
  // numbers, which are what the test moved.
  const std::string failure = t.stop();
  CHECK(failure == "");
  REQUIRE(t.connections > 0);
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }, 10s));
  const int settled_from = observe(page).refreshes;
  page_view last;
  REQUIRE(wait_until(
      [&] {
        last = observe(page);
        return last.refreshes >= settled_from + 2;
      },
      10s));
  const json::value stats = json::parse(http_get(admin->port, "/stats.json"));
  const json::object& web = entry_with(stats.at("listeners"), "name", "web");
  const json::object& ep = entry_with(stats.at("endpoints"), "address", endpoint_address);
  const struct {
    std::string field;
    std::uint64_t in_json, moved;
  } expected[] = {
      {"listeners.web.bytes_up", count(web, "bytes_up"), t.up},
      {"listeners.web.bytes_down", count(web, "bytes_down"), t.down},
      {"listeners.web.accepted", count(web, "accepted"), t.connections},
      {"listeners.web.active", count(web, "active"), 0},
      {endpoint + "connections", count(ep, "connections"), t.connections},
      {endpoint + "bytes_up", count(ep, "bytes_up"), t.up},
      {endpoint + "bytes_down", count(ep, "bytes_down"), t.down},
      {"connections_active", count(stats.as_object(), "connections_active"), 0},
  };
  for (const auto& e : expected) {
    INFO(e.field);
    CHECK(last.number(e.field) == e.in_json);
    CHECK(e.in_json == e.moved);
  }
  // What splice carried depends on the kernel; the page shows it as stats.json has it.
  CHECK(last.number("listeners.web.spliced") == count(web, "spliced"));
  CHECK(last.navigations == 1);
  CHECK(last.marker == "kept");
  CHECK(page.evaluate("document.querySelectorAll('#chart polyline').length").to_number<int>() >= 1);

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
