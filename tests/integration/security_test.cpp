// The binary's security defaults: `user:` gives up root once the listeners are bound, for good;
// core dumps are off unless asked for; what an unprivileged start cannot do is a clear error
// with exit code 2. These tests need root (as CI has): without it they are reported as skipped
// (CTest's SKIP_REGULAR_EXPRESSION "SKIPPED:"), and CI fails on any skipped test.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;

namespace {

constexpr unsigned nobody = 65534;  // Debian's nobody and nogroup

bool root() {
  if (::geteuid() == 0) return true;
  WARN("SKIPPED: not root: this test needs root to drop privileges from");
  return false;
}

// A port below 1024 that nothing uses on 127.0.0.1 now.
std::uint16_t free_privileged_port(std::uint16_t not_this = 0) {
  for (std::uint16_t p = 1023; p > 900; --p) {
    if (p == not_this) continue;
    fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(p);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return p;
  }
  FAIL("no free port from 901 to 1023");
  return 0;
}

// Below this port binding needs CAP_NET_BIND_SERVICE.
unsigned unprivileged_port_start() {
  std::ifstream f("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  unsigned v = 1024;
  f >> v;
  return v;
}

// "Max core file size" soft and hard limits, as /proc/PID/limits prints them.
std::string core_limits(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("Max core file size", 0) == 0) {
      std::istringstream in(line.substr(18));
      std::string soft, hard;
      in >> soft >> hard;
      return soft + " " + hard;
    }
  return "";
}

std::string listener_config(std::uint16_t port, std::uint16_t upstream, const std::string& head) {
  return head + "listeners:\n  - { name: web, bind: \"127.0.0.1:" + std::to_string(port) +
         "\", upstream: app }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:" +
         std::to_string(upstream) + "\"] }\n";
}

// A directory (and config) that nobody may read: the process reads its config again on reload.
void open_to_all(const temp_dir& d) {
  REQUIRE(::chmod(d.path.c_str(), 0755) == 0);
}

void echo(fd s) {
  send_all(s.get(), recv_all(s.get()));
}

bool round_trip(std::uint16_t port) {
  fd c = connect_to(port);
  send_all(c.get(), "ping", 4);
  shutdown_write(c.get());
  return recv_all(c.get()) == bytes{'p', 'i', 'n', 'g'};
}

// zcproxy run as nobody (setpriv, util-linux), its exit code and stderr.
int run_as_nobody(const temp_dir& d, const std::string& conf, std::string& err) {
  process p("setpriv",
            {"--reuid=65534", "--regid=65534", "--clear-groups", ZCPROXY_BINARY, "-c", conf},
            "/dev/null", d.file("out"), d.file("err"));
  const int code = p.wait();
  err = slurp(d.file("err"));
  return code;
}

}  // namespace

TEST_CASE("security: user: binds a privileged port as root, then serves as that user for good",
          "[security][binary]") {
  if (!root()) return;
  upstream_server up(echo);
  temp_dir d;
  open_to_all(d);
  const std::uint16_t port = free_privileged_port();
  running_proxy zc(d, listener_config(port, up.port(), "threads: 2\nuser: nobody\n"), "web");
  CHECK(zc.port == port);
  REQUIRE(wait_until(
      [&] { return zc.log().find("running as user nobody (uid 65534)") != std::string::npos; }));
  // Real, effective, saved and filesystem ids: all nobody's; no supplementary group; no
  // capability left.
  const std::vector<std::string> ids(4, std::to_string(nobody));
  CHECK(status_fields(zc.proc.pid, "Uid") == ids);
  CHECK(status_fields(zc.proc.pid, "Gid") == ids);
  CHECK(status_fields(zc.proc.pid, "Groups").empty());
  CHECK(status_fields(zc.proc.pid, "CapEff") == std::vector<std::string>{"0000000000000000"});
  CHECK(round_trip(port));

  // Binding another privileged port now needs what was given up: the reload is refused, and the
  // running config serves on.
  const std::uint16_t other = free_privileged_port(port);
  std::ofstream(zc.config) << "threads: 2\nuser: nobody\nlisteners:\n"
                           << "  - { name: web, bind: \"127.0.0.1:" << port
                           << "\", upstream: app }\n"
                           << "  - { name: more, bind: \"127.0.0.1:" << other
                           << "\", upstream: app }\n"
                           << "upstreams:\n  app: { endpoints: [\"127.0.0.1:" << up.port()
                           << "\"] }\n";
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("reload refused") != std::string::npos; }));
  CHECK_THAT(zc.log(), Catch::Contains("127.0.0.1:" + std::to_string(other)) &&
                           Catch::Contains("Permission denied"));
  CHECK(round_trip(port));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE("security: core dumps are off unless core_dumps: true", "[security][binary]") {
  if (!root()) return;
  upstream_server up(echo);
  SECTION("by default: no core file, and not dumpable (so /proc/PID stays root's)") {
    temp_dir d;
    running_proxy zc(d, up.port(), "user: nobody\n");
    REQUIRE(wait_until([&] { return zc.log().find("running as user") != std::string::npos; }));
    CHECK(core_limits(zc.proc.pid) == "0 0");
    struct stat st {};
    REQUIRE(::stat(("/proc/" + std::to_string(zc.proc.pid) + "/status").c_str(), &st) == 0);
    CHECK(st.st_uid == 0);  // a non-dumpable process's /proc files belong to root
    CHECK(round_trip(zc.port));
  }
  SECTION("core_dumps: true keeps the limit it was started with, and stays dumpable") {
    temp_dir d;
    running_proxy zc(d, up.port(), "user: nobody\ncore_dumps: true\n");
    REQUIRE(wait_until([&] { return zc.log().find("running as user") != std::string::npos; }));
    rlimit mine{};
    REQUIRE(::getrlimit(RLIMIT_CORE, &mine) == 0);
    auto shown = [](rlim_t v) {
      return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
    };
    CHECK(core_limits(zc.proc.pid) == shown(mine.rlim_cur) + " " + shown(mine.rlim_max));
    struct stat st {};
    REQUIRE(::stat(("/proc/" + std::to_string(zc.proc.pid) + "/status").c_str(), &st) == 0);
    CHECK(st.st_uid == nobody);
  }
}

TEST_CASE("security: started without root, what needs root is a clear error and exit code 2",
          "[security][binary]") {
  if (!root()) return;  // root is needed to become nobody for the test
  upstream_server up(echo);
  temp_dir d;
  open_to_all(d);
  std::string err;
  SECTION("user: another user") {
    const auto conf = d.file("zcproxy.yaml", listener_config(0, up.port(), "user: root\n"));
    CHECK(run_as_nobody(d, conf, err) == 2);
    CHECK_THAT(err, Catch::Contains("cannot switch to user root (uid 0, gid 0): zcproxy was not "
                                    "started as root"));
  }
  SECTION("a config file it may not read") {
    const auto conf = d.file("zcproxy.yaml", listener_config(0, up.port(), ""));
    REQUIRE(::chmod(conf.c_str(), 0) == 0);
    CHECK(run_as_nobody(d, conf, err) == 2);
    CHECK(err == "zcproxy: invalid config:\n  " + conf + ": cannot read: Permission denied\n");
  }
}

TEST_CASE("security: started without root, a privileged port is a clear error and exit code 2",
          "[security][binary]") {
  if (!root()) return;  // root is needed to become nobody for the test
  upstream_server up(echo);
  temp_dir d;
  open_to_all(d);
  std::string err;
  const std::uint16_t port = free_privileged_port();
  if (port >= unprivileged_port_start()) {
    WARN("SKIPPED: ip_unprivileged_port_start is " << unprivileged_port_start()
                                                   << ": any user may bind port " << port);
    return;
  }
  const auto conf = d.file("zcproxy.yaml", listener_config(port, up.port(), ""));
  CHECK(run_as_nobody(d, conf, err) == 2);
  CHECK_THAT(err, Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(port)) &&
                      Catch::Contains("Permission denied"));
}
