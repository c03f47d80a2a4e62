// Test support: blocking loopback sockets with deadlines, test upstream servers in threads, and a
// zcproxy server started in-process. Every socket gets SO_RCVTIMEO/SO_SNDTIMEO, so a test that
// would hang fails instead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "zcproxy/config.hpp"
#include "zcproxy/control_plane.hpp"
#include "zcproxy/server.hpp"

namespace test {

using namespace std::chrono_literals;
using bytes = std::vector<char>;

// Move-only fd owner.
class fd {
 public:
  fd() = default;
  explicit fd(int v) : v_(v) {}
  fd(fd&& o) noexcept : v_(o.release()) {}
  fd& operator=(fd&& o) noexcept;
  ~fd() { close(); }
  int get() const { return v_; }
  int release();
  void close();
  explicit operator bool() const { return v_ >= 0; }

 private:
  int v_ = -1;
};

constexpr auto io_timeout = 60s;

// A TCP listener on 127.0.0.1 at `port`, or at a port the kernel chooses when it is 0 (then set).
fd listen_loopback(std::uint16_t& port, int backlog = 512);
// A port on 127.0.0.1 with nothing listening (held bound for the life of the process, so no
// other listener gets it by chance): connects are refused until a test listens there itself.
std::uint16_t dead_port();
// Start a connect and return without waiting for it to complete.
fd start_connect(std::uint16_t port);
// Whether a connect to the port succeeds now.
bool can_connect(std::uint16_t port);
fd connect_to(std::uint16_t port);
// Connect to 127.0.0.1:port from the local address `from` (any 127.x.y.z: all of 127/8 is
// loopback), so a test can be several clients.
fd connect_from(const char* from, std::uint16_t port);

// A TCP listener on the IP literal `ip` (v4 or v6, e.g. 127.0.0.3 or ::1) at `port`, or at a
// port the kernel chooses when it is 0 (then set).
fd listen_on(const std::string& ip, std::uint16_t& port, int backlog = 512);

// A Unix domain stream socket listening at `path`, and a client connected to one.
fd listen_unix(const std::string& path, int backlog = 512);
fd connect_unix(const std::string& path);

void send_all(int s, const char* data, std::size_t n);
inline void send_all(int s, const bytes& b) {
  send_all(s, b.data(), b.size());
}
// Read until EOF (or an error, such as a reset, which ends the stream too).
bytes recv_all(int s);
bytes recv_exact(int s, std::size_t n);
// Read until the stream ends; says whether it ended with an error (a reset) rather than a FIN.
struct stream_end {
  bytes data;
  bool reset = false;
};
stream_end recv_to_end(int s);
void shutdown_write(int s);
// Close with RST instead of FIN.
void close_with_reset(fd& s);

// The receive window `s`'s peer advertises (nullopt where the kernel does not tell: before 6.2).
std::optional<std::uint32_t> peer_window(int s);
// Write `chunk` over and over on `s` without blocking until its peer pushes back, or `limit`
// bytes went in; returns the bytes written. Pushed back: a send would block and the peer has
// advertised a zero receive window (TCP_INFO's tcpi_snd_wnd: its receive buffer is full, it
// reads nothing), without a byte going in, for `settle` in a row. A slow reader reopens its
// window as it reads, so it is not taken for one that stopped.
std::size_t write_until_pushed_back(int s, const bytes& chunk, std::size_t limit,
                                    std::chrono::milliseconds settle = 1s);

bytes random_bytes(std::size_t n, std::uint32_t seed);
// FNV-1a over the bytes: compared instead of the bytes, so a failure does not print megabytes.
std::uint64_t checksum(const bytes& b);
std::size_t count_open_fds();
// Poll `ready` every few ms until it holds or the deadline passes; returns its last value.
bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds deadline = 30s);

// Threads a test starts: an exception in one is recorded (not fatal to the process), and all are
// joined before the group goes away.
class thread_group {
 public:
  void spawn(std::function<void()> f);
  void join();
  // What the threads threw, after join().
  std::vector<std::string> errors();
  ~thread_group() { join(); }

 private:
  std::mutex mutex_;
  std::vector<std::string> errors_;
  std::vector<std::thread> threads_;
};

// An upstream server: accepts connections on 127.0.0.1 and runs `handler` on each, in its own
// thread. Joins everything on destruction.
class upstream_server {
 public:
  // port 0: one the kernel chooses; another: that one (a backend restarted where it was).
  explicit upstream_server(std::function<void(fd)> handler, int backlog = 512,
                           std::uint16_t port = 0);
  // On a Unix domain socket at `path` instead (port() is 0).
  upstream_server(std::function<void(fd)> handler, const std::string& path);
  // On the IP literal `ip` (see listen_on); accepted_settled() is for 127.0.0.1 servers only.
  upstream_server(std::function<void(fd)> handler, const std::string& ip, std::uint16_t port);
  ~upstream_server();
  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  // Every connection made to it before this call, counted: a connect that completed waits in the
  // accept queue, and accepts are in order, so once a connection of this call's own is accepted
  // (and not counted) every earlier one is. For "nothing was connected" checks, once the proxy
  // has said its sessions ended. TCP servers only.
  int accepted_settled();
  // What handlers threw, after the server is stopped (call stop() first).
  std::vector<std::string> stop_and_collect_errors();

 private:
  void run(std::function<void(fd)> handler);

  std::uint16_t port_ = 0;
  fd listener_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  thread_group handlers_;
  std::thread acceptor_;
};

// A handler for upstream_server that echoes what it reads until EOF.
std::function<void(fd)> echo_handler();
// One short connection to 127.0.0.1:port: a byte there and back; false when it came back closed
// or reset without it (a proxy with no endpoint).
bool ping(std::uint16_t port);

// Send `data` on `s` (to an echo) while reading it back, and run `meanwhile` as it flows;
// returns what came back.
bytes echo_through(int s, const bytes& data, const std::function<void()>& meanwhile);

// A port on 127.0.0.1 whose connects hang (until connect_timeout): a listener with a full accept
// queue drops further SYNs.
struct blackhole {
  blackhole() : listener(listen_loopback(port, 0)) {
    for (int i = 0; i < 4; ++i) fillers.push_back(start_connect(port));
  }
  std::uint16_t port = 0;
  fd listener;
  std::vector<fd> fillers;
};

// A zcproxy server in this process, in front of `endpoints`.
struct proxy {
  // relay: the inside of the config's relay map, e.g. "engine: splice"; extra: top-level YAML.
  explicit proxy(const std::string& relay, std::vector<std::uint16_t> endpoints,
                 const std::string& extra = "", unsigned threads = 2);
  // Any config (see zcproxy::load_config_string).
  explicit proxy(zcproxy::config c);
  ~proxy();
  std::uint16_t port() const { return srv->listening().at(0).port; }
  // Wait (bounded) until only `open` sessions are left: the others have ended, so whatever they
  // connected upstream is connected (see upstream_server::accepted_settled). Throws on timeout.
  void wait_sessions(std::size_t open = 0) const;
  // Connections of the listener at `listener` (its place in the config) closed for `reason`.
  std::uint64_t closed(std::string_view reason, std::size_t listener = 0) const;
  zcproxy::config cfg;
  std::unique_ptr<zcproxy::control_plane> control;  // the server with admin and health checks
  zcproxy::server* srv = nullptr;                   // control->runtime()
};

}  // namespace test
