// Reload: a new config applies to new connections while the open ones run on untouched to the
// end; listeners whose address stays keep their sockets (and port), new ones open, removed ones
// stop accepting; a config that is bad, or whose listener cannot bind, changes nothing. In process
// through server::reload, and through the binary with SIGHUP (and its SIGTERM drain).
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// A backend that sends `greeting` (its name, say) on accept, then echoes every chunk as it
// arrives, counting what it carries. A peer's reset ends a connection too, and is counted.
struct backend {
  explicit backend(std::string greeting = "")
      : greeting(std::move(greeting)), server([this](fd s) { handle(std::move(s)); }) {}

  std::uint16_t port() const { return server.port(); }

  void handle(fd s) {
    if (!greeting.empty()) send_all(s.get(), greeting.data(), greeting.size());
    std::uint64_t carried = 0;
    char buf[1 << 16];
    for (;;) {
      ssize_t m = ::recv(s.get(), buf, sizeof buf, 0);
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && errno == ECONNRESET) {
        ++resets;
        break;
      }
      if (m < 0) throw std::runtime_error(std::string("backend recv: ") + std::strerror(errno));
      if (m == 0) break;
      // Counted before the echo: a client that has its echo sees the count.
      carried += static_cast<std::uint64_t>(m);
      received += static_cast<std::uint64_t>(m);
      send_all(s.get(), buf, static_cast<std::size_t>(m));
    }
    if (carried >= (1u << 20)) {
      ++big;
      big_bytes += carried;
    }
  }

  const std::string greeting;
  std::atomic<std::uint64_t> received{0};   // over all connections
  std::atomic<int> big{0};                  // connections that carried 1 MiB or more
  std::atomic<std::uint64_t> big_bytes{0};  // what those carried
  std::atomic<int> resets{0};
  upstream_server server;  // last: its handler threads use the fields above
};

struct listener_spec {
  std::string name;
  std::uint16_t port = 0;  // 0: the kernel picks one
  std::string extra = "";  // more keys of the listener's map, e.g. ", idle_timeout: 1m"
  std::string ip = "127.0.0.1";
};

// A config whose listeners all forward to upstream `app` with `endpoints`; `app_extra` adds keys
// to the upstream's map (", balance: least_conn").
std::string yaml_for(
    const std::vector<listener_spec>& listeners, const std::vector<std::uint16_t>& endpoints,
    const std::string& app_extra = "",
    const std::string& head = "threads: 2\nlog: { level: warn, access_log: false }\n") {
  std::ostringstream y;
  y << head << "listeners:\n";
  for (const auto& l : listeners)
    y << "  - { name: " << l.name << ", bind: \"" << l.ip << ":" << l.port << "\", upstream: app"
      << l.extra << " }\n";
  y << "upstreams:\n  app: { endpoints: [";
  for (std::size_t i = 0; i < endpoints.size(); ++i)
    y << (i ? ", " : "") << "\"127.0.0.1:" << endpoints[i] << "\"";
  y << "], connect_timeout: 2s" << app_extra << " }\n";
  return y.str();
}

zcproxy::config config_of(const std::string& yaml) {
  return zcproxy::load_config_string(yaml, "reload.yaml");
}

// What a backend greets a new connection through the proxy with.
std::string greeting_at(std::uint16_t port, std::size_t n = 1) {
  fd c = connect_to(port);
  const bytes g = recv_exact(c.get(), n);
  return std::string(g.begin(), g.end());
}

// One echo round trip on a new connection: the bytes come back and the stream ends with a FIN.
bool round_trip(std::uint16_t port, std::size_t n, std::uint32_t seed) {
  const bytes data = random_bytes(n, seed);
  fd c = connect_to(port);
  send_all(c.get(), data);
  shutdown_write(c.get());
  const stream_end got = recv_to_end(c.get());
  return !got.reset && got.data == data;
}

// On an open connection: `text` goes through and comes back.
std::string echo(const fd& c, const std::string& text) {
  send_all(c.get(), text.data(), text.size());
  const bytes got = recv_exact(c.get(), text.size());
  return std::string(got.begin(), got.end());
}

// Sends `data` from a thread while reading the echo back, then ends the connection cleanly.
stream_end stream_through(const fd& c, const bytes& data) {
  thread_group t;
  t.spawn([&] {
    for (std::size_t at = 0; at < data.size(); at += 64 << 10)
      send_all(c.get(), data.data() + at, std::min<std::size_t>(64 << 10, data.size() - at));
    shutdown_write(c.get());
  });
  stream_end got = recv_to_end(c.get());
  const auto errors = t.errors();
  for (const auto& e : errors) WARN("sender: " << e);
  CHECK(errors.empty());
  return got;
}

// Stops the backend and checks its handlers met no error (a peer's reset is not one).
void check_clean(backend& b) {
  const auto errors = b.server.stop_and_collect_errors();
  for (const auto& e : errors) WARN("backend: " << e);
  CHECK(errors.empty());
}

// Runs `f` when the scope ends, an early one (a failed REQUIRE) included.
template <typename F>
struct at_exit {
  F f;
  ~at_exit() { f(); }
};
template <typename F>
at_exit(F) -> at_exit<F>;

}  // namespace

TEST_CASE(
    "reload: 50 connections stream intact through 20 reloads while new connections are served",
    "[reload][integration]") {
  constexpr int streams = 50, reloads = 20, new_per_reload = 5;
  constexpr std::size_t total = 2 << 20, chunk = 16 << 10, chunks = total / chunk;
  // The first chunk a stream may send once `q` reloads are done (chunk k waits for reload
  // k * reloads / chunks, so that every stream moves data between every two reloads).
  auto first_of_phase = [&](int q) {
    return (static_cast<std::size_t>(q) * chunks + reloads - 1) / reloads;
  };

  backend a, b;
  const std::uint16_t second_port = dead_port();
  // Even reloads: upstream on A, one listener. Odd: upstream on B and a second listener.
  const std::string to_a = yaml_for({{"main"}}, {a.port()});
  const std::string to_b = yaml_for({{"main"}, {"second", second_port}}, {b.port()});
  proxy p(config_of(to_a));
  const std::uint16_t port = p.port();
  const auto t0 = clock_type::now();

  std::atomic<int> phase{0};                              // reloads done
  std::vector<std::atomic<std::size_t>> echoed(streams);  // chunks back, per stream
  std::atomic<int> intact{0}, unclean_ends{0}, good{0};   // good: intact and a clean end
  thread_group t;
  at_exit release{[&] { phase = reloads; }};  // a failed REQUIRE must not leave streams waiting
  for (int i = 0; i < streams; ++i) {
    t.spawn([&, i] {
      const bytes data = random_bytes(total, 7000 + i);
      fd c = connect_to(port);
      bytes back;
      back.reserve(total);
      for (std::size_t k = 0; k < chunks; ++k) {
        const int needs = static_cast<int>(k * reloads / chunks);
        if (!wait_until([&] { return phase >= needs; }, 60s))
          throw std::runtime_error("stream " + std::to_string(i) + ": reload " +
                                   std::to_string(needs) + " never came");
        send_all(c.get(), data.data() + k * chunk, chunk);
        const bytes got = recv_exact(c.get(), chunk);
        back.insert(back.end(), got.begin(), got.end());
        ++echoed[i];
      }
      // Open across the last reload too; then a clean end.
      wait_until([&] { return phase >= reloads; }, 60s);
      shutdown_write(c.get());
      const stream_end rest = recv_to_end(c.get());
      const bool clean = !rest.reset && rest.data.empty();
      const bool same = checksum(back) == checksum(data);
      unclean_ends += !clean;
      intact += same;
      good += clean && same;
    });
  }
  REQUIRE(wait_until([&] { return a.server.accepted() == streams; }));

  std::vector<std::string> refused;  // reasons of reloads that did not return ""
  int served = 0, served_second = 0, lost_new = 0, expect_a = streams, expect_b = 0;
  for (int r = 1; r <= reloads; ++r) {
    // Data is moving: every stream has had a chunk of the current phase echoed, and has more
    // to send in it, when the reload comes.
    const std::size_t mark = first_of_phase(r - 1) + 1;
    REQUIRE(wait_until([&] {
      for (auto& e : echoed)
        if (e < mark) return false;
      return true;
    }));
    const bool odd = r % 2 == 1;
    const std::string why = p.srv->reload(config_of(odd ? to_b : to_a)).error;
    if (!why.empty()) refused.push_back("reload " + std::to_string(r) + ": " + why);
    phase = r;

    const auto listening = p.srv->listening();
    CHECK(listening.size() == (odd ? 2u : 1u));
    CHECK(listening.at(0).port == port);
    for (int j = 0; j < new_per_reload; ++j) {
      // On odd reloads, every other new connection goes to the added listener.
      const bool second = odd && listening.size() == 2 && j % 2 == 1;
      const std::uint16_t to = second ? listening[1].port : port;
      bool ok = false;
      try {
        ok = round_trip(to, 1000, static_cast<std::uint32_t>(r * 100 + j));
      } catch (const std::exception& e) {
        WARN("reload " << r << ", new connection " << j << " to port " << to << ": " << e.what());
      }
      if (!ok) {
        ++lost_new;
        continue;
      }
      ++served;
      served_second += second;
      ++(odd ? expect_b : expect_a);
    }
  }

  const auto errors = t.errors();  // every stream done
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  for (const auto& e : errors) WARN(e);
  for (const auto& e : refused) WARN(e);
  const int lost = streams - good + lost_new;
  std::printf(
      "reload: %d connections streamed %zu MiB each (%zu MiB each way in all) through %d reloads "
      "(%zu refused); %d new connections served (%d through the added listener); %d lost "
      "(streams: %zu failed, %d unclean ends, %d corrupt; new connections: %d failed); "
      "backend A carried %d big connections, B %d; %.2f s\n",
      streams, total >> 20, (streams * total) >> 20, reloads, refused.size(), served, served_second,
      lost, errors.size(), unclean_ends.load(), streams - static_cast<int>(errors.size()) - intact,
      lost_new, a.big.load(), b.big.load(), seconds);
  std::fflush(stdout);

  CHECK(errors.empty());
  CHECK(lost == 0);
  CHECK(intact == streams);
  CHECK(unclean_ends == 0);
  CHECK(refused.empty());
  CHECK(lost_new == 0);
  CHECK(served == reloads * new_per_reload);
  // The 50 started on A and all finished there, though the upstream moved to B ten times.
  CHECK(a.big == streams);
  CHECK(a.big_bytes == streams * total);
  CHECK(b.big == 0);
  // Each new connection went where the config of its time sent it.
  CHECK(a.server.accepted() == expect_a);
  CHECK(b.server.accepted() == expect_b);
  CHECK(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  CHECK(a.resets == 0);
  CHECK(b.resets == 0);
  check_clean(a);
  check_clean(b);
}

TEST_CASE(
    "reload: a changed upstream serves new connections while an open one stays on its old backend",
    "[reload][integration]") {
  backend a("A"), b("B");
  proxy p(config_of(yaml_for({{"main"}}, {a.port()})));
  const std::uint16_t port = p.port();
  fd old = connect_to(port);
  CHECK(recv_exact(old.get(), 1) == bytes{'A'});

  REQUIRE(p.srv->reload(config_of(yaml_for({{"main"}}, {b.port()}))).error == "");
  for (int i = 0; i < 3; ++i) CHECK(greeting_at(port) == "B");

  // The open connection still talks to A, and only to A.
  CHECK(echo(old, "still here") == "still here");
  CHECK(a.received == 10);
  CHECK(b.received == 0);
  shutdown_write(old.get());
  const stream_end end = recv_to_end(old.get());
  CHECK(end.data.empty());
  CHECK_FALSE(end.reset);

  // And back: new connections follow the config again.
  REQUIRE(p.srv->reload(config_of(yaml_for({{"main"}}, {a.port()}))).error == "");
  CHECK(greeting_at(port) == "A");
  CHECK(a.server.accepted() == 2);
  CHECK(b.server.accepted() == 3);
  check_clean(a);
  check_clean(b);
}

TEST_CASE("reload: a changed idle timeout applies to new connections, not to open ones",
          "[reload][integration]") {
  backend a("A");
  proxy p(config_of(yaml_for({{"main"}}, {a.port()}, ", idle_timeout: 0s")));
  const std::uint16_t port = p.port();
  fd old = connect_to(port);
  CHECK(recv_exact(old.get(), 1) == bytes{'A'});

  REQUIRE(
      p.srv->reload(config_of(yaml_for({{"main"}}, {a.port()}, ", idle_timeout: 300ms"))).error ==
      "");
  fd fresh = connect_to(port);
  CHECK(recv_exact(fresh.get(), 1) == bytes{'A'});
  const auto t0 = clock_type::now();
  const stream_end closed = recv_to_end(fresh.get());  // the proxy closes it once idle
  const auto idle = clock_type::now() - t0;
  CHECK(closed.data.empty());
  CHECK(idle >= 250ms);
  CHECK(idle < 5s);

  // The old connection has been idle at least as long, under its own config (no idle limit).
  CHECK(echo(old, "alive") == "alive");
  shutdown_write(old.get());
  CHECK_FALSE(recv_to_end(old.get()).reset);
  check_clean(a);
}

TEST_CASE(
    "reload: a new listener opens and a removed one stops accepting while its open connection runs "
    "to the end",
    "[reload][integration]") {
  backend a;
  const std::string one = yaml_for({{"main"}}, {a.port()});
  const std::string two = yaml_for({{"main"}, {"extra"}}, {a.port()});
  proxy p(config_of(one));
  const std::uint16_t port = p.port();

  REQUIRE(p.srv->reload(config_of(two)).error == "");
  auto listening = p.srv->listening();
  REQUIRE(listening.size() == 2);
  CHECK(listening[0].port == port);
  const std::uint16_t extra = listening[1].port;
  CHECK(extra != 0);
  CHECK(extra != port);
  CHECK(round_trip(extra, 1000, 1));
  fd kept = connect_to(extra);
  CHECK(echo(kept, "before") == "before");

  REQUIRE(p.srv->reload(config_of(one)).error == "");
  listening = p.srv->listening();
  REQUIRE(listening.size() == 1);
  CHECK(listening[0].port == port);
  CHECK(wait_until([&] { return !can_connect(extra); }));
  CHECK(round_trip(port, 1000, 2));

  // The connection accepted by the removed listener runs on to the end.
  CHECK(echo(kept, "after") == "after");
  const bytes data = random_bytes(4 << 20, 3);
  const stream_end got = stream_through(kept, data);
  CHECK_FALSE(got.reset);
  CHECK(checksum(got.data) == checksum(data));
  CHECK(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  check_clean(a);
}

TEST_CASE(
    "reload: a listener whose address stays keeps its port and refuses no connect across 20 "
    "reloads",
    "[reload][integration]") {
  constexpr int reloads = 20, connectors = 2;
  backend a, b;
  // The two configs differ in the listener's settings, the upstream (endpoints, policy) and the
  // listeners around it, never in its address.
  const std::string x = yaml_for({{"main", 0, ", idle_timeout: 1m"}}, {a.port()});
  // ("other" binds another address: listeners are matched by address, so a second one on
  // 127.0.0.1:0 listed first would be matched with main's socket.)
  const std::string y =
      yaml_for({{"other", 0, "", "127.0.0.2"}, {"main", 0, ", idle_timeout: 2m"}, {"third"}},
               {a.port(), b.port()}, ", balance: least_conn");
  proxy p(config_of(x));
  const std::uint16_t port = p.port();

  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0}, failures{0};
  std::mutex mutex;
  std::vector<std::string> why;
  thread_group t;
  at_exit stopper{[&] { stop = true; }};
  for (int i = 0; i < connectors; ++i) {
    t.spawn([&, i] {
      for (std::uint32_t n = 0; !stop; ++n) {
        bool ok = false;
        try {
          ok = round_trip(port, 100, n * connectors + i);
        } catch (const std::exception& e) {
          std::lock_guard lock(mutex);
          why.push_back(e.what());
        }
        failures += !ok;
        ++attempts;
      }
    });
  }
  for (int r = 1; r <= reloads; ++r) {
    // Connects keep coming between reloads.
    const int before = attempts;
    REQUIRE(wait_until([&] { return attempts >= before + connectors; }));
    const bool odd = r % 2 == 1;
    CHECK(p.srv->reload(config_of(odd ? y : x)).error == "");
    const auto listening = p.srv->listening();
    REQUIRE(listening.size() == (odd ? 3u : 1u));
    CHECK(listening[odd ? 1 : 0].port == port);
  }
  const int before = attempts;
  CHECK(wait_until([&] { return attempts >= before + connectors; }));
  stop = true;
  const auto errors = t.errors();
  std::printf("reload: %d connects through %d reloads, %d failed\n", attempts.load(), reloads,
              failures.load());
  std::fflush(stdout);
  for (const auto& e : why) WARN(e);
  CHECK(errors.empty());
  CHECK(failures == 0);
  CHECK(attempts > 2 * reloads);
  check_clean(a);
  check_clean(b);
}

TEST_CASE(
    "reload: a new listener that cannot bind refuses the reload, naming it, and the old config "
    "serves on",
    "[reload][integration]") {
  backend a("A"), b("B");
  std::uint16_t held = 0;
  fd holder = listen_loopback(held);  // the port the new listener wants
  const std::uint16_t fresh = dead_port();
  const std::string good = yaml_for({{"main"}}, {a.port()});
  // Besides the listener that cannot bind: another new one (listed first, so it is opened
  // before the failure) and a changed upstream. None of it may take effect.
  const std::string bad = yaml_for({{"main"}, {"fresh", fresh}, {"blocked", held}}, {b.port()});
  proxy p(config_of(good));
  const std::uint16_t port = p.port();
  fd old = connect_to(port);
  CHECK(recv_exact(old.get(), 1) == bytes{'A'});

  const std::string why = p.srv->reload(config_of(bad)).error;
  INFO("reload said: " << why);
  CHECK_FALSE(why.empty());
  CHECK_THAT(why, Catch::Contains("blocked") &&
                      Catch::Contains("127.0.0.1:" + std::to_string(held)) &&
                      Catch::Contains("in use"));

  // Unchanged: the listeners, the upstream, the open connection.
  const auto listening = p.srv->listening();
  REQUIRE(listening.size() == 1);
  CHECK(listening[0].port == port);
  CHECK_FALSE(can_connect(fresh));
  CHECK(greeting_at(port) == "A");
  CHECK(echo(old, "unchanged") == "unchanged");
  CHECK(b.server.accepted() == 0);

  // Once the port is free the same config applies: the refused attempt left no socket behind
  // (the listener opened before the failure binds again).
  holder.close();
  REQUIRE(p.srv->reload(config_of(bad)).error == "");
  REQUIRE(p.srv->listening().size() == 3);
  CHECK(p.srv->listening()[0].port == port);
  CHECK(greeting_at(port) == "B");
  CHECK(greeting_at(fresh) == "B");
  CHECK(greeting_at(held) == "B");
  CHECK(echo(old, "still A") == "still A");
  CHECK(a.received == std::string("unchangedstill A").size());
  shutdown_write(old.get());
  CHECK_FALSE(recv_to_end(old.get()).reset);
  check_clean(a);
  check_clean(b);
}

TEST_CASE(
    "reload: binary, SIGHUP with a broken config is refused with every error and the old config "
    "serves on, a good one is applied",
    "[reload][integration][binary]") {
  backend a("A"), b("B");
  temp_dir d;
  const std::string head = "threads: 2\nlog: { level: info, access_log: false }\n";
  const std::string with_a = yaml_for({{"web"}}, {a.port()}, "", head);
  running_proxy zc(d, with_a, "web");
  CHECK(greeting_at(zc.port) == "A");

  // Two errors: an unknown key (line 3) and an invalid address (line 5), in a config that would
  // also move the upstream to B.
  const std::string broken = head +
                             "bogus: 1\n"
                             "listeners:\n"
                             "  - { name: web, bind: \"127.0.0.1:99999\", upstream: app }\n"
                             "upstreams:\n"
                             "  app: { endpoints: [\"127.0.0.1:" +
                             std::to_string(b.port()) + "\"] }\n";
  // What --check says of it, for comparison.
  temp_dir check_dir;
  const std::string copy = check_dir.file("zcproxy.yaml", broken);
  process check({"--check", "-c", copy}, check_dir.file("out"), check_dir.file("err"));
  REQUIRE(check.wait() == 2);
  std::vector<std::string> check_errors;
  {
    std::istringstream lines(slurp(check_dir.file("err")));
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("  " + copy + ":", 0) == 0)
        check_errors.push_back(line.substr(2 + copy.size()));
  }
  REQUIRE(check_errors.size() == 2);

  d.file("zcproxy.yaml", broken);
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("reload refused") != std::string::npos; }));
  const std::string log = zc.log();
  INFO("stderr:\n" << log);
  CHECK_THAT(log, Catch::Contains("reload: " + zc.config + ":3:1: bogus: unknown key"));
  CHECK_THAT(log,
             Catch::Contains("reload: " + zc.config + ":5:24: listeners[0].bind: expected an IP"));
  for (const auto& e : check_errors) CHECK_THAT(log, Catch::Contains("reload: " + zc.config + e));
  CHECK_THAT(log, Catch::Contains("the running config stays"));
  // Still serving, with the old config.
  CHECK(greeting_at(zc.port) == "A");
  CHECK(b.server.accepted() == 0);

  // A good file moving the upstream to B is applied; the listener keeps its port.
  d.file("zcproxy.yaml", yaml_for({{"web"}}, {b.port()}, "", head));
  REQUIRE(::kill(zc.proc.pid, SIGHUP) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("reload: done") != std::string::npos; }));
  CHECK(greeting_at(zc.port) == "B");
  CHECK(greeting_at(zc.port) == "B");

  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
  check_clean(a);
  check_clean(b);
}

TEST_CASE(
    "reload: binary, SIGTERM drains the open connection to the end and a second SIGTERM closes at "
    "once",
    "[reload][integration][binary][drain]") {
  backend a;
  const std::string head =
      "threads: 2\ndrain_timeout: 30s\nlog: { level: info, access_log: false }\n";

  SECTION("one SIGTERM: the open connection finishes intact, new ones are refused, exit 0") {
    temp_dir d;
    running_proxy zc(d, a.port(), head);
    const bytes data = random_bytes(4 << 20, 11);
    const std::size_t half = data.size() / 2;
    fd c = connect_to(zc.port);
    stream_end got;
    thread_group reader;
    reader.spawn([&] { got = recv_to_end(c.get()); });
    send_all(c.get(), data.data(), half);
    REQUIRE(wait_until([&] { return a.received >= half; }));  // relaying

    REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
    REQUIRE(wait_until([&] { return zc.log().find("draining") != std::string::npos; }));
    CHECK(wait_until([&] { return !can_connect(zc.port); }));
    send_all(c.get(), data.data() + half, data.size() - half);
    shutdown_write(c.get());
    CHECK(reader.errors().empty());
    CHECK_FALSE(got.reset);
    CHECK(checksum(got.data) == checksum(data));
    // It exits once that connection has ended, long before drain_timeout.
    const auto t0 = clock_type::now();
    CHECK(zc.proc.wait(10s) == 0);
    CHECK(clock_type::now() - t0 < 5s);
  }

  SECTION("a second SIGTERM closes the open connection at once, exit 0") {
    temp_dir d;
    running_proxy zc(d, a.port(), head);
    fd c = connect_to(zc.port);
    CHECK(echo(c, "open") == "open");
    REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
    REQUIRE(wait_until([&] { return zc.log().find("draining") != std::string::npos; }));
    CHECK(echo(c, "draining") == "draining");  // still served
    const auto t0 = clock_type::now();
    REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
    recv_to_end(c.get());  // ended by the proxy: a FIN or a reset
    CHECK(clock_type::now() - t0 < 5s);
    CHECK(zc.proc.wait(10s) == 0);
    CHECK_THAT(zc.log(), Catch::Contains("closing open connections now"));
  }
  check_clean(a);
}

TEST_CASE("reload: a listener removed and added back at once is never refused its address",
          "[reload][integration]") {
  backend a("A"), b("B");
  const std::uint16_t second = dead_port();
  const std::string one = yaml_for({{"main"}}, {a.port()});
  const std::string two = yaml_for({{"main"}, {"second", second}}, {b.port()});
  proxy p(config_of(one));
  int refused = 0;
  std::string last;
  for (int i = 0; i < 100; ++i) {
    for (const std::string* y : {&two, &one}) {
      const std::string why = p.srv->reload(config_of(*y)).error;
      if (!why.empty()) {
        ++refused;
        last = why;
      }
    }
  }
  INFO("last refusal: " << last);
  CHECK(refused == 0);  // reload() returns once every worker has closed what it dropped
}

TEST_CASE("reload: refused while the server drains, so no listener opens that nobody serves",
          "[reload][integration][drain]") {
  backend a("A");
  const std::uint16_t second = dead_port();
  const std::string head =
      "threads: 2\ndrain_timeout: 30s\nlog: { level: warn, access_log: false }\n";
  proxy p(config_of(yaml_for({{"main"}}, {a.port()}, "", head)));
  fd c = connect_to(p.port());
  CHECK(recv_exact(c.get(), 1) == bytes{'A'});
  p.srv->shutdown();
  REQUIRE(wait_until([&] { return !can_connect(p.port()); }));
  const std::string why =
      p.srv->reload(config_of(yaml_for({{"main"}, {"second", second}}, {a.port()}, "", head)))
          .error;
  CHECK_THAT(why, Catch::Contains("shutting down"));
  CHECK_FALSE(can_connect(second));
  shutdown_write(c.get());
  recv_to_end(c.get());
}

TEST_CASE("reload: connections queued on a listener as a reload removes it are all served",
          "[reload][integration]") {
  backend a;
  const std::string head = "threads: 1\nlog: { level: warn, access_log: false }\n";
  proxy p(config_of(yaml_for({{"main"}}, {a.port()}, "", head)));
  int lost = 0, total = 0;
  for (int round = 0; round < 20; ++round) {
    REQUIRE(p.srv->reload(config_of(yaml_for({{"main"}, {"extra"}}, {a.port()}, "", head))).error ==
            "");
    const std::uint16_t extra = p.srv->listening().at(1).port;
    std::vector<fd> cs;
    for (int i = 0; i < 20; ++i) cs.push_back(connect_to(extra));
    REQUIRE(p.srv->reload(config_of(yaml_for({{"main"}}, {a.port()}, "", head))).error == "");
    for (auto& c : cs) {
      ++total;
      send_all(c.get(), "x", 1);
      shutdown_write(c.get());
      const stream_end e = recv_to_end(c.get());
      if (e.reset || e.data != bytes{'x'}) ++lost;
    }
  }
  INFO(lost << " of " << total << " connections were not served");
  CHECK(lost == 0);
}
