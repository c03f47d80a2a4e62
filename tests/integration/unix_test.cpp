// Unix domain sockets as listeners and as endpoints, on real sockets in a temporary directory:
// bytes intact both ways through each engine, the socket file's life (stale ones replaced, live
// ones refused, removed at shutdown and when a reload drops the listener), PROXY headers and
// health checks to Unix endpoints, and the access log of a Unix client.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <mutex>
#include <string>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

void echo(fd s) {
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    send_all(s.get(), buf, static_cast<std::size_t>(n));
  }
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

zcproxy::config unix_config(const std::string& listeners, const std::string& upstreams,
                            const std::string& engine = "splice") {
  return zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n" + listeners + "upstreams:\n" + upstreams,
      "unix.yaml");
}

// `size` random bytes each way at once through `c` to an echo backend; true when they came back
// intact.
bool echoes_intact(fd& c, std::size_t size, std::uint32_t seed) {
  const bytes sent = random_bytes(size, seed);
  thread_group writer;
  writer.spawn([&] {
    send_all(c.get(), sent);
    shutdown_write(c.get());
  });
  const bytes got = recv_all(c.get());
  writer.join();
  CHECK(writer.errors().empty());
  CHECK(got.size() == sent.size());
  return checksum(got) == checksum(sent);
}

}  // namespace

TEST_CASE("unix: a TCP listener in front of a Unix socket endpoint, each engine",
          "[unix][integration]") {
  temp_dir d;
  const std::string backend_path = d.file("app.sock");
  upstream_server backend(echo, backend_path);
  for (const char* engine : {"splice", "copy", "auto"}) {
    INFO("engine " << engine);
    test::proxy p(unix_config("  - { name: tcp, bind: \"127.0.0.1:0\", upstream: app }\n",
                              "  app: { endpoints: [\"unix:" + backend_path + "\"] }\n", engine));
    constexpr std::size_t size = 16 << 20;
    fd c = connect_to(p.port());
    CHECK(echoes_intact(c, size, 1));
    REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
    const auto st = p.srv->snapshot();
    CHECK(st.bytes_spliced + st.bytes_copied == 2 * size);
    if (std::string(engine) == "copy")
      CHECK(st.bytes_spliced == 0);
    else
      CHECK(st.bytes_copied == 0);  // the kernel splices Unix sockets: no fallback
  }
}

TEST_CASE(
    "unix: a Unix listener in front of TCP and Unix endpoints, its socket file removed at "
    "shutdown",
    "[unix][integration]") {
  temp_dir d;
  const std::string to_tcp = d.file("to-tcp.sock"), to_unix = d.file("to-unix.sock");
  upstream_server tcp_backend(echo);
  upstream_server unix_backend(echo, d.file("backend.sock"));
  {
    test::proxy p(
        unix_config("  - { name: a, bind: \"unix:" + to_tcp +
                        "\", upstream: tcp }\n"
                        "  - { name: b, bind: \"unix:" +
                        to_unix + "\", upstream: unix }\n",
                    "  tcp: { endpoints: [\"127.0.0.1:" + std::to_string(tcp_backend.port()) +
                        "\"] }\n"
                        "  unix: { endpoints: [\"unix:" +
                        d.file("backend.sock") + "\"] }\n"));
    CHECK(p.srv->listening().at(0).to_string() == "unix:" + to_tcp);
    // Several clients at once, over both workers' share of the one socket.
    for (const auto& path : {to_tcp, to_unix}) {
      INFO(path);
      std::vector<fd> clients;
      for (int i = 0; i < 8; ++i) clients.push_back(connect_unix(path));
      for (std::size_t i = 0; i < clients.size(); ++i)
        CHECK(echoes_intact(clients[i], 1 << 20, static_cast<std::uint32_t>(i)));
    }
    REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
    CHECK(p.srv->snapshot().bytes_copied == 0);
    CHECK(exists(to_tcp));
  }
  CHECK_FALSE(exists(to_tcp));
  CHECK_FALSE(exists(to_unix));
}

TEST_CASE("unix: a stale socket file is replaced, a live one or another file refuses the listener",
          "[unix][integration]") {
  temp_dir d;
  upstream_server backend(echo);
  const std::string path = d.file("proxy.sock");
  auto config_on = [&](const std::string& at) {
    return unix_config(
        "  - { name: u, bind: \"unix:" + at + "\", upstream: app }\n",
        "  app: { endpoints: [\"127.0.0.1:" + std::to_string(backend.port()) + "\"] }\n");
  };
  { fd stale = listen_unix(path); }  // closed without unlinking, as after a crash
  REQUIRE(exists(path));
  test::proxy first(config_on(path));
  fd c = connect_unix(path);
  CHECK(echoes_intact(c, 4096, 9));

  // A second proxy on the same path: refused, and the first one's file is left alone.
  CHECK_THROWS_WITH(test::proxy(config_on(path)),
                    Contains("listener u: cannot listen on unix:" + path) && Contains("in use"));
  fd again = connect_unix(path);
  CHECK(echoes_intact(again, 4096, 10));

  const std::string regular = d.file("not-a-socket", "data");
  CHECK_THROWS_WITH(test::proxy(config_on(regular)), Contains("exists"));
  CHECK(slurp(regular) == "data");
}

TEST_CASE(
    "unix: a reload that removes a Unix listener removes its socket file, one that keeps it "
    "keeps serving",
    "[unix][reload][integration]") {
  temp_dir d;
  upstream_server backend(echo);
  const std::string ups =
      "  app: { endpoints: [\"127.0.0.1:" + std::to_string(backend.port()) + "\"] }\n";
  const std::string keep = d.file("keep.sock"), drop = d.file("drop.sock");
  test::proxy p(unix_config("  - { name: keep, bind: \"unix:" + keep +
                                "\", upstream: app }\n"
                                "  - { name: drop, bind: \"unix:" +
                                drop + "\", upstream: app }\n",
                            ups));
  fd open_through_drop = connect_unix(drop);
  CHECK(p.srv
            ->reload(unix_config("  - { name: keep, bind: \"unix:" + keep + "\", upstream: app }\n",
                                 ups))
            .error == "");
  CHECK_FALSE(exists(drop));
  fd c = connect_unix(keep);
  CHECK(echoes_intact(c, 1 << 20, 3));
  // A connection made through the removed listener before the reload is still served.
  CHECK(echoes_intact(open_through_drop, 1 << 20, 4));
  // Added back by a later reload: bound afresh.
  CHECK(p.srv
            ->reload(unix_config("  - { name: keep, bind: \"unix:" + keep +
                                     "\", upstream: app }\n"
                                     "  - { name: drop, bind: \"unix:" +
                                     drop + "\", upstream: app }\n",
                                 ups))
            .error == "");
  fd back = connect_unix(drop);
  CHECK(echoes_intact(back, 4096, 5));
}

TEST_CASE("unix: PROXY headers and health checks to a Unix endpoint",
          "[unix][proxy][integration]") {
  temp_dir d;
  std::mutex mutex;
  std::vector<std::string> firsts;  // the first line each backend connection got
  upstream_server backend(
      [&](fd s) {
        const bytes got = recv_all(s.get());
        std::string text(got.begin(), got.end());
        std::lock_guard lock(mutex);
        firsts.push_back(text.substr(0, text.find('\n') + 1));
      },
      d.file("backend.sock"));
  const std::string in = d.file("in.sock");
  test::proxy p(
      unix_config("  - { name: tcp, bind: \"127.0.0.1:0\", upstream: app }\n"
                  "  - { name: local, bind: \"unix:" +
                      in + "\", upstream: app }\n",
                  "  app:\n    endpoints: [\"unix:" + d.file("backend.sock") +
                      "\", \"unix:" + d.file("missing.sock") + "\"]\n    send_proxy: v1\n" +
                      "    health_check: { interval: 50ms, rise: 1, fall: 1 }\n"));
  // The health checks connect over Unix sockets: the missing one goes down, the live one stays.
  REQUIRE(wait_until([&] { return !p.srv->snapshot().endpoints.at(1).healthy; }));
  CHECK(p.srv->snapshot().endpoints.at(0).healthy);
  {
    fd c = connect_to(p.port());
    send_all(c.get(), "x", 1);
    shutdown_write(c.get());
    recv_all(c.get());
  }
  {
    fd c = connect_unix(in);
    send_all(c.get(), "y", 1);
    shutdown_write(c.get());
    recv_all(c.get());
  }
  REQUIRE(wait_until([&] {
    std::lock_guard lock(mutex);
    return std::count_if(firsts.begin(), firsts.end(), [](const auto& f) {
             return f.starts_with("PROXY TCP4") || f.starts_with("PROXY UNKNOWN");
           }) >= 2;
  }));
  std::lock_guard lock(mutex);
  // A TCP client's addresses, then a Unix client, which has none to send.
  bool tcp_seen = false, unknown_seen = false;
  for (const auto& f : firsts) {
    if (f.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 ")) tcp_seen = true;
    if (f == "PROXY UNKNOWN\r\n") unknown_seen = true;
  }
  CHECK(tcp_seen);
  CHECK(unknown_seen);
}

TEST_CASE("unix: the binary serves a Unix listener and logs its clients", "[unix][binary]") {
  temp_dir d;
  upstream_server backend(echo);
  const std::string sock = d.file("zcproxy.sock");
  running_proxy r(d,
                  "threads: 2\nlog: { level: info, access_log: true }\nrelay: { engine: splice }\n"
                  "listeners:\n"
                  "  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
                  "  - { name: local, bind: \"unix:" +
                      sock +
                      "\", upstream: app }\n"
                      "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
                      std::to_string(backend.port()) + "\"] }\n",
                  "web");
  // Listed after "web", whose line the start-up waited for.
  CHECK(wait_until(
      [&] { return r.log().find("listener local on unix:" + sock) != std::string::npos; }));
  {
    fd c = connect_unix(sock);
    CHECK(echoes_intact(c, 1 << 20, 11));
  }
  REQUIRE(
      wait_until([&] { return slurp(d.file("out")).find("listener=local") != std::string::npos; }));
  CHECK_THAT(slurp(d.file("out")),
             Contains("client=unix: listener=local sni=- upstream=app endpoint=127.0.0.1:") &&
                 Contains("engine_up=splice engine_down=splice close=eof"));
  ::kill(r.proc.pid, SIGTERM);
  CHECK(r.proc.wait() == 0);
  CHECK_FALSE(exists(sock));
}
