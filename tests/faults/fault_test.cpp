// Faults: each one injected into a running zcproxy process while other connections keep flowing
// through it, and those must come through byte for byte. The proxy is the binary, so its fds,
// memory and exit are its own; the backends are threads of this process, but for the one that
// is killed, which is this executable run as `--echo-backend PORT`. Its own CTest label (faults).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define CATCH_CONFIG_RUNNER
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <regex>
#include <sstream>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// What comes in goes back, until the end of the stream; then a FIN.
void echo(fd s) {
  std::vector<char> buf(64 << 10);
  for (;;) {
    const ssize_t n = ::recv(s.get(), buf.data(), buf.size(), 0);
    if (n <= 0) break;  // EOF, or a reset: either ends the stream
    if (::send(s.get(), buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  ::shutdown(s.get(), SHUT_WR);
}

// A backend that holds each connection, reading and writing nothing, until released; then it
// reads to the end. Copies share one state, and any copy going away releases: keep a copy
// declared after the upstream_server it serves, so a failed check never leaves a handler waiting
// through the server's join.
class holder {
 public:
  std::function<void(fd)> handler() {
    return [s = state_](fd c) {
      s->released.wait();
      s->read += recv_all(c.get()).size();
    };
  }
  void release() {
    if (!std::exchange(state_->done, true)) state_->go.set_value();
  }
  std::size_t read() const { return state_->read; }
  ~holder() { release(); }

 private:
  struct state {
    std::promise<void> go;
    std::shared_future<void> released = go.get_future().share();
    std::atomic<std::size_t> read{0};
    bool done = false;
  };
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

// Long-lived connections through the proxy, each echoing chunks of random bytes (1 byte to
// 128 KiB) and comparing every chunk, until stopped: the traffic a fault must not disturb.
class flows {
 public:
  flows(std::uint16_t port, int n) {
    for (int i = 0; i < n; ++i) threads_.spawn([this, port, i] { run(port, i); });
    // Every flow has moved a chunk before the fault comes.
    REQUIRE(wait_until([&] { return min_rounds() >= 1; }));
  }
  ~flows() { stop(); }

  // Rounds completed by the flow with the fewest.
  std::uint64_t min_rounds() {
    std::lock_guard lock(mutex_);
    std::uint64_t m = UINT64_MAX;
    for (auto r : rounds_) m = std::min(m, r);
    return rounds_.empty() ? 0 : m;
  }
  // Every flow completes `more` rounds from now: traffic goes on during the fault.
  bool all_advance(std::uint64_t more = 3) {
    std::vector<std::uint64_t> at;
    {
      std::lock_guard lock(mutex_);
      at = rounds_;
    }
    return wait_until([&] {
      std::lock_guard lock(mutex_);
      for (std::size_t i = 0; i < at.size(); ++i)
        if (rounds_[i] < at[i] + more) return false;
      return true;
    });
  }
  // Each flow half-closes and reads to the end: no byte missing, nothing after, a clean FIN.
  void stop() {
    stop_ = true;
    threads_.join();
  }
  // After stop().
  void check() {
    const auto errors = threads_.errors();
    std::cout << "faults: flows: " << rounds_.size() << " connections, " << total_rounds()
              << " chunks, " << (bytes_ >> 10) << " KiB echoed, " << mismatches_ << " mismatched, "
              << errors.size() << " failed\n";
    for (const auto& e : errors) UNSCOPED_INFO("flow failed: " << e);
    CHECK(errors.empty());
    CHECK(mismatches_ == 0);
  }

 private:
  std::uint64_t total_rounds() {
    std::uint64_t t = 0;
    for (auto r : rounds_) t += r;
    return t;
  }
  void run(std::uint16_t port, int i) {
    std::size_t me;
    {
      std::lock_guard lock(mutex_);
      me = rounds_.size();
      rounds_.push_back(0);
    }
    fd c = connect_to(port);
    std::uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(i + 1);
    bytes out;
    while (!stop_) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      out.resize(1 + x % (128 << 10));
      for (auto& b : out) b = static_cast<char>(x = x * 6364136223846793005ull + 1, x >> 56);
      send_all(c.get(), out);
      if (recv_exact(c.get(), out.size()) != out) ++mismatches_;
      bytes_ += 2 * out.size();
      std::lock_guard lock(mutex_);
      ++rounds_[me];
    }
    shutdown_write(c.get());
    const stream_end end = recv_to_end(c.get());
    if (!end.data.empty() || end.reset)
      throw std::runtime_error("flow " + std::to_string(i) + ": " +
                               std::to_string(end.data.size()) + " stray bytes" +
                               (end.reset ? ", then a reset" : ""));
  }

  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::uint64_t> rounds_;
  std::atomic<std::uint64_t> bytes_{0}, mismatches_{0};
  thread_group threads_;
};

std::string endpoint(std::uint16_t port) {
  return "{ endpoints: [\"127.0.0.1:" + std::to_string(port) + "\"] }";
}

// One fault test's proxy: the binary with an admin listener and the listener `flow` in front of
// an echo backend, plus the test's own listeners (YAML list items; `fault` among them, if any)
// and upstreams (map entries).
struct proxy_under_test {
  proxy_under_test(const std::string& engine, const std::string& listeners,
                   const std::string& upstreams, unsigned threads = 2, rlim_t max_fds = 0)
      : zc(d,
           "threads: " + std::to_string(threads) +
               "\nlog: { level: info }\nrelay: { engine: " + engine +
               " }\nadmin: { bind: \"127.0.0.1:0\" }\n"
               "listeners:\n  - { name: flow, bind: \"127.0.0.1:0\", upstream: echo }\n" +
               listeners + "upstreams:\n  echo: " + endpoint(echo_backend.port()) + "\n" +
               upstreams,
           "flow", max_fds),
        admin(zc.port_of("admin")),
        fault(listeners.find("name: fault,") != std::string::npos ? zc.port_of("listener fault")
                                                                  : 0) {}

  // Connections closed on `listener` for `reason`, by the proxy's metrics.
  double closed(const std::string& listener, const std::string& reason) const {
    const auto m = scrape_metrics(admin);
    const auto it = m.find(R"(zcproxy_listener_connections_closed_total{listener=")" + listener +
                           R"(",reason=")" + reason + R"("})");
    return it == m.end() ? 0 : it->second;
  }

  // The flows (stopped) went through intact, and the proxy ends well: no session left, a clean
  // exit on SIGTERM, nothing critical logged.
  void finish(flows& f) {
    CHECK(f.all_advance());
    f.stop();
    f.check();
    CHECK(
        wait_until([&] { return scrape_metrics(admin).at("zcproxy_connections_active{}") == 0; }));
    REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
    CHECK(zc.proc.wait() == 0);
    CHECK_THAT(zc.log(), !Catch::Contains("[critical]"));
  }

  upstream_server echo_backend{echo};
  temp_dir d;
  running_proxy zc;
  std::uint16_t admin, fault;
};

// A new connection to `port` echoes 64 KiB and ends cleanly; false, not a throw, when not.
bool served(std::uint16_t port) {
  try {
    fd c = connect_to(port);
    const bytes b = random_bytes(64 << 10, port);
    send_all(c.get(), b);
    shutdown_write(c.get());
    const stream_end end = recv_to_end(c.get());
    return end.data == b && !end.reset;
  } catch (const std::exception&) {
    return false;
  }
}

std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  REQUIRE(n > 0);
  return std::string(buf, static_cast<std::size_t>(n));
}

const char* pick_engine() {
  return GENERATE(as<const char*>{}, "splice", "copy");
}

}  // namespace

TEST_CASE("faults: an upstream that resets mid-stream ends its own connections, as resets",
          "[faults]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  upstream_server resetter([](fd s) {
    recv_exact(s.get(), 32 << 10);
    close_with_reset(s);
  });
  proxy_under_test p(engine, "  - { name: fault, bind: \"127.0.0.1:0\", upstream: resetter }\n",
                     "  resetter: " + endpoint(resetter.port()) + "\n");
  flows f(p.zc.port, 6);
  constexpr int n = 10;
  thread_group clients;
  std::atomic<int> reset{0}, late{0};
  for (int i = 0; i < n; ++i)
    clients.spawn([&, i] {
      fd c = connect_to(p.fault);
      // 64 KiB (the socket buffers take it all, so no send meets the reset and consumes the
      // error the kernel reports once); the upstream resets after half of it.
      send_all(c.get(), random_bytes(64 << 10, i));
      // recv_to_end tells ECONNRESET from EOF. At once: well within 2 s, no timeout in play.
      const auto t0 = clock_type::now();
      if (recv_to_end(c.get()).reset) ++reset;
      if (clock_type::now() - t0 > 2s) ++late;
    });
  clients.join();
  CHECK(clients.errors().empty());
  CHECK(reset == n);
  CHECK(late == 0);
  CHECK(p.closed("fault", "reset") == n);
  p.finish(f);
}

TEST_CASE("faults: a client that resets mid-stream frees its upstream connection at once",
          "[faults]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  // An echo that tells how its connection ended: a reset (ECONNRESET, or EPIPE on a write once
  // the reset was read) or a FIN (EOF: the clean end a reset must not turn into).
  std::atomic<int> ended{0}, ended_by_reset{0};
  upstream_server victim([&](fd s) {
    std::vector<char> buf(64 << 10);
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0 && ::send(s.get(), buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) == n)
        continue;
      if (n != 0 && (errno == ECONNRESET || errno == EPIPE)) ++ended_by_reset;
      break;
    }
    ++ended;
  });
  proxy_under_test p(engine, "  - { name: fault, bind: \"127.0.0.1:0\", upstream: victim }\n",
                     "  victim: " + endpoint(victim.port()) + "\n");
  flows f(p.zc.port, 6);
  constexpr int n = 10;
  for (int i = 0; i < n; ++i) {
    fd c = connect_to(p.fault);
    send_all(c.get(), random_bytes(256 << 10, i));
    recv_exact(c.get(), 1000);  // the echo is flowing back, most of it unread
    close_with_reset(c);
    // At once: the proxy passes the reset on as it sees it, well within 2 s; the only timeout in
    // play (idle_timeout, 10 min by default) is never what ends it.
    CHECK(wait_until([&] { return ended == i + 1; }, 2s));
  }
  CHECK(ended_by_reset == n);  // a reset, not a FIN
  CHECK(wait_until([&] { return p.closed("fault", "reset") == n; }, 2s));
  CHECK(p.closed("fault", "idle_timeout") == 0);
  p.finish(f);
}

TEST_CASE(
    "faults: an upstream that stops reading blocks its client's writes, and the proxy's "
    "memory stays bounded",
    "[faults][backpressure]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  holder hold;
  upstream_server stalled(hold.handler());
  const holder release_before_join = hold;
  proxy_under_test p(engine, "  - { name: fault, bind: \"127.0.0.1:0\", upstream: stalled }\n",
                     "  stalled: " + endpoint(stalled.port()) + "\n");
  flows f(p.zc.port, 6);
  const std::size_t rss_before = rss_kib(p.zc.proc.pid);

  // Four clients write as fast as they can into the stalled upstream, until the proxy's receive
  // window closes and stays closed: it pushes back. What each got in is what the kernel holds on
  // the two hops plus one 1 MiB stage in the proxy, far from "everything". The kernel's share is
  // at most the largest send and receive buffers of both hops (tcp_wmem, tcp_rmem: autotuning on
  // a loaded machine grows them that far; 41.6 MB went in once, against 4 + 32 MiB here).
  constexpr int n = 4;
  constexpr std::size_t limit = 256 << 20;
  auto largest = [](const char* sysctl) {
    std::istringstream in(slurp(std::string("/proc/sys/net/ipv4/") + sysctl));
    std::size_t min = 0, def = 0, max = 0;
    in >> min >> def >> max;
    return max;
  };
  const std::size_t held_at_most = 2 * (largest("tcp_wmem") + largest("tcp_rmem")) + (1u << 20);
  REQUIRE(held_at_most < limit / 2);  // else this machine's buffers leave nothing to show
  const bytes chunk = random_bytes(64 << 10, 7);
  std::vector<fd> clients;
  std::size_t sent_total = 0, sent_max = 0;
  for (int i = 0; i < n; ++i) {
    clients.push_back(connect_to(p.fault));
    const std::size_t sent = write_until_pushed_back(clients.back().get(), chunk, limit);
    sent_total += sent;
    sent_max = std::max(sent_max, sent);
  }
  CHECK(f.all_advance());  // the stalled ones hold up nobody else
  const std::size_t rss_stalled = rss_kib(p.zc.proc.pid);
  std::cout << "faults: backpressure (" << engine << "): " << n << " clients blocked after "
            << (sent_max >> 10) << " KiB at most; proxy RSS " << rss_before << " -> " << rss_stalled
            << " KiB\n";
  CHECK(sent_max <= held_at_most);  // blocked, well short of the 256 MiB it tried
  // Memory: one leased stage per stalled connection (1 MiB) and slack; nothing grows with what
  // the clients try to write.
#ifndef ZCPROXY_SANITIZED
  CHECK(rss_stalled <= rss_before + n * 1024 + 16 * 1024);
#else
  WARN(
      "RSS bound not checked: a sanitizer's quarantine holds freed memory (the normal build "
      "checks it)");
#endif

  hold.release();  // the upstream reads again: everything the clients got in arrives
  for (auto& c : clients) shutdown_write(c.get());
  CHECK(wait_until([&] { return hold.read() == sent_total; }));
  for (auto& c : clients) CHECK(recv_all(c.get()).empty());
  p.finish(f);
}

TEST_CASE("faults: an upstream that accepts and never reads or writes is closed at idle_timeout",
          "[faults][timeout]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  holder hold;
  upstream_server silent(hold.handler());
  const holder release_before_join = hold;
  proxy_under_test p(
      engine, "  - { name: fault, bind: \"127.0.0.1:0\", upstream: silent, idle_timeout: 1s }\n",
      "  silent: " + endpoint(silent.port()) + "\n");
  flows f(p.zc.port, 6);
  constexpr int n = 5;
  const auto t0 = clock_type::now();
  std::vector<fd> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(connect_to(p.fault));
    send_all(clients.back().get(), "hello?", 6);
  }
  for (auto& c : clients) CHECK(recv_all(c.get()).empty());  // closed, nothing came back
  const auto waited = clock_type::now() - t0;
  CHECK(waited >= 900ms);
  CHECK(waited < 5s);
  CHECK(p.closed("fault", "idle_timeout") == n);
  hold.release();
  p.finish(f);  // the flows (idle_timeout 10m, always busy) were not touched
}

TEST_CASE("faults: the backend process is killed and restarted", "[faults][restart]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  temp_dir d;
  const std::uint16_t backend_port = dead_port();
  auto start_backend = [&] {
    auto b = std::make_unique<process>(
        self_path(), std::vector<std::string>{"--echo-backend", std::to_string(backend_port)},
        "/dev/null", d.file("backend.out"), d.file("backend.err"));
    REQUIRE(wait_until([&] { return can_connect(backend_port); }));
    return b;
  };
  auto backend = start_backend();
  proxy_under_test p(engine, "  - { name: fault, bind: \"127.0.0.1:0\", upstream: backend }\n",
                     "  backend: " + endpoint(backend_port) + "\n");
  flows f(p.zc.port, 6);
  auto round_trip = [&](fd& c, std::uint32_t seed) {
    const bytes b = random_bytes(64 << 10, seed);
    send_all(c.get(), b);
    return recv_exact(c.get(), b.size()) == b;
  };
  // Connections to the backend, mid-conversation when it dies.
  std::vector<fd> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(connect_to(p.fault));
    CHECK(round_trip(open.back(), i));
  }
  REQUIRE(::kill(backend->pid, SIGKILL) == 0);
  CHECK(backend->wait() == 128 + SIGKILL);
  // Each ends (a reset, or the FIN the kernel sent for the dead process), none hangs.
  const auto t0 = clock_type::now();
  for (auto& c : open) CHECK(recv_to_end(c.get()).data.empty());
  CHECK(clock_type::now() - t0 < 5s);
  open.clear();  // a FIN leaves the client's side open: the client closes it
  // While it is down, a new client is turned away at once: the connect is refused (not timed
  // out), and the client is reset.
  {
    const double failed = p.closed("fault", "connect_failed");
    fd c = connect_to(p.fault);
    const stream_end e = recv_to_end(c.get());
    CHECK(e.data.empty());
    CHECK(e.reset);  // as a direct connect to the dead backend would be: refused, not closed
    CHECK(wait_until([&] { return p.closed("fault", "connect_failed") == failed + 1; }));
    CHECK(p.closed("fault", "connect_timeout") == 0);
  }
  CHECK(f.all_advance());
  // Restarted on its port: served again.
  backend = start_backend();
  CHECK(wait_until([&] { return served(p.fault); }));
  p.finish(f);
}

TEST_CASE(
    "faults: out of fds, the proxy logs and backs off, its open connections flow on, and "
    "it recovers",
    "[faults][emfile]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  // 128 fds: room for the flows (2 sockets each, and pipes while bytes are in flight), far
  // from room for the idle clients below. Those wait on a listener that holds each with one fd
  // (its PROXY header never comes, within 60 s), so the fds run out at accept(2), whatever the
  // count the proxy itself holds (a client that made it take 2 could free them again: accepted,
  // then refused for want of an fd for its upstream).
  proxy_under_test p(engine,
                     "  - { name: idle, bind: \"127.0.0.1:0\", upstream: echo, accept_proxy: true,"
                     " proxy_timeout: 60s }\n",
                     "", 1, 128);
  flows f(p.zc.port, 4);
  const std::uint16_t idle_port = p.zc.port_of("listener idle");
  std::vector<fd> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(connect_to(idle_port));
  REQUIRE(wait_until(
      [&] { return p.zc.log().find("accept failed: Too many open files") != std::string::npos; }));
  CHECK(f.all_advance());  // out of fds, the open connections still move
  idle.clear();            // fds free up as those sessions end
  // Served again. While the queued clients are worked off, a new one may meet EMFILE on its
  // upstream socket, so it may try again.
  CHECK(wait_until([&] { return served(p.zc.port); }));
  p.finish(f);
}

TEST_CASE(
    "faults: slowloris clients on a PROXY-protocol and an SNI listener are closed at their "
    "timeouts",
    "[faults][timeout]") {
  const char* engine = pick_engine();
  INFO("engine: " << engine);
  proxy_under_test p(engine,
                     "  - { name: pp, bind: \"127.0.0.1:0\", upstream: echo, accept_proxy: true, "
                     "proxy_timeout: 500ms }\n"
                     "  - { name: tls, bind: \"127.0.0.1:0\", routes: [{default: echo}], "
                     "sni_timeout: 500ms }\n",
                     "");
  const auto pp = p.zc.port_of("listener pp"), tls = p.zc.port_of("listener tls");
  flows f(p.zc.port, 6);
  const auto t0 = clock_type::now();
  std::vector<fd> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(connect_to(pp));
    send_all(slow.back().get(), "PROXY TCP4 ", 11);  // half a header, then nothing
    slow.push_back(connect_to(tls));
    send_all(slow.back().get(), "\x16\x03\x01\x02\x00\x01", 6);  // the start of a ClientHello
  }
  for (auto& c : slow) CHECK(recv_to_end(c.get()).data.empty());
  const auto waited = clock_type::now() - t0;
  CHECK(waited >= 450ms);
  CHECK(waited < 5s);
  CHECK(p.closed("pp", "proxy_header") == 20);
  CHECK(p.closed("tls", "sni_timeout") == 20);
  p.finish(f);
}

TEST_CASE(
    "faults: a bad config on reload is refused with its error, and the old config serves "
    "on",
    "[faults][reload]") {
  proxy_under_test p("auto", "", "");
  flows f(p.zc.port, 4);
  const std::string good = slurp(p.zc.config);
  std::uint16_t taken = 0;
  const fd in_use = listen_loopback(taken);
  const std::string valid_tail =
      "listeners:\n  - { name: flow, bind: \"127.0.0.1:0\", upstream: "
      "echo }\nupstreams:\n  echo: { endpoints: [\"127.0.0.1:1\"] }\n";
  struct bad_case {
    const char* what;
    std::string text;  // the file's new contents; empty: the file is removed
    std::string error;
  };
  const std::vector<bad_case> cases{
      {"a syntax error", "listeners: [\n", "(yaml): syntax error"},
      {"yaml-cpp's LoadAll loop", ",\n", "(yaml): a second document starts here"},
      {"binary junk", std::string("\x00\xff\xfe\x01\x80 :\n", 8), "zcproxy.yaml:1:"},
      {"an empty file", " ", "listeners: required key is missing"},
      {"an unknown key", "colour: red\n" + valid_tail, "colour: unknown key"},
      {"a bad size", "relay: { pipe_size: lots }\n" + valid_tail, "relay.pipe_size: expected"},
      {"an unknown upstream",
       "listeners:\n  - { name: flow, bind: \"127.0.0.1:0\", upstream: nope }\nupstreams:\n  "
       "echo: { endpoints: [\"127.0.0.1:1\"] }\n",
       "listeners[0].upstream: no upstream named \"nope\""},
      {"a listener on a port in use", good + "",
       "cannot listen on 127.0.0.1:" + std::to_string(taken)},
      {"a missing file", "", "cannot read: No such file or directory"},
  };
  auto refusals = [&] {
    const std::string log = p.zc.log();
    std::size_t n = 0;
    for (auto at = log.find("reload refused"); at != std::string::npos;
         at = log.find("reload refused", at + 1))
      ++n;
    return n;
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    INFO("reload with " << c.what);
    std::string text = c.text;
    if (std::string(c.what) == "a listener on a port in use") {
      // The running config plus a second listener on a port the test holds.
      const auto at = text.find("upstreams:");
      text.insert(at, "  - { name: taken, bind: \"127.0.0.1:" + std::to_string(taken) +
                          "\", upstream: echo }\n");
    }
    if (text.empty())
      std::remove(p.zc.config.c_str());
    else
      std::ofstream(p.zc.config, std::ios::binary | std::ios::trunc) << text;
    REQUIRE(::kill(p.zc.proc.pid, SIGHUP) == 0);
    REQUIRE(wait_until([&] { return refusals() == i + 1; }));
    CHECK_THAT(p.zc.log(), Catch::Contains(c.error));
    CHECK(served(p.zc.port));  // the old config, unchanged
  }
  // And the good file again is applied.
  std::ofstream(p.zc.config, std::ios::trunc) << good;
  REQUIRE(::kill(p.zc.proc.pid, SIGHUP) == 0);
  CHECK(wait_until([&] { return p.zc.log().find("reload: done") != std::string::npos; }));
  CHECK(refusals() == cases.size());
  CHECK(served(p.zc.port));
  p.finish(f);
}

int main(int argc, char** argv) {
  // The backend that the restart test kills: an echo server on 127.0.0.1:PORT, in a process of
  // its own, until it is killed.
  if (argc == 3 && std::strcmp(argv[1], "--echo-backend") == 0) {
    upstream_server s(echo, 512, static_cast<std::uint16_t>(std::stoi(argv[2])));
    for (;;) ::pause();
  }
  return Catch::Session().run(argc, argv);
}
