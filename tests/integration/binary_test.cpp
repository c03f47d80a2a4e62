// The zcproxy binary: --check, --version, --help, and a run that relays and exits 0 on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <regex>
#include <sstream>

#include "support/net.hpp"
#include "support/process.hpp"
#include "zcproxy/config.hpp"

using namespace test;

namespace {

int run(std::vector<std::string> args, const temp_dir& d, std::string* out = nullptr,
        std::string* err = nullptr) {
  process p(std::move(args), d.file("out"), d.file("err"));
  REQUIRE(p.pid > 0);
  int code = p.wait();
  if (out) *out = slurp(d.file("out"));
  if (err) *err = slurp(d.file("err"));
  return code;
}

// The file's lines, without their newlines.
std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A round trip of a few bytes through the proxy; returns the client's address as the access log
// names it ("127.0.0.1:PORT"), once the client has closed.
std::string echo_once(std::uint16_t port) {
  fd c = connect_to(port);
  sockaddr_in me{};
  socklen_t len = sizeof me;
  REQUIRE(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&me), &len) == 0);
  send_all(c.get(), "ping", 4);
  shutdown_write(c.get());
  CHECK(recv_all(c.get()) == bytes{'p', 'i', 'n', 'g'});
  return "127.0.0.1:" + std::to_string(ntohs(me.sin_port));
}

// The clients the JSON lines name, in order.
std::vector<std::string> clients_in(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(path))
    out.emplace_back(boost::json::parse(line).at("client").as_string());
  return out;
}

}  // namespace

TEST_CASE("binary: --check accepts the example config and says what it would do", "[binary]") {
  temp_dir d;
  std::string out;
  CHECK(run({"--check", "-c", ZCPROXY_SOURCE_DIR "/conf/zcproxy.yaml"}, d, &out) == 0);
  CHECK_THAT(out, Catch::Contains("listener web: 127.0.0.1:8080 -> upstream app\n"));
  CHECK_THAT(out, Catch::Contains("upstream app: [127.0.0.1:5201]\n"));
}

TEST_CASE("binary: --check rejects a bad config with exit code 2 and names file, line and key",
          "[binary]") {
  temp_dir d;
  const std::string bad = d.file("bad.yaml",
                                 "listeners:\n"
                                 "  - { name: web, bind: \"127.0.0.1:99999\", upstream: app }\n"
                                 "upstreams:\n"
                                 "  app: { endpoints: [\"127.0.0.1:9000\"] }\n");
  std::string err;
  CHECK(run({"--check", "-c", bad}, d, nullptr, &err) == 2);
  CHECK_THAT(err, Catch::Contains(bad + ":2:") && Catch::Contains("listeners[0].bind"));
  // The same file is refused at start-up too: nothing starts on a bad config.
  CHECK(run({"-c", bad}, d) == 2);
  CHECK(run({"--check", "-c", d.path + "/missing.yaml"}, d) == 2);
}

// The config unit tests check the loader's errors in-process; this is where the binary is shown to
// print those very errors (every line, in order, naming the file), at start-up and with --check.
TEST_CASE(
    "binary: a bad config is refused with exactly the loader's errors, at start-up and by "
    "--check",
    "[binary]") {
  temp_dir d;
  const std::string bad = d.file("t.yaml", R"(threads: many
relay: { engine: fast, pipe_size: 1TiB }
drain_timeout: 5
listeners:
  - { name: web, bind: "localhost:80", upstream: api }
  - { name: web, bind: "127.0.0.1:80", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:99999"], connect_timeout: 2h }
)");
  std::vector<std::string> errors;
  try {
    zcproxy::load_config_file(bad);
  } catch (const zcproxy::config_error& e) {
    errors = e.errors();
  }
  REQUIRE(errors.size() == 9);
  CHECK_THAT(errors[0], Catch::StartsWith(bad + ":1:10: threads: "));
  std::string expected = "zcproxy: invalid config:\n";
  for (const auto& e : errors) expected += "  " + e + "\n";
  std::string err;
  CHECK(run({"-c", bad}, d, nullptr, &err) == 2);
  CHECK(err == expected);
  CHECK(run({"--check", "-c", bad}, d, nullptr, &err) == 2);
  CHECK(err == expected);
}

TEST_CASE("binary: --version, --help and bad usage", "[binary]") {
  temp_dir d;
  std::string out;
  CHECK(run({"--version"}, d, &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("zcproxy "));
  CHECK(run({"--help"}, d, &out) == 0);
  CHECK_THAT(out, Catch::Contains("--check"));
  CHECK(run({"--bogus"}, d) == 2);
  CHECK(run({}, d) == 2);
}

TEST_CASE("binary: relays a transfer, logs it, and exits 0 on SIGTERM", "[binary][integration]") {
  upstream_server up([](fd s) {
    bytes got = recv_all(s.get());
    send_all(s.get(), got);
  });
  temp_dir d;
  running_proxy zc(d, up.port(), "threads: 2\nlog: { level: info, access_log: true }\n");
  CHECK_THAT(slurp(d.file("err")), Catch::Contains("engine adaptive"));
  const std::uint16_t port = zc.port;

  const bytes data = random_bytes(4 << 20, 42);
  fd c = connect_to(port);
  thread_group t;
  t.spawn([&] {
    send_all(c.get(), data);
    shutdown_write(c.get());
  });
  CHECK(checksum(recv_all(c.get())) == checksum(data));
  CHECK(t.errors().empty());
  c.close();

  // One access-log line for the connection, once it has closed.
  REQUIRE(wait_until([&] { return slurp(d.file("out")).find("close=eof") != std::string::npos; }));
  const std::string access = slurp(d.file("out"));
  CHECK_THAT(access, Catch::Contains("bytes_up=4194304 bytes_down=4194304"));
  CHECK_THAT(access, Catch::Contains("engine_up=copy engine_down=copy"));

  // SIGUSR1 reopens an access file; with stdout it only says so.
  REQUIRE(::kill(zc.proc.pid, SIGUSR1) == 0);
  CHECK(wait_until(
      [&] { return zc.log().find("access log: stdout; nothing to reopen") != std::string::npos; }));

  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
  CHECK(up.stop_and_collect_errors().empty());
}

TEST_CASE("binary: out of fds, accepting backs off and recovers, and nothing crashes",
          "[binary][integration][emfile]") {
  upstream_server up([](fd s) {
    recv_all(s.get());
    send_all(s.get(), "ok", 2);
  });
  temp_dir d;
  running_proxy zc(d, up.port(), "threads: 1\nlog: { level: info, access_log: false }\n", 32);
  const std::uint16_t port = zc.port;

  // Far more clients than 32 fds can serve (each needs two sockets): the kernel queues them.
  std::vector<fd> clients;
  for (int i = 0; i < 40; ++i) clients.push_back(connect_to(port));
  REQUIRE(wait_until([&] {
    return slurp(d.file("err")).find("accept failed: Too many open files") != std::string::npos;
  }));
  clients.clear();  // fds free up as those sessions end

  // Served again once fds free up: a round trip through the proxy. While the queued clients are
  // worked off a new one may still meet EMFILE (on the upstream socket), so it may try again.
  CHECK(wait_until([&] {
    fd c = connect_to(port);
    send_all(c.get(), "alive", 5);
    shutdown_write(c.get());
    return recv_all(c.get()) == bytes{'o', 'k'};
  }));

  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);  // still alive, and exits cleanly
}

TEST_CASE("binary: out of fds, accepting backs off from 10 ms, doubling to 1 s",
          "[binary][integration][emfile]") {
  upstream_server up([](fd s) { recv_all(s.get()); });
  temp_dir d;
  // accept_proxy: each accepted client waits for its header holding one fd and no upstream
  // socket, so the fds fill exactly and every later accept fails until a client leaves.
  running_proxy zc(d,
                   "threads: 1\nlog: { level: info, access_log: false }\n"
                   "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app, "
                   "accept_proxy: true, proxy_timeout: 60s }\n"
                   "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
                       std::to_string(up.port()) + "\"] }\n",
                   "web", 32);
  std::vector<fd> clients;
  for (int i = 0; i < 40; ++i) clients.push_back(connect_to(zc.port));
  // Each failed accept says when it tries again: 10, 20, 40, ... 640, then 1000 for good.
  const std::regex retry(
      R"((\d\d:\d\d:\d\d\.\d\d\d) \w+ listener web: accept failed: Too many open files; retrying in (\d+) ms)");
  std::vector<std::pair<double, int>> seen;  // (seconds in the day, delay in ms)
  REQUIRE(wait_until(
      [&] {
        seen.clear();
        const std::string log = zc.log();
        for (std::sregex_iterator it(log.begin(), log.end(), retry), end; it != end; ++it) {
          const std::string t = (*it)[1];
          seen.emplace_back(std::stoi(t.substr(0, 2)) * 3600 + std::stoi(t.substr(3, 2)) * 60 +
                                std::stod(t.substr(6)),
                            std::stoi((*it)[2]));
        }
        return seen.size() >= 9;
      },
      30s));
  const std::vector<int> schedule{10, 20, 40, 80, 160, 320, 640, 1000, 1000};
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    INFO("retry " << i);
    CHECK(seen[i].second == schedule[i]);
    // Each retry comes no sooner than the delay the one before announced (1 ms: the log's
    // resolution).
    if (i > 0) CHECK(seen[i].first - seen[i - 1].first >= schedule[i - 1] / 1000.0 - 0.001);
  }
  clients.clear();  // fds free up as those clients leave
  // Served again: a client with a header gets through (the next retry is at most 1 s away).
  CHECK(wait_until([&] {
    fd c = connect_to(zc.port);
    const std::string header = "PROXY UNKNOWN\r\n";
    send_all(c.get(), header.data(), header.size());
    shutdown_write(c.get());
    recv_all(c.get());
    return up.accepted() > 0;
  }));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE(
    "binary: out of fds, a connection that needs a pipe carries on with copy and loses "
    "nothing",
    "[binary][integration][emfile]") {
  upstream_server up([](fd s) {
    bytes got = recv_all(s.get());
    send_all(s.get(), got);
  });
  temp_dir d;
  const std::string access = d.file("access.log");
  running_proxy zc(d, up.port(),
                   "threads: 1\nrelay: { engine: splice }\n"
                   "log: { level: info, access_format: json, access_file: \"" +
                       access + "\" }\n",
                   48);
  // Connected through, no byte yet: its directions hold no pipe (and the pool has none idle).
  fd c = connect_to(zc.port);
  sockaddr_in me{};
  socklen_t len = sizeof me;
  REQUIRE(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&me), &len) == 0);
  const std::string client = "127.0.0.1:" + std::to_string(ntohs(me.sin_port));
  REQUIRE(wait_until([&] { return up.accepted() == 1; }));
  // Then every fd taken: idle clients until the proxy runs out, which shows as an accept that
  // fails or, as often, a client accepted whose upstream socket cannot be made (it is closed
  // again). A pipe needs two fds; at most one is ever free from here on (the one such a client
  // leaves).
  std::vector<fd> idle;
  for (int i = 0; i < 60; ++i) idle.push_back(connect_to(zc.port));
  REQUIRE(wait_until([&] { return zc.log().find("Too many open files") != std::string::npos; }));
  // Now the connection's bytes need pipes that cannot be made: they go by copy, intact.
  const bytes data = random_bytes(1 << 20, 5);
  thread_group t;
  t.spawn([&] {
    send_all(c.get(), data);
    shutdown_write(c.get());
  });
  CHECK(checksum(recv_all(c.get())) == checksum(data));
  t.join();
  CHECK(t.errors().empty());
  c.close();
  idle.clear();
  std::string line;
  REQUIRE(wait_until([&] {
    const auto all = lines_of(access);
    for (const auto& l : all)
      if (l.find("\"client\":\"" + client + "\"") != std::string::npos) line = l;
    return !line.empty();
  }));
  const auto o = boost::json::parse(line).as_object();
  CHECK(o.at("engine_up").as_string() == "copy");  // engine splice, but no pipe could be had
  CHECK(o.at("engine_down").as_string() == "copy");
  CHECK(o.at("bytes_up").to_number<std::uint64_t>() == data.size());
  CHECK(o.at("bytes_down").to_number<std::uint64_t>() == data.size());
  CHECK(o.at("close").as_string() == "eof");
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE("binary: a second instance on the same address refuses to start", "[binary]") {
  upstream_server up([](fd s) { recv_all(s.get()); });
  temp_dir d;
  running_proxy first(d, up.port(), "threads: 2\n");
  // SO_REUSEPORT would let the second bind too and take half the traffic; it must not.
  temp_dir d2;
  const std::string conf =
      d2.file("zcproxy.yaml",
              "listeners:\n  - { name: web, bind: \"127.0.0.1:" + std::to_string(first.port) +
                  "\", upstream: app }\n"
                  "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
                  std::to_string(up.port()) + "\"] }\n");
  std::string err;
  CHECK(run({"-c", conf}, d2, nullptr, &err) == 2);
  CHECK_THAT(err, Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(first.port)) &&
                      Catch::Contains("in use"));
  REQUIRE(::kill(first.proc.pid, SIGTERM) == 0);
  CHECK(first.proc.wait() == 0);
}

TEST_CASE("binary: the access log says which timeout or failure closed a connection",
          "[binary][integration][timeout]") {
  upstream_server silent([](fd s) { recv_all(s.get()); });  // reads until the proxy closes
  const std::uint16_t dead = dead_port();
  temp_dir d;
  running_proxy zc(d,
                   "threads: 1\nlog: { level: info, access_log: true }\n"
                   "listeners:\n"
                   "  - { name: idle, bind: \"127.0.0.1:0\", upstream: app, idle_timeout: 200ms }\n"
                   "  - { name: long, bind: \"127.0.0.2:0\", upstream: app,"
                   " max_connection_duration: 300ms, idle_timeout: 0s }\n"
                   "  - { name: dead, bind: \"127.0.0.3:0\", upstream: gone }\n"
                   "upstreams:\n"
                   "  app: { endpoints: [\"127.0.0.1:" +
                       std::to_string(silent.port()) +
                       "\"] }\n"
                       "  gone: { endpoints: [\"127.0.0.1:" +
                       std::to_string(dead) + "\"] }\n",
                   "idle");
  auto port_of = [&](const std::string& name) {
    std::smatch m;
    const std::string log = zc.log();
    REQUIRE(std::regex_search(log, m, std::regex("listener " + name + R"( on [0-9.]+:(\d+))")));
    return static_cast<std::uint16_t>(std::stoi(m[1]));
  };
  auto connect_at = [](const char* ip, std::uint16_t port) {
    fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &sa.sin_addr);
    REQUIRE(::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    timeval tv{10, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  };
  {
    fd c = connect_at("127.0.0.1", zc.port);
    recv_to_end(c.get());  // closed by the idle timeout
  }
  {
    fd c = connect_at("127.0.0.2", port_of("long"));
    recv_to_end(c.get());  // closed at max_connection_duration
  }
  {
    fd c = connect_at("127.0.0.3", port_of("dead"));
    CHECK(recv_to_end(c.get()).reset);
  }
  const std::string out = d.file("out");
  REQUIRE(wait_until([&] {
    const std::string log = slurp(out);
    return log.find("listener=idle") != std::string::npos &&
           log.find("listener=long") != std::string::npos &&
           log.find("listener=dead") != std::string::npos;
  }));
  const std::string log = slurp(out);
  CHECK_THAT(log, Catch::Matches(R"((.|\n)*listener=idle .*close=idle_timeout(.|\n)*)"));
  CHECK_THAT(log, Catch::Matches(R"((.|\n)*listener=long .*close=max_duration(.|\n)*)"));
  CHECK_THAT(log, Catch::Matches(R"((.|\n)*listener=dead .*close=connect_failed(.|\n)*)"));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}

TEST_CASE(
    "binary: a JSON access log in a file, reopened on SIGUSR1 as logrotate does, and "
    "flushed at SIGTERM",
    "[binary][integration][log]") {
  upstream_server up([](fd s) {
    bytes got = recv_all(s.get());
    send_all(s.get(), got);
  });
  temp_dir d;
  const std::string file = d.file("access.log");
  const std::string rotated = d.file("access.log.1");
  running_proxy zc(
      d, up.port(),
      "threads: 2\nlog: { level: info, access_format: json, access_file: " + file + " }\n");

  // One JSON line per connection, in the file; nothing on stdout.
  const std::string first = echo_once(zc.port);
  REQUIRE(wait_until([&] { return lines_of(file).size() == 1; }));
  const auto line = boost::json::parse(lines_of(file)[0]).as_object();
  CHECK(line.at("client") == first.c_str());
  CHECK(line.at("listener") == "web");
  CHECK(line.at("bytes_up").to_number<std::uint64_t>() == 4);
  CHECK(line.at("bytes_down").to_number<std::uint64_t>() == 4);
  CHECK(line.at("close") == "eof");
  CHECK(slurp(d.file("out")).empty());

  // logrotate: rename, then SIGUSR1. The reopen creates a new file at the old path.
  REQUIRE(std::rename(file.c_str(), rotated.c_str()) == 0);
  REQUIRE(::kill(zc.proc.pid, SIGUSR1) == 0);
  REQUIRE(wait_until(
      [&] { return zc.log().find("access log: reopened " + file) != std::string::npos; }));
  const std::string second = echo_once(zc.port);
  REQUIRE(wait_until([&] { return lines_of(file).size() == 1; }));
  CHECK(clients_in(file) == std::vector<std::string>{second});
  CHECK(clients_in(rotated) == std::vector<std::string>{first});  // kept, and nothing added

  // Connections that close right before SIGTERM: their lines are written before exit.
  std::vector<std::string> last;
  for (int i = 0; i < 20; ++i) last.push_back(echo_once(zc.port));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
  last.insert(last.begin(), second);
  auto logged = clients_in(file);
  std::sort(logged.begin(), logged.end());
  std::sort(last.begin(), last.end());
  CHECK(logged == last);
  CHECK(slurp(d.file("out")).empty());
  CHECK(up.stop_and_collect_errors().empty());
}

TEST_CASE("binary: curl drains an endpoint through the admin API with the token, and only so",
          "[binary][admin]") {
  temp_dir d;
  upstream_server a([](fd s) { send_all(s.get(), "a", 1); });
  upstream_server b([](fd s) { send_all(s.get(), "b", 1); });
  const std::string token = "curl-test-token-0123456789abcdef";
  const std::string token_file = d.file("token", token + "\n");
  REQUIRE(::chmod(token_file.c_str(), 0600) == 0);
  auto at = [](std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); };
  running_proxy zc(d,
                   "threads: 2\nlog: { level: info, access_log: false }\n"
                   "admin: { bind: \"127.0.0.1:0\", token_file: \"" +
                       token_file +
                       "\" }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
                       "upstreams: { app: { endpoints: [\"" +
                       at(a.port()) + "\", \"" + at(b.port()) + "\"] } }\n",
                   "web");
  const std::string admin = "http://" + at(zc.port_of("admin"));
  // curl's status code and body, as `-w` prints them after the body.
  auto curl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-s", "-o", d.file("body"), "-w", "%{http_code}"});
    process p("curl", args, "/dev/null", d.file("curl.out"), d.file("curl.err"));
    REQUIRE(p.wait() == 0);
    return std::make_pair(std::stoi(slurp(d.file("curl.out"))), slurp(d.file("body")));
  };
  const std::string drain_a = admin + "/upstreams/app/endpoints/" + at(a.port());
  const std::vector<std::string> drain = {"-X", "POST", "-d", R"({"state":"drain"})", drain_a};
  auto with = [](std::vector<std::string> args, const std::string& header) {
    args.insert(args.begin(), {"-H", header});
    return args;
  };

  // --check lists what the running proxy serves, as its start-up line does.
  std::string check_out;
  temp_dir check_dir;  // not d: the proxy's own out and err are there
  REQUIRE(run({"--check", "-c", zc.config}, check_dir, &check_out) == 0);
  std::smatch served, checked;
  const std::string log = zc.log();
  REQUIRE(std::regex_search(log, served, std::regex("admin on [0-9.:]+: ([^\n]*)")));
  REQUIRE(std::regex_search(check_out, checked, std::regex("admin: [0-9.:]+ \\(([^\n]*)\\)")));
  CHECK(checked[1].str() == served[1].str());
  CHECK_THAT(checked[1].str(), Catch::Contains("/upstreams, POST /upstreams/"));

  CHECK(curl(drain).first == 401);
  CHECK(curl(with(drain, "Authorization: Bearer wrong-token-0123456789abcdef")).first == 403);
  auto [code, body] = curl({admin + "/upstreams/app"});
  CHECK(code == 200);
  CHECK(body.find("\"drain\"") == std::string::npos);
  std::tie(code, body) = curl(with(drain, "Authorization: Bearer " + token));
  CHECK(code == 200);
  CHECK(body.find("\"drain\"") != std::string::npos);
  CHECK_THAT(zc.log(), Catch::Contains("admin: upstream app endpoint " + at(a.port()) +
                                       ": state drain, weight 1"));
  // Every new connection goes to b now.
  for (int i = 0; i < 6; ++i) {
    fd c = connect_to(zc.port);
    CHECK(recv_all(c.get()) == bytes{'b'});
  }
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}
