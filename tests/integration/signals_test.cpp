// Signals at odd times, sent to the binary for real: SIGPIPE (raised by writes into a peer that is
// gone) never kills it; SIGINT drains like SIGTERM and a second one closes at once; SIGHUP during
// a drain is refused, so no listener opens that nobody would serve.
#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// Whether `sig` is ignored by process `pid` (its SigIgn mask in /proc/PID/status).
bool ignores(pid_t pid, int sig) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("SigIgn:", 0) == 0)
      return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
  return false;
}

// An echo that answers a line with the same line.
upstream_server echo_server() {
  return upstream_server([](fd s) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
  });
}

std::string echo(fd& c, const std::string& text) {
  send_all(c.get(), text.data(), text.size());
  const bytes got = recv_exact(c.get(), text.size());
  return {got.begin(), got.end()};
}

std::string config(std::uint16_t upstream, const std::string& engine,
                   const std::string& more_listeners = "") {
  return "threads: 2\ndrain_timeout: 30s\nlog: { level: info, access_log: false }\n"
         "relay: { engine: " +
         engine +
         " }\n"
         "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n" +
         more_listeners +
         "upstreams:\n  app: { endpoints: [\"127.0.0.1:" + std::to_string(upstream) + "\"] }\n";
}

}  // namespace

TEST_CASE(
    "signals: SIGPIPE is ignored, and writes into upstreams that are gone never kill the "
    "proxy",
    "[signals][binary][integration]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  // Takes 64 KiB, then closes with bytes unread (a reset) while the client still sends: the
  // proxy's next writes into that socket fail, with EPIPE (and SIGPIPE: splice takes no
  // MSG_NOSIGNAL) once the reset's error has been read by the other direction.
  upstream_server quitter([](fd s) { recv_exact(s.get(), 64 << 10); });
  auto live = echo_server();
  temp_dir d;
  running_proxy zc(d,
                   config(quitter.port(), engine,
                          "  - { name: live, bind: \"127.0.0.1:0\", upstream: live }\n") +
                       "  live: { endpoints: [\"127.0.0.1:" + std::to_string(live.port()) +
                       "\"] }\n",
                   "web");
  CHECK(ignores(zc.proc.pid, SIGPIPE));
  const bytes chunk = random_bytes(256 << 10, 3);
  for (int i = 0; i < 20; ++i) {
    fd c = connect_to(zc.port);
    for (int k = 0; k < 32; ++k) {  // up to 8 MiB, until the proxy gives up on it
      const ssize_t n = ::send(c.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
    }
    recv_to_end(c.get());
  }
  // Alive, and serving.
  fd c = connect_to(zc.port_of("listener live"));
  CHECK(echo(c, "still here") == "still here");
  c.close();  // else the drain below would wait for it
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE("signals: SIGINT drains like SIGTERM, and a second SIGINT closes at once",
          "[signals][binary][integration][drain]") {
  auto up = echo_server();
  temp_dir d;
  running_proxy zc(d, config(up.port(), "adaptive"), "web");
  fd c = connect_to(zc.port);
  CHECK(echo(c, "open") == "open");
  REQUIRE(::kill(zc.proc.pid, SIGINT) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("draining") != std::string::npos; }));
  CHECK(wait_until([&] { return !can_connect(zc.port); }));  // no new connections
  CHECK(echo(c, "draining") == "draining");                  // the open one is still served
  REQUIRE(::kill(zc.proc.pid, SIGINT) == 0);
  recv_to_end(c.get());  // closed by the proxy now, not at drain_timeout (30 s)
  CHECK(zc.proc.wait(10s) == 0);
  CHECK_THAT(zc.log(), Catch::Contains("signal 2: closing open connections now"));
}

TEST_CASE(
    "signals: SIGHUP during a drain is refused, no listener opens, and the drain runs to "
    "its end",
    "[signals][binary][integration][drain]") {
  auto up = echo_server();
  temp_dir d;
  running_proxy zc(d, config(up.port(), "adaptive"), "web");
  fd c = connect_to(zc.port);
  CHECK(echo(c, "open") == "open");
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("draining") != std::string::npos; }));
  // A config with one more listener, then SIGHUP: refused while draining.
  std::ofstream(zc.config) << config(up.port(), "adaptive",
                                     "  - { name: late, bind: \"127.0.0.1:0\", upstream: app }\n");
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] {
    return zc.log().find("reload refused, the running config stays: the server is shutting down") !=
           std::string::npos;
  }));
  CHECK_THAT(zc.log(), !Catch::Contains("listener late on"));
  CHECK(echo(c, "draining") == "draining");  // the drain goes on, the open connection served
  c.close();
  CHECK(zc.proc.wait(10s) == 0);  // and ends with it
  CHECK_THAT(zc.log(), !Catch::Contains("listener late on"));
}
