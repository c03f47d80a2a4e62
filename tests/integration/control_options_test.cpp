// Control options no other test exercises: `group:` (the binary started as root serves with that
// gid), `threads: 0` (one worker per core), `admin.deny` and the warning for an admin listener
// open beyond loopback without `allow`, and reloads: a changed `log.access_file` (new lines go to
// the new file only), kept health and round-robin state, and `threads`/`relay` changes that only
// a restart applies. Last, the access log's queue: with its writer blocked, more than
// access_queue_size lines drop the oldest, relaying never waits, and the count is logged at exit.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/dns_server.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"
#include "zcproxy/log.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// Runs `f` when the scope ends, an early one (a failed REQUIRE) included.
template <typename F>
struct at_exit {
  F f;
  ~at_exit() { f(); }
};
template <typename F>
at_exit(F) -> at_exit<F>;

bool root() {
  if (::geteuid() == 0) return true;
  WARN("SKIPPED: not root: this test needs root to drop privileges from");
  return false;
}

// The threads a process runs now (/proc/PID/task).
std::size_t task_count(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
    ++n;
  return n;
}

// The file's lines, without their newlines.
std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool log_has(const running_proxy& zc, const std::string& text) {
  return zc.log().find(text) != std::string::npos;
}

void echo(fd s) {
  send_all(s.get(), recv_all(s.get()));
}

// One echo round trip on a new connection from the local address `from`.
bool round_trip_from(const char* from, std::uint16_t port) {
  fd c = connect_from(from, port);
  send_all(c.get(), "ping", 4);
  shutdown_write(c.get());
  return recv_all(c.get()) == bytes{'p', 'i', 'n', 'g'};
}

bool round_trip(std::uint16_t port) {
  return round_trip_from("127.0.0.1", port);
}

// GET `path` from 127.0.0.1:port, connecting from `from`: the status code, or 0 when the
// connection ended without a byte of response (refused by allow/deny).
int http_status(const char* from, std::uint16_t port, const std::string& path) {
  fd s = connect_from(from, port);
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  // A refused client may be closed before its request is in: no SIGPIPE, and no throw.
  ::send(s.get(), req.data(), req.size(), MSG_NOSIGNAL);
  const bytes raw = recv_to_end(s.get()).data;
  const std::string text(raw.begin(), raw.end());
  if (text.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(text.substr(9, 3));
}

// The port of the admin listener, from its start-up line ("admin on 127.0.0.1:PORT: ...").
std::uint16_t admin_port_of(const running_proxy& zc, const std::string& bind_ip) {
  const std::regex line("admin on " + bind_ip + R"(:(\d+):)");
  std::smatch m;
  std::string text;
  REQUIRE(wait_until([&] {
    text = zc.log();
    return std::regex_search(text, m, line);
  }));
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

// The worker count the start-up line of listener `web` gives ("... (2 threads, engine ...").
unsigned startup_threads(const running_proxy& zc) {
  const std::regex line(R"(listener web on 127\.0\.0\.1:\d+ -> upstream app \((\d+) threads,)");
  std::smatch m;
  const std::string text = zc.log();
  REQUIRE(std::regex_search(text, m, line));
  return static_cast<unsigned>(std::stoul(m[1]));
}

std::string one_listener(std::uint16_t upstream, const std::string& head,
                         const std::string& upstream_extra = "") {
  return head +
         "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
         "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
         std::to_string(upstream) + "\"]" + upstream_extra + " }\n";
}

// A backend for the health and round-robin tests: a health probe ("PING") gets `probe_reply`
// (only "+PONG" passes the check) and is closed; a client (anything else first) gets `name`, and
// is counted.
struct named_backend {
  named_backend(std::string name, std::string probe_reply)
      : name(std::move(name)),
        probe_reply(std::move(probe_reply)),
        server([this](fd s) { handle(std::move(s)); }) {}

  void handle(fd s) {
    char first[16];
    const ssize_t n = ::recv(s.get(), first, sizeof first, 0);
    if (n <= 0) return;
    if (first[0] == 'P') {
      send_all(s.get(), probe_reply.data(), probe_reply.size());
      return;
    }
    ++clients;
    send_all(s.get(), name.data(), name.size());
    recv_all(s.get());  // until the client closes
  }
  std::uint16_t port() const { return server.port(); }

  const std::string name, probe_reply;
  std::atomic<int> clients{0};
  upstream_server server;  // last: its handler threads use the fields above
};

// Which backend a new connection through the proxy lands on (its one-letter name).
std::string landed_on(std::uint16_t port) {
  fd c = connect_to(port);
  send_all(c.get(), "x", 1);
  const bytes got = recv_exact(c.get(), 1);
  return std::string(got.begin(), got.end());
}

// A backend that greets each connection with "ok" and closes it at once, on one thread: the
// access-log flood makes thousands of connections, and upstream_server would keep a thread for
// each until the end.
struct greet_and_close {
  greet_and_close() : listener(listen_loopback(port, 4096)) {
    thread = std::thread([this] {
      while (!stop) {
        pollfd p{listener.get(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;  // wakes regularly to see stop
        fd s(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!s) continue;
        ::send(s.get(), "ok", 2, MSG_NOSIGNAL);
      }
    });
  }
  ~greet_and_close() {
    stop = true;
    thread.join();
  }
  std::uint16_t port = 0;
  fd listener;
  std::atomic<bool> stop{false};
  std::thread thread;
};

// The client address of flood connection i: each its own, so its access line can be found.
std::string flood_client(int i) {
  return "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
}

}  // namespace

TEST_CASE(
    "options: group: started as root, the binary serves with that gid, not the user's primary "
    "group",
    "[options][integration][binary][security]") {
  if (!root()) return;
  upstream_server up(echo);
  temp_dir d;
  REQUIRE(::chmod(d.path.c_str(), 0755) == 0);  // the process reads its config again on reload

  SECTION("user: daemon (primary group daemon, gid 1) with group: nogroup (gid 65534)") {
    running_proxy zc(d, up.port(), "threads: 2\nuser: daemon\ngroup: nogroup\n");
    REQUIRE(
        wait_until([&] { return log_has(zc, "running as user daemon (uid 1), group nogroup"); }));
    // Real, effective, saved and filesystem gids: nogroup's, not daemon's primary group (1); the
    // uid is daemon's; no supplementary group.
    CHECK(status_fields(zc.proc.pid, "Gid") == std::vector<std::string>(4, "65534"));
    CHECK(status_fields(zc.proc.pid, "Uid") == std::vector<std::string>(4, "1"));
    CHECK(status_fields(zc.proc.pid, "Groups").empty());
    CHECK(round_trip(zc.port));
    REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
    CHECK(zc.proc.wait() == 0);
  }

  SECTION("group: without user: is a config error, not a gid switch") {
    // check_run_as refuses it: there is no "group only" mode (README documents group: only
    // beside user:).
    const std::string conf = d.file("zcproxy.yaml", one_listener(up.port(), "group: nogroup\n"));
    process p({"-c", conf}, d.file("out"), d.file("err"));
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d.file("err")),
               Catch::Contains("group: expected user: as well (group alone is not switched to)"));
  }
}

TEST_CASE("options: threads: 0 runs one worker thread per core, and serves",
          "[options][integration][binary]") {
  upstream_server up(echo);
  temp_dir d;
  running_proxy zc(d, up.port(), "threads: 0\nlog: { level: info, access_log: false }\n");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  CHECK(startup_threads(zc) == cores);
  // The threads it runs: main (the control loop) and one per worker (no access log: no writer).
  // The start-up line comes before the workers start: wait for them, then check none is left
  // over.
  CHECK(wait_until([&] { return task_count(zc.proc.pid) >= cores + 1; }));
  CHECK(task_count(zc.proc.pid) == cores + 1);
  for (int i = 0; i < 4; ++i) CHECK(round_trip(zc.port));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE("options: admin.deny refuses a client in it while others are served, and says so",
          "[options][integration][binary][admin]") {
  upstream_server up(echo);
  temp_dir d;
  running_proxy zc(d, up.port(),
                   "threads: 1\nlog: { level: info, access_log: false }\n"
                   "admin: { bind: \"127.0.0.1:0\", deny: [\"127.0.0.2\"] }\n");
  const std::uint16_t admin = admin_port_of(zc, R"(127\.0\.0\.1)");
  CHECK(http_status("127.0.0.2", admin, "/healthz") == 0);
  CHECK(wait_until([&] { return log_has(zc, "admin: client 127.0.0.2 refused by allow/deny"); }));
  // Only the address in deny: its neighbours and 127.0.0.1 are served.
  CHECK(http_status("127.0.0.1", admin, "/healthz") == 200);
  CHECK(http_status("127.0.0.3", admin, "/metrics") == 200);
  CHECK(http_status("127.0.0.2", admin, "/metrics") == 0);
  CHECK(count_of(zc.log(), "refused by allow/deny") == 2);
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE("options: an admin bind beyond loopback without allow logs a warning at start-up",
          "[options][integration][binary][admin]") {
  upstream_server up(echo);
  temp_dir d;
  const std::string head = "threads: 1\nlog: { level: info, access_log: false }\n";
  const std::string warning = "which is not a loopback address, with no allow list";

  SECTION("0.0.0.0:0: warned, and it serves (on loopback too)") {
    running_proxy zc(d, up.port(), head + "admin: { bind: \"0.0.0.0:0\" }\n");
    const std::uint16_t admin = admin_port_of(zc, R"(0\.0\.0\.0)");
    CHECK_THAT(zc.log(), Catch::Contains("admin: listening on 0.0.0.0:" + std::to_string(admin) +
                                         ", " + warning));
    CHECK(http_status("127.0.0.1", admin, "/healthz") == 200);
  }
  SECTION("[::]:0 with reload: true: warned, naming reload too") {
    running_proxy zc(d, up.port(), head + "admin: { bind: \"[::]:0\", reload: true }\n");
    const std::uint16_t admin = admin_port_of(zc, R"(\[::\])");
    CHECK_THAT(zc.log(), Catch::Contains("admin: listening on [::]:" + std::to_string(admin) +
                                         ", " + warning) &&
                             Catch::Contains("sees the proxy's stats and can make it reload"));
  }
  SECTION("no warning for 0.0.0.0:0 with allow, nor for loopback without it") {
    running_proxy zc(d, up.port(),
                     head + "admin: { bind: \"0.0.0.0:0\", allow: [\"127.0.0.1\"] }\n");
    admin_port_of(zc, R"(0\.0\.0\.0)");
    CHECK_THAT(zc.log(), !Catch::Contains(warning));
    temp_dir d2;
    running_proxy local(d2, up.port(), head + "admin: { bind: \"127.0.0.1:0\" }\n");
    admin_port_of(local, R"(127\.0\.0\.1)");
    CHECK_THAT(local.log(), !Catch::Contains(warning));
  }
}

TEST_CASE(
    "options: a reload that changes log.access_file sends new connections' lines to the new file "
    "only",
    "[options][integration][binary][reload]") {
  upstream_server up(echo);
  temp_dir d;
  const std::string old_file = d.file("old.log"), new_file = d.file("new.log");
  auto config = [&](const std::string& file) {
    return one_listener(up.port(),
                        "threads: 2\nlog: { level: info, access_log: true, "
                        "access_file: \"" +
                            file + "\" }\n");
  };
  running_proxy zc(d, config(old_file), "web");
  // Before the reload: clients from 127.0.0.2; after: from 127.0.0.3.
  for (int i = 0; i < 3; ++i) CHECK(round_trip_from("127.0.0.2", zc.port));
  REQUIRE(wait_until([&] { return lines_of(old_file).size() == 3; }));

  d.file("zcproxy.yaml", config(new_file));
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] { return log_has(zc, "reload: done"); }));
  for (int i = 0; i < 3; ++i) CHECK(round_trip_from("127.0.0.3", zc.port));
  REQUIRE(wait_until([&] { return lines_of(new_file).size() == 3; }));

  // After exit every queued line is written: nothing late went to the old file.
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  REQUIRE(zc.proc.wait() == 0);
  const std::string old_text = slurp(old_file), new_text = slurp(new_file);
  INFO("old file:\n" << old_text << "new file:\n" << new_text);
  CHECK(lines_of(old_file).size() == 3);
  CHECK(count_of(old_text, "client=127.0.0.2:") == 3);
  CHECK(count_of(old_text, "client=127.0.0.3:") == 0);
  CHECK(lines_of(new_file).size() == 3);
  CHECK(count_of(new_text, "client=127.0.0.3:") == 3);
  CHECK(count_of(new_text, "client=127.0.0.2:") == 0);
  CHECK(count_of(new_text, " close=eof") == 3);
  CHECK_THAT(zc.log(), !Catch::Contains("the access log stays as it was"));
}

TEST_CASE(
    "options: a reload that changes an upstream keeps its down endpoint down, with no flap to "
    "healthy",
    "[options][integration][reload]") {
  named_backend a("A", "+PONG"), b("B", "-FAIL");
  auto config = [&](const std::string& check, const std::string& extra) {
    return zcproxy::load_config_string(
        "threads: 2\nlog: { level: warn, access_log: false }\n"
        "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
        "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
            std::to_string(a.port()) + "\", \"127.0.0.1:" + std::to_string(b.port()) +
            "\"], health_check: { " + check + ", send: \"PING\", expect: \"+PONG\" }" + extra +
            " }\n",
        "control.yaml");
  };
  auto healthy = [](test::proxy& p, std::uint16_t port) {
    for (const auto& e : p.srv->snapshot().endpoints)
      if (e.at.port == port) return e.healthy;
    FAIL("no endpoint on port " << port);
    return false;
  };
  // Quick checks take B out within a second (and bring A back at once should a slow probe on a
  // loaded machine ever take it out).
  test::proxy p(config("interval: 300ms, timeout: 300ms, rise: 1, fall: 2", ""));
  REQUIRE(wait_until([&] { return !healthy(p, b.port()) && healthy(p, a.port()); }, 20s));

  // A changed upstream (slower checks, another connect_timeout): a new upstream object with new
  // checkers. Were B's state not carried over it would start up and stay up for its first 3
  // failed checks, 10 s; carried over, it is down from the first connection on.
  REQUIRE(
      p.srv->reload(config("interval: 5s, timeout: 1s, rise: 1, fall: 3", ", connect_timeout: 2s"))
          .error == "");
  CHECK_FALSE(healthy(p, b.port()));
  CHECK(healthy(p, a.port()));
  for (int i = 0; i < 6; ++i) CHECK(landed_on(p.port()) == "A");
  CHECK(b.clients == 0);
  CHECK(a.clients == 6);
  CHECK_FALSE(healthy(p, b.port()));
}

TEST_CASE("options: a reload that leaves an upstream unchanged keeps its round-robin position",
          "[options][integration][reload]") {
  named_backend a("A", "+PONG"), b("B", "+PONG");
  auto config = [&](const std::string& idle) {
    return zcproxy::load_config_string(
        "threads: 2\nlog: { level: warn, access_log: false }\n"
        "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app, idle_timeout: " +
            idle + " }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:" + std::to_string(a.port()) +
            "\", \"127.0.0.1:" + std::to_string(b.port()) + "\"] }\n",
        "control.yaml");
  };
  // Smooth round-robin over two equal endpoints: A, B, A, B, ... A restarted sequence would
  // give A after every reload.
  test::proxy p(config("1m"));
  std::string sequence;
  for (int r = 0; r < 6; ++r) {
    sequence += landed_on(p.port());
    // Only the listener changes: the upstream (and its position) is carried over.
    REQUIRE(p.srv->reload(config(r % 2 == 0 ? "2m" : "1m")).error == "");
  }
  sequence += landed_on(p.port());
  CHECK(sequence == "ABABABA");
}

TEST_CASE(
    "options: a reload that changes threads and relay keeps them, says so, and applies the rest",
    "[options][integration][binary][reload]") {
  named_backend a("A", "+PONG"), b("B", "+PONG");
  temp_dir d;
  auto config = [&](const std::string& head, std::uint16_t to) {
    return one_listener(to, head + "log: { level: info, access_log: true }\n");
  };
  // splice: on loopback the default (adaptive) and copy would both say copy.
  running_proxy zc(d, config("threads: 2\nrelay: { engine: splice }\n", a.port()), "web");
  CHECK(startup_threads(zc) == 2);
  // Two workers, and the main (control loop) and access-log threads (the start-up line comes
  // before the workers start: wait for them).
  CHECK(wait_until([&] { return task_count(zc.proc.pid) >= 2 + 2; }));
  const std::size_t tasks = task_count(zc.proc.pid);
  CHECK(tasks == 2 + 2);
  CHECK(landed_on(zc.port) == "A");

  d.file("zcproxy.yaml",
         config("threads: 3\nrelay: { engine: copy, pipe_size: 64KiB, buffer_size: 64KiB }\n",
                b.port()));
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] { return log_has(zc, "reload: done"); }));
  CHECK(log_has(zc,
                "reload: threads and relay settings change only with a restart; kept as they "
                "are"));
  // The rest applies: new connections go to B.
  CHECK(landed_on(zc.port) == "B");
  CHECK(landed_on(zc.port) == "B");
  // Still two workers, still splice: both new connections' access lines say so.
  CHECK(task_count(zc.proc.pid) == tasks);
  const std::string b_endpoint = "endpoint=127.0.0.1:" + std::to_string(b.port()) + " ";
  REQUIRE(wait_until([&] { return count_of(slurp(d.file("out")), b_endpoint) == 2; }));
  for (const auto& line : lines_of(d.file("out")))
    if (line.find(b_endpoint) != std::string::npos)
      CHECK_THAT(line, Catch::Contains("engine_up=splice engine_down=splice"));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE(
    "options: with the access log's writer blocked, a full queue drops the oldest lines, relaying "
    "never waits, and the count is logged at exit",
    "[options][integration][binary][access_log]") {
  constexpr int warmup = 60;    // enough lines (about 200 bytes each) to fill a 4 KiB pipe
  constexpr int flood = 10000;  // beyond the queue's 8192: about 1,800 must be dropped
  constexpr int newest = 8000;  // the flood's last lines, which must all be kept
  static_assert(flood > static_cast<int>(zcproxy::access_queue_size) + 1000);
  static_assert(newest < static_cast<int>(zcproxy::access_queue_size));

  greet_and_close up;
  temp_dir d;
  // The access file is a FIFO whose reader (this test) reads nothing until the end: the access
  // thread blocks in write(2) once its pipe is full.
  const std::string fifo = d.file("access.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  REQUIRE(reader);
  const int capacity = ::fcntl(reader.get(), F_SETPIPE_SZ, 4096);
  REQUIRE(capacity > 0);

  running_proxy zc(d,
                   one_listener(up.port,
                                "threads: 2\nlog: { level: info, access_log: true, "
                                "access_file: \"" +
                                    fifo + "\" }\n"),
                   "web");
  auto connection = [&](const std::string& from) {
    fd c = connect_from(from.c_str(), zc.port);
    return recv_to_end(c.get()).data == bytes{'o', 'k'};
  };
  int served = 0;
  for (int i = 0; i < warmup; ++i) served += connection("127.2.0." + std::to_string(i + 1));
  // The pipe holds as many lines as fit: the next one blocks the writer.
  REQUIRE(wait_until([&] {
    int queued = 0;
    return ::ioctl(reader.get(), FIONREAD, &queued) == 0 && queued > capacity - 300;
  }));

  // Many more connections than the queue holds: each completes, none waits for the log.
  const auto t0 = clock_type::now();
  for (int i = 0; i < flood; ++i) served += connection(flood_client(i));
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  CHECK(served == warmup + flood);
  CHECK(seconds < 120);

  // Now read: at exit the queued lines are written, then the count of dropped ones logged.
  std::string text;
  thread_group drain;
  drain.spawn([&] {
    const auto deadline = clock_type::now() + 60s;
    char buf[1 << 16];
    while (clock_type::now() < deadline) {
      pollfd p{reader.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(reader.get(), buf, sizeof buf);
      if (n == 0) return;  // the writer has closed: zcproxy exited
      if (n > 0) text.append(buf, static_cast<std::size_t>(n));
    }
    throw std::runtime_error("the access FIFO never reached its end");
  });
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait(60s) == 0);
  CHECK(drain.errors().empty());

  std::smatch m;
  const std::string log = zc.log();
  const std::regex dropped_line(
      R"(access log: (\d+) lines dropped because the queue \((\d+) lines\) was full)");
  REQUIRE(std::regex_search(log, m, dropped_line));
  const std::size_t dropped = std::stoul(m[1]);
  CHECK(std::stoul(m[2]) == zcproxy::access_queue_size);

  std::set<std::string> clients;  // "127.1.a.b" of every line written
  std::size_t written = 0;
  {
    std::istringstream in(text);
    const std::regex client(R"( client=([0-9.]+):\d+ )");
    for (std::string line; std::getline(in, line); ++written) {
      std::smatch c;
      if (std::regex_search(line, c, client)) clients.insert(c[1]);
    }
  }
  std::printf(
      "options: %d connections in %.2f s with the access log blocked; %zu lines written, "
      "%zu dropped\n",
      flood, seconds, written, dropped);
  std::fflush(stdout);
  // Every line is either written or counted as dropped; the queue was full, so whole.
  CHECK(written + dropped == static_cast<std::size_t>(warmup + flood));
  CHECK(written >= zcproxy::access_queue_size);
  CHECK(dropped >= static_cast<std::size_t>(flood + warmup) - zcproxy::access_queue_size -
                       static_cast<std::size_t>(warmup) - 2);
  // The oldest were dropped: the newest lines are all there, and every missing one is older
  // (the warm-up lines still queued when the flood came are among them).
  int newest_missing = 0, older_missing = 0;
  for (int i = 0; i < flood; ++i) {
    if (clients.count(flood_client(i))) continue;
    (i >= flood - newest ? newest_missing : older_missing) += 1;
  }
  for (int i = 0; i < warmup; ++i)
    older_missing += !clients.count("127.2.0." + std::to_string(i + 1));
  CHECK(newest_missing == 0);
  CHECK(static_cast<std::size_t>(older_missing) == dropped);
  // The first lines, in the pipe before the writer blocked, were never dropped.
  CHECK(clients.count("127.2.0.1") == 1);
}

TEST_CASE(
    "options: admin, health checks, DNS names, the take-over socket and signals share one control "
    "thread",
    "[options][integration][binary]") {
  named_backend a("A", "+PONG"), b("B", "-NO");
  temp_dir d;
  dns_server dns(d, "127.0.0.1 app.test\n");
  const std::string yaml =
      "threads: 2\nlog: { level: info, access_log: true }\nupgrade_socket: " + d.path +
      "/upgrade.sock\nadmin: { bind: \"127.0.0.1:0\" }\nresolve: { resolvers: [\"" + dns.address() +
      "\"] }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
      "upstreams:\n  app: { endpoints: [\"app.test:" +
      std::to_string(a.port()) +
      "\"] }\n  checked: { endpoints: [\"127.0.0.1:" + std::to_string(b.port()) +
      "\"], health_check: { interval: 50ms, timeout: 50ms, rise: 1, fall: 1, send: \"PING\", "
      "expect: \"+PONG\" } }\n";
  running_proxy zc(d, yaml, "web");
  // Every part at work: the name has resolved (a client lands on its address), a check has
  // failed, the admin answers, the take-over socket is up.
  REQUIRE(wait_until(
      [&] { return zc.log().find("dns: app.test resolves to 127.0.0.1") != std::string::npos; }));
  CHECK(landed_on(zc.port) == "A");
  CHECK(wait_until([&] { return zc.log().find("is down (1 checks failed") != std::string::npos; }));
  CHECK_FALSE(scrape_metrics(zc.port_of("admin")).empty());
  CHECK(zc.log().find("upgrade socket on") != std::string::npos);
  // Two workers, the access log's writer and main, which runs the control loop: nothing else.
  CHECK(wait_until([&] { return task_count(zc.proc.pid) >= 2 + 2; }));
  CHECK(task_count(zc.proc.pid) == 2 + 2);
  // A reload (a signal, on the same loop) keeps it so.
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("reload: done") != std::string::npos; }));
  CHECK(landed_on(zc.port) == "A");
  CHECK(task_count(zc.proc.pid) == 2 + 2);
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}
