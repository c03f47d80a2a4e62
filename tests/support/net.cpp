#include "support/net.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

namespace test {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

void set_timeouts(int s) {
  timeval tv{};
  tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(io_timeout).count();
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

}  // namespace

fd& fd::operator=(fd&& o) noexcept {
  if (this != &o) {
    close();
    v_ = o.release();
  }
  return *this;
}

int fd::release() {
  return std::exchange(v_, -1);
}

void fd::close() {
  if (v_ >= 0) ::close(v_);
  v_ = -1;
}

fd listen_loopback(std::uint16_t& port, int backlog) {
  return listen_on("127.0.0.1", port, backlog);
}

fd listen_on(const std::string& ip, std::uint16_t& port, int backlog) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    throw std::runtime_error("listen_on: not an IP literal: " + ip);
  }
  fd s(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  const int one = 1;  // a backend restarted on its old port must not wait out TIME_WAIT
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    fail("bind " + ip + ":" + std::to_string(port));
  if (::listen(s.get(), backlog) != 0) fail("listen");
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  return s;
}

std::uint16_t dead_port() {
  // A port closed again at once can be handed out by the next bind to port 0: a proxy's own
  // listener then answers on the "dead" port (a mirror to it looped back into the proxy). So the
  // port stays bound, not listening, for the life of the process: a SYN to it is answered with
  // a reset, no bind to port 0 picks it, and SO_REUSEADDR lets a test start a backend there.
  static std::mutex m;
  static std::vector<fd> reserved;
  fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  const int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = loopback(0);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("bind");
  socklen_t len = sizeof sa;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  std::lock_guard lock(m);
  reserved.push_back(std::move(s));
  return ntohs(sa.sin_port);
}

fd connect_to(std::uint16_t port) {
  fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  set_timeouts(s.get());
  sockaddr_in sa = loopback(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    fail("connect to port " + std::to_string(port));
  int one = 1;
  ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

namespace {
sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) fail("unix socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}
}  // namespace

fd listen_unix(const std::string& path, int backlog) {
  fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  sockaddr_un sa = unix_address(path);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("bind " + path);
  if (::listen(s.get(), backlog) != 0) fail("listen");
  return s;
}

fd connect_unix(const std::string& path) {
  fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  set_timeouts(s.get());
  sockaddr_un sa = unix_address(path);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    fail("connect to " + path);
  return s;
}

fd start_connect(std::uint16_t port) {
  fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  sockaddr_in sa = loopback(port);
  ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);  // EINPROGRESS
  return s;
}

bool can_connect(std::uint16_t port) {
  fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  sockaddr_in sa = loopback(port);
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

fd connect_from(const char* from, std::uint16_t port) {
  fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  set_timeouts(s.get());
  sockaddr_in sa = loopback(0);
  if (::inet_pton(AF_INET, from, &sa.sin_addr) != 1) fail("inet_pton");
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("bind");
  sa = loopback(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("connect");
  return s;
}

void send_all(int s, const char* data, std::size_t n) {
  while (n > 0) {
    ssize_t m = ::send(s, data, n, MSG_NOSIGNAL);
    if (m < 0 && errno == EINTR) continue;
    if (m <= 0) fail("send");
    data += m;
    n -= static_cast<std::size_t>(m);
  }
}

bytes recv_all(int s) {
  return recv_to_end(s).data;
}

stream_end recv_to_end(int s) {
  stream_end out;
  char buf[1 << 16];
  for (;;) {
    ssize_t m = ::recv(s, buf, sizeof buf, 0);
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) fail("recv (timed out)");
    if (m < 0) {
      // ECONNRESET, or EPIPE for a reset that came after a FIN: not a clean end either way.
      out.reset = true;
      return out;
    }
    if (m == 0) return out;
    out.data.insert(out.data.end(), buf, buf + m);
  }
}

bytes recv_exact(int s, std::size_t n) {
  bytes out(n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t m = ::recv(s, out.data() + got, n - got, 0);
    if (m < 0 && errno == EINTR) continue;
    if (m == 0)
      throw std::runtime_error("recv: EOF after " + std::to_string(got) + " of " +
                               std::to_string(n) + " bytes");
    if (m < 0) fail("recv");
    got += static_cast<std::size_t>(m);
  }
  return out;
}

void shutdown_write(int s) {
  if (::shutdown(s, SHUT_WR) != 0) fail("shutdown");
}

void close_with_reset(fd& s) {
  linger l{1, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  s.close();
}

std::size_t write_until_pushed_back(int s, const bytes& chunk, std::size_t limit,
                                    std::chrono::milliseconds settle) {
  using clock = std::chrono::steady_clock;
  std::size_t sent = 0;
  std::optional<clock::time_point> closed_since;  // zero window, nothing going in
  while (sent < limit) {
    const ssize_t n =
        ::send(s, chunk.data(), std::min(chunk.size(), limit - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      closed_since.reset();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) fail("send");
    // A kernel that does not tell the window (before 6.2): a send that blocks is all there is.
    if (peer_window(s).value_or(0) != 0) {
      closed_since.reset();
    } else if (!closed_since) {
      closed_since = clock::now();
    } else if (clock::now() - *closed_since >= settle) {
      return sent;
    }
    pollfd p{s, POLLOUT, 0};
    ::poll(&p, 1, 20);  // room again, or look at the window again
  }
  return sent;
}

bytes random_bytes(std::size_t n, std::uint32_t seed) {
  bytes out(n);
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; i += 4) {
    std::uint32_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<std::size_t>(4, n - i));
  }
  return out;
}

std::uint64_t checksum(const bytes& b) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : b) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

std::size_t count_open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) fail("opendir /proc/self/fd");
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory stream's own fd
}

bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > end) return ready();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

void thread_group::spawn(std::function<void()> f) {
  threads_.emplace_back([this, f = std::move(f)] {
    try {
      f();
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      errors_.push_back(e.what());
    }
  });
}

void thread_group::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::vector<std::string> thread_group::errors() {
  join();
  std::lock_guard lock(mutex_);
  return errors_;
}

upstream_server::upstream_server(std::function<void(fd)> handler, int backlog, std::uint16_t port)
    : port_(port), listener_(listen_loopback(port_, backlog)) {
  run(std::move(handler));
}

upstream_server::upstream_server(std::function<void(fd)> handler, const std::string& path)
    : listener_(listen_unix(path)) {
  run(std::move(handler));
}

upstream_server::upstream_server(std::function<void(fd)> handler, const std::string& ip,
                                 std::uint16_t port)
    : port_(port), listener_(listen_on(ip, port_)) {
  run(std::move(handler));
}

void upstream_server::run(std::function<void(fd)> handler) {
  acceptor_ = std::thread([this, handler = std::move(handler)] {
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;  // wakes regularly to see stop_
      fd s(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!s) continue;
      set_timeouts(s.get());
      ++accepted_;
      handlers_.spawn(
          [handler, s = std::make_shared<fd>(std::move(s))] { handler(std::move(*s)); });
    }
  });
}

std::function<void(fd)> echo_handler() {
  return [](fd s) {
    char buf[64 << 10];
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
  };
}

bool ping(std::uint16_t port) {
  try {
    fd c = connect_to(port);
    send_all(c.get(), "x", 1);
    shutdown_write(c.get());
    return recv_all(c.get()) == bytes{'x'};
  } catch (const std::exception&) {  // reset
    return false;
  }
}

bytes echo_through(int s, const bytes& data, const std::function<void()>& meanwhile) {
  auto echoed = std::async(std::launch::async, [&] { return recv_exact(s, data.size()); });
  auto sent = std::async(std::launch::async, [&] { send_all(s, data); });
  meanwhile();
  sent.get();
  return echoed.get();
}

int upstream_server::accepted_settled() {
  const int before = accepted_;
  fd marker = connect_to(port_);
  if (!wait_until([&] { return accepted_ > before; }))
    throw std::runtime_error("the test's own connection was never accepted");
  return accepted_ - 1;
}

std::vector<std::string> upstream_server::stop_and_collect_errors() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  return handlers_.errors();
}

upstream_server::~upstream_server() {
  stop_and_collect_errors();
}

proxy::proxy(const std::string& relay, std::vector<std::uint16_t> endpoints,
             const std::string& extra, unsigned threads) {
  std::string eps;
  for (auto p : endpoints)
    eps += (eps.empty() ? "" : ", ") + ("\"127.0.0.1:" + std::to_string(p) + "\"");
  std::string yaml = "threads: " + std::to_string(threads) +
                     "\nlog: { level: warn, access_log: false }\n"
                     "relay: { " +
                     relay +
                     " }\n"
                     "listeners:\n  - { name: test, bind: \"127.0.0.1:0\", upstream: app }\n"
                     "upstreams:\n  app:\n    endpoints: [" +
                     eps + "]\n    connect_timeout: 2s\n" + extra;
  cfg = zcproxy::load_config_string(yaml, "test.yaml");
  control = std::make_unique<zcproxy::control_plane>(cfg);
  srv = &control->runtime();
  control->start();
}

proxy::proxy(zcproxy::config c) : cfg(std::move(c)) {
  control = std::make_unique<zcproxy::control_plane>(cfg);
  srv = &control->runtime();
  control->start();
}

void proxy::wait_sessions(std::size_t open) const {
  if (!wait_until([&] { return srv->snapshot().sessions == open; }))
    throw std::runtime_error(
        "the proxy's sessions did not end: " + std::to_string(srv->snapshot().sessions) +
        " open, not " + std::to_string(open));
}

std::uint64_t proxy::closed(std::string_view reason, std::size_t listener) const {
  for (zcproxy::close_reason r : zcproxy::close_reasons)
    if (zcproxy::to_string(r) == reason) return srv->snapshot().listeners.at(listener).closed[r];
  throw std::invalid_argument("no close reason is called " + std::string(reason));
}

proxy::~proxy() {
  srv->shutdown(true);
  control->wait();
}

}  // namespace test
