// Binary upgrades that refuse no connection: `zcproxy --takeover` takes the listening sockets of
// the running process over its upgrade_socket; and systemd's socket activation (LISTEN_FDS).
// Everything through the binary, on real loopback sockets.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;

namespace {

// Echoes as it reads (not all at the end), so a long transfer streams both ways.
void stream_echo(fd s) {
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    send_all(s.get(), buf, static_cast<std::size_t>(n));
  }
  ::shutdown(s.get(), SHUT_WR);
}

// One listener "web" on 127.0.0.1:0 (or `bind`) in front of the echo server.
std::string config_for(std::uint16_t upstream, unsigned threads, const std::string& upgrade_socket,
                       const std::string& bind = "127.0.0.1:0", const std::string& more = "",
                       const std::string& drain_timeout = "20s") {
  return "threads: " + std::to_string(threads) + "\ndrain_timeout: " + drain_timeout +
         "\nlog: { level: info, access_log: false }\n" +
         (upgrade_socket.empty() ? "" : "upgrade_socket: " + upgrade_socket + "\n") +
         "listeners:\n  - { name: web, bind: \"" + bind + "\", upstream: app }\n" + more +
         "upstreams:\n  app: { endpoints: [\"127.0.0.1:" + std::to_string(upstream) + "\"] }\n";
}

// One short connection: a message there and back. Empty when it went well, else what went wrong
// (a refused connect, a reset, a wrong or missing echo; nothing waits longer than 5 s).
std::string round_trip(std::uint16_t port, int i) {
  try {
    fd c = connect_to(port);
    timeval tv{5, 0};
    ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string msg = "hello " + std::to_string(i);
    send_all(c.get(), msg.data(), msg.size());
    shutdown_write(c.get());
    stream_end got = recv_to_end(c.get());
    if (got.reset) return "connection " + std::to_string(i) + " reset";
    if (std::string(got.data.begin(), got.data.end()) != msg)
      return "connection " + std::to_string(i) + ": wrong echo";
    return {};
  } catch (const std::exception& e) {
    return "connection " + std::to_string(i) + ": " + e.what();
  }
}

// The listening TCP sockets on `port` that process `pid` holds, by inode (/proc/net/tcp and
// /proc/PID/fd): each has an accept queue of its own.
std::set<std::string> listening_sockets(pid_t pid, std::uint16_t port) {
  std::set<std::string> listening;
  std::istringstream table(slurp("/proc/net/tcp"));
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    f >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    if (state == "0A" && std::stoul(local.substr(local.find(':') + 1), nullptr, 16) == port)
      listening.insert("socket:[" + inode + "]");
  }
  std::set<std::string> held;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && listening.count(target)) held.insert(target);
  }
  return held;
}

bool log_says(const std::string& path, const std::string& what) {
  return slurp(path).find(what) != std::string::npos;
}

// Clients (`threads` of them) opening new connections at `per_second` in all (as the test
// does: 200 a second; the echo server spends a thread on each) until stopped, at most `limit`;
// the longest round trip is the longest a client waited to be served.
struct client_loop {
  client_loop(std::uint16_t port, int limit, int per_second = 200, int threads = 2) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto every = std::chrono::microseconds(1'000'000 / per_second);
    for (int k = 0; k < threads; ++k)
      t.spawn([this, port, limit, t0, every] {
        for (int i = done++; i < limit && !stop; i = done++) {
          std::this_thread::sleep_until(t0 + i * every);
          const auto start = std::chrono::steady_clock::now();
          std::string why = round_trip(port, i);
          const auto took = std::chrono::steady_clock::now() - start;
          std::lock_guard lock(mutex);
          if (!why.empty()) failures.push_back(why);
          longest = std::max(longest, took);
        }
      });
  }
  ~client_loop() { finish(); }  // a failed REQUIRE stops the clients too
  std::vector<std::string> finish() {
    stop = true;
    t.join();
    std::lock_guard lock(mutex);
    return failures;
  }
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::mutex mutex;
  std::vector<std::string> failures;
  std::chrono::steady_clock::duration longest{};
  thread_group t;
};

}  // namespace

// A connection through the proxy that carries `data` there and back in two halves, so it can
// stay open across take-overs between them.
struct long_transfer {
  long_transfer(std::uint16_t port, std::uint32_t seed)
      : data(random_bytes(64 << 20, seed)), c(connect_to(port)) {}
  void first_half() {
    thread_group w;
    w.spawn([&] { send_all(c.get(), data.data(), half); });
    echoed = recv_exact(c.get(), half);
    REQUIRE(w.errors().empty());
  }
  // Whether all of it came back intact, as a clean end.
  bool rest() {
    thread_group w;
    w.spawn([&] {
      send_all(c.get(), data.data() + half, data.size() - half);
      shutdown_write(c.get());
    });
    stream_end got = recv_to_end(c.get());
    echoed.insert(echoed.end(), got.data.begin(), got.data.end());
    c.close();
    return w.errors().empty() && !got.reset && echoed.size() == data.size() &&
           checksum(echoed) == checksum(data);
  }
  const bytes data;
  const std::size_t half = data.size() / 2;
  fd c;
  bytes echoed;
};

TEST_CASE("upgrade: take-overs refuse no connection, and each old process drains and exits 0",
          "[upgrade][binary][integration]") {
  upstream_server up(stream_echo);
  std::vector<std::unique_ptr<temp_dir>> dirs;
  std::vector<std::unique_ptr<running_proxy>> procs;
  dirs.push_back(std::make_unique<temp_dir>());
  const std::string sock = dirs[0]->path + "/upgrade.sock";
  // Every process has the admin listener on the same port: each new one binds it once the old
  // one has let it go.
  std::uint16_t admin_port = 0;
  listen_loopback(admin_port);  // a free port, closed again at once
  const std::string admin = "admin: { bind: \"127.0.0.1:" + std::to_string(admin_port) + "\" }\n";
  // The first process runs 2 threads: 2 sockets in the SO_REUSEPORT group, each with its own
  // queue. The others run 1, 3, 2, 1 and 2: fewer threads must accept from every queue, more
  // share them.
  const unsigned threads[] = {2, 1, 3, 2, 1, 2};
  // The first process drains the long transfers across all five take-overs, which take some 10 s
  // and, on a loaded 2-core machine, more than 20: its drain_timeout leaves room for that, and
  // its exit is timed from its last connection's end, not from the first take-over.
  const auto config = [&](unsigned n) {
    return admin + config_for(up.port(), n, sock, "127.0.0.1:0", "", "90s");
  };
  procs.push_back(std::make_unique<running_proxy>(*dirs[0], config(2), "web"));
  const std::uint16_t port = procs[0]->port;
  const std::set<std::string> sockets = listening_sockets(procs[0]->proc.pid, port);
  CHECK(sockets.size() == 2);

  // 4 long transfers through the first process, each half done before the take-overs.
  std::vector<std::unique_ptr<long_transfer>> transfers;
  for (std::uint32_t i = 0; i < 4; ++i) {
    transfers.push_back(std::make_unique<long_transfer>(port, 16 + i));
    transfers.back()->first_half();
  }

  client_loop clients(port, 20000);
  REQUIRE(wait_until([&] { return clients.done >= 100; }));
  const auto first_take_over = std::chrono::steady_clock::now();
  for (std::size_t k = 1; k < std::size(threads); ++k) {
    INFO("take-over " << k << " (" << threads[k - 1] << " threads to " << threads[k] << ")");
    dirs.push_back(std::make_unique<temp_dir>());
    procs.push_back(std::make_unique<running_proxy>(*dirs[k], config(threads[k]), "web", 0,
                                                    std::vector<std::string>{"--takeover"}));
    running_proxy& now = *procs[k];
    CHECK(now.port == port);
    REQUIRE(wait_until([&] { return log_says(now.err, "this process serves alone"); }));
    CHECK(log_says(procs[k - 1]->err, "this process stops accepting and drains"));
    // Every socket is the new process's now (one it closed would reset what its queue held).
    CHECK(listening_sockets(now.proc.pid, port) == sockets);
    CHECK(now.port_of("admin") == admin_port);
    // Connections go on, now only to the new process.
    const int at_take_over = clients.done;
    REQUIRE(wait_until([&] { return clients.done >= at_take_over + 200; }, 60s));
    // A process between the first and the last has nothing open: it exits 0 at once.
    if (k >= 2) CHECK(procs[k - 1]->proc.wait(25s) == 0);
  }

  // The first process still drains the long transfers: the rest of each goes through, intact.
  CHECK(::kill(procs[0]->proc.pid, 0) == 0);
  for (auto& t : transfers) CHECK(t->rest());
  // Its last connection gone, it exits 0 at once, not at drain_timeout (90 s).
  const auto last_closed = std::chrono::steady_clock::now();
  CHECK(procs[0]->proc.wait(25s) == 0);
  CHECK(std::chrono::steady_clock::now() - last_closed < 5s);
  CHECK(std::chrono::steady_clock::now() - first_take_over < 90s);

  const std::vector<std::string> failures = clients.finish();
  INFO("connections: " << clients.done);
  CHECK(failures.size() == 0);
  for (std::size_t i = 0; i < failures.size() && i < 5; ++i) UNSCOPED_INFO(failures[i]);
  const auto longest_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clients.longest).count();
  CHECK(longest_ms < 2000);  // the longest a client waited, across the take-overs

  // The last process serves alone, admin included, and stops as usual.
  running_proxy& last = *procs.back();
  CHECK(round_trip(port, -1).empty());
  CHECK(::access(sock.c_str(), F_OK) == 0);
  REQUIRE(::kill(last.proc.pid, SIGTERM) == 0);
  CHECK(last.proc.wait() == 0);
  CHECK(::access(sock.c_str(), F_OK) != 0);  // its upgrade socket is removed as it stops
  CHECK(up.stop_and_collect_errors().empty());
}

TEST_CASE("upgrade: a take-over moves TCP and Unix listeners to a process with more threads",
          "[upgrade][binary][integration][unix]") {
  upstream_server up(stream_echo);
  temp_dir d1, d2;
  const std::string sock = d1.path + "/upgrade.sock", path = d1.path + "/web.sock";
  const std::string more = "  - { name: local, bind: \"unix:" + path + "\", upstream: app }\n";
  // 1 thread to 3: the new workers share the one TCP socket (dups), and the Unix socket.
  running_proxy old_proc(d1, config_for(up.port(), 1, sock, "127.0.0.1:0", more), "web");
  running_proxy new_proc(d2, config_for(up.port(), 3, sock, "127.0.0.1:0", more), "web", 0,
                         {"--takeover"});
  CHECK(new_proc.port == old_proc.port);
  REQUIRE(wait_until([&] { return log_says(new_proc.err, "this process serves alone"); }));
  CHECK(old_proc.proc.wait() == 0);
  // The old process left the Unix listener's socket file in place: it is the new one's now.
  CHECK(log_says(new_proc.err, "listener local on unix:" + path));
  for (int i = 0; i < 100; ++i) {
    CHECK(round_trip(new_proc.port, i).empty());
    fd c = connect_unix(path);
    send_all(c.get(), "unix", 4);
    shutdown_write(c.get());
    CHECK(recv_all(c.get()) == bytes{'u', 'n', 'i', 'x'});
  }
  REQUIRE(::kill(new_proc.proc.pid, SIGTERM) == 0);
  CHECK(new_proc.proc.wait() == 0);
}

TEST_CASE("upgrade: a plain second start on the same port is still refused",
          "[upgrade][binary][integration]") {
  upstream_server up(stream_echo);
  temp_dir d1, d2, d3;
  const std::string sock = d1.path + "/upgrade.sock";
  running_proxy old_proc(d1, config_for(up.port(), 2, sock), "web");
  const std::string bind = "127.0.0.1:" + std::to_string(old_proc.port);

  // The same config on the same port, without --takeover: refused as before any take-over.
  process twin({"-c", d2.file("zcproxy.yaml", config_for(up.port(), 2, sock, bind))},
               d2.file("out"), d2.file("err"));
  CHECK(twin.wait() == 2);
  CHECK_THAT(slurp(d2.file("err")), Catch::Contains("listener web: cannot listen on " + bind) &&
                                        Catch::Contains("in use"));
  // Another port but the same upgrade socket: that socket is the first one's, not to be stolen.
  process other({"-c", d3.file("zcproxy.yaml", config_for(up.port(), 1, sock))}, d3.file("out"),
                d3.file("err"));
  CHECK(other.wait() == 2);
  CHECK_THAT(slurp(d3.file("err")),
             Catch::Contains("upgrade_socket " + sock + ": in use by another process"));

  CHECK(round_trip(old_proc.port, 0).empty());
  CHECK_FALSE(log_says(old_proc.err, "take-over"));
  REQUIRE(::kill(old_proc.proc.pid, SIGTERM) == 0);
  CHECK(old_proc.proc.wait() == 0);
}

TEST_CASE("upgrade: a take-over that cannot happen fails cleanly, and the old process serves on",
          "[upgrade][binary][integration]") {
  upstream_server up(stream_echo);
  temp_dir d1, d2;
  const std::string sock = d1.path + "/upgrade.sock";

  SECTION("the running process has no upgrade_socket") {
    running_proxy old_proc(d1, config_for(up.port(), 2, ""), "web");
    process p({"-c", d2.file("zcproxy.yaml", config_for(up.port(), 1, sock)), "--takeover"},
              d2.file("out"), d2.file("err"));
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d2.file("err")),
               Catch::Contains("take-over via " + sock + ": cannot connect: No such file") &&
                   Catch::Contains("nothing was taken over"));
    CHECK(round_trip(old_proc.port, 0).empty());
    REQUIRE(::kill(old_proc.proc.pid, SIGTERM) == 0);
    CHECK(old_proc.proc.wait() == 0);
  }

  SECTION("the new config names no upgrade_socket") {
    running_proxy old_proc(d1, config_for(up.port(), 2, sock), "web");
    process p({"-c", d2.file("zcproxy.yaml", config_for(up.port(), 1, "")), "--takeover"},
              d2.file("out"), d2.file("err"));
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d2.file("err")), Catch::Contains("the config names no upgrade_socket"));
    CHECK(round_trip(old_proc.port, 0).empty());
    REQUIRE(::kill(old_proc.proc.pid, SIGTERM) == 0);
    CHECK(old_proc.proc.wait() == 0);
  }

  SECTION("the new process fails after it got the sockets") {
    running_proxy old_proc(d1, config_for(up.port(), 2, sock), "web");
    // A second listener on a port that is taken: the new process cannot start.
    const std::string taken = "127.0.0.1:" + std::to_string(up.port());
    const std::string yaml =
        config_for(up.port(), 1, sock, "127.0.0.1:0",
                   "  - { name: other, bind: \"" + taken + "\", upstream: app }\n");
    process p({"-c", d2.file("zcproxy.yaml", yaml), "--takeover"}, d2.file("out"), d2.file("err"));
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d2.file("err")), Catch::Contains("listener other: cannot listen on"));
    CHECK(wait_until([&] { return log_says(old_proc.err, "serving on as before"); }, 10s));
    // The old process serves on, with its sockets and its upgrade socket.
    for (int i = 0; i < 50; ++i) CHECK(round_trip(old_proc.port, i).empty());
    CHECK_FALSE(log_says(old_proc.err, "stops accepting"));
    CHECK(::access(sock.c_str(), F_OK) == 0);
    // ... and a later take-over that can happen does.
    temp_dir d3;
    running_proxy next(d3, config_for(up.port(), 2, sock), "web", 0, {"--takeover"});
    CHECK(next.port == old_proc.port);
    CHECK(old_proc.proc.wait() == 0);
    CHECK(round_trip(next.port, 0).empty());
    REQUIRE(::kill(next.proc.pid, SIGTERM) == 0);
    CHECK(next.proc.wait() == 0);
  }
}

namespace {

// The binary started as systemd starts a socket-activated service: `passed` as fd 3, with
// LISTEN_FDS=1, LISTEN_FDNAMES=`name` and LISTEN_PID its own pid.
process activated(const temp_dir& d, const std::string& yaml, int passed, const std::string& name) {
  return process({"-c", d.file("zcproxy.yaml", yaml)}, d.file("out"), d.file("err"),
                 child_setup{{"LISTEN_FDS=1", "LISTEN_FDNAMES=" + name}, passed});
}

}  // namespace

TEST_CASE("upgrade: systemd socket activation: the proxy serves on the socket it is passed",
          "[upgrade][binary][integration][systemd]") {
  upstream_server up(stream_echo);
  temp_dir d;
  std::uint16_t port = 0;
  // The config's own address is not bound: the socket systemd passes is used instead.
  const std::string yaml = config_for(up.port(), 2, "", "127.0.0.1:1");

  SECTION("a listening socket named for the listener") {
    fd passed = listen_loopback(port);
    process p = activated(d, yaml, passed.get(), "web");
    passed.close();  // the proxy's copy is the only one left
    REQUIRE(wait_until([&] {
      return log_says(d.file("err"), "listener web on 127.0.0.1:" + std::to_string(port));
    }));
    // Both threads accept on it (one on a dup): every connection is served.
    for (int i = 0; i < 200; ++i) REQUIRE(round_trip(port, i).empty());
    REQUIRE(::kill(p.pid, SIGTERM) == 0);
    CHECK(p.wait() == 0);
  }

  SECTION("a socket named for no listener") {
    fd passed = listen_loopback(port);
    process p = activated(d, yaml, passed.get(), "nope");
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d.file("err")), Catch::Contains("systemd passed a socket named 'nope'") &&
                                         Catch::Contains("no listener has that name"));
  }

  SECTION("a socket that is not listening") {
    fd passed(::socket(AF_INET, SOCK_STREAM, 0));
    process p = activated(d, yaml, passed.get(), "web");
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d.file("err")), Catch::Contains("listener web: the socket passed for it") &&
                                         Catch::Contains("not listening"));
  }

  SECTION("a Unix socket for a TCP listener") {
    fd passed = listen_unix(d.path + "/u.sock");
    process p = activated(d, yaml, passed.get(), "web");
    CHECK(p.wait() == 2);
    CHECK_THAT(slurp(d.file("err")), Catch::Contains("not of the address family of 127.0.0.1:1"));
  }
}
