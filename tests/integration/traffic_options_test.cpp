// Options on the traffic path that no other test exercised, each on real loopback sockets:
// relay.buffer_size and relay.pipe_size (the bytes one read, write or splice may move), mirror
// sampling by a fraction, health checks that start with a v2 LOCAL PROXY header, an endpoint
// tried again once fail_timeout runs out, a Unix listener judging clients by their PROXY
// header's source, max_connections_per_ip with source_hash, and fallback_response after a
// connect timeout and after no_endpoint.

// The recv/send observers below define recv(2); glibc's fortified recv is an inline of its own
// that such a definition would clash with.
#undef _FORTIFY_SOURCE

#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "control/metrics.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "zcproxy/proxy_protocol.hpp"
#include "zcproxy/sys.hpp"

using namespace test;
using clock_type = std::chrono::steady_clock;

namespace {

// ---- What the relay's syscalls move, one call at a time ----
//
// The syscall seam (zcproxy::sys) carries splice(2), so a splice wrapper sees every splice the
// relay makes. The copy engine reads and writes through Asio, which calls recv(2) and send(2)
// for a single buffer; the seam has no slot for those, so this file defines recv and send for
// the test binary (passing every call on to the C library's) and, only while armed, records the
// calls made on the proxy's own relay sockets: the one accepted on the proxy's port and the one
// connected to the upstream's port. A test's own sockets never match (their ports are the other
// way round), and nothing is recorded while disarmed.
struct call_sizes {
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> bytes{0};    // moved, in total
  std::atomic<std::size_t> max_asked{0};  // the largest length asked for
  std::atomic<std::size_t> max_moved{0};  // the largest that one call moved
  void record(std::size_t asked, ssize_t moved) {
    ++calls;
    raise(max_asked, asked);
    if (moved > 0) {
      bytes += static_cast<std::uint64_t>(moved);
      raise(max_moved, static_cast<std::size_t>(moved));
    }
  }
  static void raise(std::atomic<std::size_t>& at, std::size_t v) {
    std::size_t seen = at.load();
    while (v > seen && !at.compare_exchange_weak(seen, v)) {
    }
  }
};

struct relay_socket_watch {
  std::atomic<bool> armed{false};
  std::atomic<std::uint16_t> proxy_port{0}, upstream_port{0};
  // The local port of the proxy's socket to the upstream, as the upstream saw it: that socket
  // has no peer for getpeername() once both sides have sent their FIN, and still holds bytes.
  std::atomic<std::uint16_t> upstream_side_port{0};
  call_sizes recvs, sends;
};
relay_socket_watch socket_watch;

std::uint16_t inet_port(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0 || ss.ss_family != AF_INET) return 0;
  return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
}

// One of the proxy's two relay sockets: accepted on its listener, or connected to the upstream.
bool is_relay_socket(int fd) {
  const std::uint16_t local = inet_port(fd, false), peer = inet_port(fd, true);
  if (local == socket_watch.proxy_port.load()) return true;
  if (peer == socket_watch.upstream_port.load()) return true;
  return peer == 0 && local != 0 && local == socket_watch.upstream_side_port.load();
}

void observe(call_sizes& into, int fd, std::size_t asked, ssize_t moved) {
  if (!socket_watch.armed.load()) return;
  const int saved = errno;  // the caller reads errno after us (EAGAIN above all)
  if (is_relay_socket(fd)) into.record(asked, moved);
  errno = saved;
}

// Every splice the relay makes, with the size of the pipe on its other end (F_GETPIPE_SZ, the
// size the kernel really granted).
struct splice_watch {
  call_sizes fills;   // socket -> pipe
  call_sizes drains;  // pipe -> socket
  std::atomic<std::size_t> min_pipe{~std::size_t{0}}, max_pipe{0};
  std::atomic<std::uint64_t> over_pipe{0};  // calls that asked for or moved more than the pipe
};
splice_watch splices;

ssize_t watching_splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len,
                        unsigned flags) {
  const ssize_t r = ::splice(in, off_in, out, off_out, len, flags);
  const int saved = errno;
  const int out_pipe = ::fcntl(out, F_GETPIPE_SZ);
  const int pipe_size = out_pipe > 0 ? out_pipe : ::fcntl(in, F_GETPIPE_SZ);
  if (pipe_size > 0) {
    const auto size = static_cast<std::size_t>(pipe_size);
    (out_pipe > 0 ? splices.fills : splices.drains).record(len, r);
    call_sizes::raise(splices.max_pipe, size);
    std::size_t seen = splices.min_pipe.load();
    while (size < seen && !splices.min_pipe.compare_exchange_weak(seen, size)) {
    }
    if (len > size || (r > 0 && static_cast<std::size_t>(r) > size)) ++splices.over_pipe;
  }
  errno = saved;
  return r;
}

// Installs the splice wrapper and resets every count; construct before the proxy (the seam may
// change only while no server runs) and let it go after.
struct watching {
  watching() {
    for (call_sizes* c :
         {&socket_watch.recvs, &socket_watch.sends, &splices.fills, &splices.drains}) {
      c->calls = 0;
      c->bytes = 0;
      c->max_asked = 0;
      c->max_moved = 0;
    }
    splices.min_pipe = ~std::size_t{0};
    splices.max_pipe = 0;
    splices.over_pipe = 0;
    zcproxy::sys::splice = watching_splice;
  }
  void arm(std::uint16_t proxy_port, std::uint16_t upstream_port) {
    socket_watch.proxy_port = proxy_port;
    socket_watch.upstream_port = upstream_port;
    socket_watch.upstream_side_port = 0;
    socket_watch.armed = true;
  }
  ~watching() {
    socket_watch.armed = false;
    zcproxy::sys::splice = ::splice;
  }
};

// What a pipe of this process gets when it asks F_SETPIPE_SZ for `size`: the most the proxy's
// pipes can have (root may exceed pipe-max-size; a user over its pipe quota gets less).
std::size_t pipe_granted(std::size_t size) {
  int fds[2];
  if (::pipe(fds) != 0) return 0;
  ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size));
  const int got = ::fcntl(fds[1], F_GETPIPE_SZ);
  ::close(fds[0]);
  ::close(fds[1]);
  return got > 0 ? static_cast<std::size_t>(got) : 0;
}

// ---- Backends and configs ----

void echo(fd s) {
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    send_all(s.get(), buf, static_cast<std::size_t>(n));
  }
}

// A backend that sends its name on accept, then echoes until EOF.
struct named_backend {
  explicit named_backend(std::string name, std::uint16_t port = 0)
      : server(
            [name](fd s) {
              send_all(s.get(), name.data(), name.size());
              echo(std::move(s));
            },
            512, port) {}
  std::uint16_t port() const { return server.port(); }
  upstream_server server;
};

std::string ip_endpoint(std::uint16_t port) {
  return "\"127.0.0.1:" + std::to_string(port) + "\"";
}

// The backend name (one byte) a client connection reaches, read from `s`.
std::string name_on(int s) {
  const bytes b = recv_exact(s, 1);
  return {b.begin(), b.end()};
}

std::string reached(std::uint16_t port) {
  fd c = connect_to(port);
  return name_on(c.get());
}

bool echoes(int s) {
  send_all(s, "ping", 4);
  const bytes got = recv_exact(s, 4);
  return std::string(got.begin(), got.end()) == "ping";
}

// Refused: the stream ends at once with no byte, by a reset. (Waiting 10 s, not the sockets'
// usual 60: a client served instead should fail the test soon.)
bool refused(int s) {
  const timeval limit{10, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  const stream_end e = recv_to_end(s);
  return e.data.empty() && e.reset;
}

zcproxy::endpoint_stats endpoint_at(zcproxy::server& srv, std::uint16_t port) {
  for (const auto& e : srv.snapshot().endpoints)
    if (!e.at.local && e.at.port == port) return e;
  throw std::runtime_error("no endpoint on port " + std::to_string(port));
}

std::uint64_t mirrors(zcproxy::server& srv, std::string_view result) {
  const auto& r = zcproxy::mirror_result_names;
  const auto i = static_cast<std::size_t>(std::find(r.begin(), r.end(), result) - r.begin());
  return srv.snapshot().listeners.at(0).mirrors.at(i);
}

std::uint64_t mirrors_ended(zcproxy::server& srv) {
  std::uint64_t n = 0;
  for (const auto result : zcproxy::mirror_result_names) n += mirrors(srv, result);
  return n;
}

// The access log's lines (text format) for the listener `name`.
std::vector<std::string> access_lines(const std::string& path, const std::string& name) {
  std::vector<std::string> out;
  const std::string text = slurp(path);
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end == std::string::npos ? end : end - at);
    if (line.find(" listener=" + name + " ") != std::string::npos) out.push_back(line);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

}  // namespace

// Both definitions pass every call on unchanged; see relay_socket_watch.
extern "C" ssize_t recv(int fd, void* buf, size_t n, int flags) {
  using recv_fn = ssize_t (*)(int, void*, size_t, int);
  static const auto real = reinterpret_cast<recv_fn>(::dlsym(RTLD_NEXT, "recv"));
  const ssize_t r = real(fd, buf, n, flags);
  if (!(flags & MSG_PEEK)) observe(socket_watch.recvs, fd, n, r);
  return r;
}

// The copy engine's waits read with recvmsg (drained_read.hpp: the count of bytes left comes as a
// control message).
extern "C" ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  using recvmsg_fn = ssize_t (*)(int, msghdr*, int);
  static const auto real = reinterpret_cast<recvmsg_fn>(::dlsym(RTLD_NEXT, "recvmsg"));
  const ssize_t r = real(fd, msg, flags);
  std::size_t n = 0;
  for (std::size_t i = 0; i < msg->msg_iovlen; ++i) n += msg->msg_iov[i].iov_len;
  if (!(flags & MSG_PEEK)) observe(socket_watch.recvs, fd, n, r);
  return r;
}

extern "C" ssize_t send(int fd, const void* buf, size_t n, int flags) {
  using send_fn = ssize_t (*)(int, const void*, size_t, int);
  static const auto real = reinterpret_cast<send_fn>(::dlsym(RTLD_NEXT, "send"));
  const ssize_t r = real(fd, buf, n, flags);
  observe(socket_watch.sends, fd, n, r);
  return r;
}

TEST_CASE(
    "options: relay.buffer_size bounds each copy read and write, relay.pipe_size each "
    "splice",
    "[options][integration][relay]") {
  const std::string engine = GENERATE("splice", "copy");
  const bool small = GENERATE(true, false);
  const bool splice = engine == "splice";
  // The stage under test: the pipe for splice, the buffer for copy; 1 MiB is both defaults.
  const std::size_t stage = small ? (splice ? 64u << 10 : 16u << 10) : 1u << 20;
  const std::string key = splice ? "pipe_size" : "buffer_size";
  INFO("engine " << engine << ", " << key << " " << stage);

  const bytes up_data = random_bytes(8 << 20, 1), down_data = random_bytes(8 << 20, 2);
  std::uint64_t upstream_got = 0;
  upstream_server up([&](fd s) {
    socket_watch.upstream_side_port = inet_port(s.get(), true);
    upstream_got = checksum(recv_all(s.get()));
    send_all(s.get(), down_data);
  });
  watching watch;
  {
    proxy p("engine: " + engine + ", " + key + ": " + std::to_string(stage), {up.port()});
    watch.arm(p.port(), up.port());
    fd c = connect_to(p.port());
    send_all(c.get(), up_data);
    shutdown_write(c.get());
    CHECK(checksum(recv_all(c.get())) == checksum(down_data));
    p.wait_sessions();
  }
  CHECK(upstream_got == checksum(up_data));
  const std::uint64_t total = up_data.size() + down_data.size();

  if (splice) {
    const auto& fills = splices.fills;
    const std::size_t granted = pipe_granted(stage);
    INFO("splices into pipes: " << fills.calls << ", largest asked " << fills.max_asked
                                << ", largest moved " << fills.max_moved << "; pipes "
                                << splices.min_pipe << ".." << splices.max_pipe
                                << " bytes; this process is granted " << granted);
    REQUIRE(fills.bytes == total);  // every byte went through the watched splices
    CHECK(splices.drains.bytes == total);
    CHECK(socket_watch.recvs.calls + socket_watch.sends.calls == 0);  // nothing copied
    // The bound: no splice asked for or moved more than its pipe holds, and every pipe is the
    // size the kernel grants for pipe_size (F_SETPIPE_SZ rounds up to a power of two of pages).
    CHECK(splices.over_pipe == 0);
    CHECK(splices.min_pipe == granted);
    CHECK(splices.max_pipe == granted);
    CHECK(fills.max_moved <= granted);
    if (small) {
      CHECK(granted == stage);  // 64 KiB is a power of two of pages: exact
    } else if (granted > (64u << 10)) {
      // The larger pipe is used: single splices move more than a default 64 KiB pipe could.
      CHECK(fills.max_moved > (64u << 10));
    } else {
      WARN("the kernel granted only " << granted << " bytes for a 1 MiB pipe");
    }
  } else {
    const auto& r = socket_watch.recvs;
    const auto& w = socket_watch.sends;
    INFO("relay reads: " << r.calls << ", largest asked " << r.max_asked << ", largest moved "
                         << r.max_moved << "; writes: " << w.calls << ", largest asked "
                         << w.max_asked << ", largest moved " << w.max_moved);
    REQUIRE(r.bytes == total);  // every byte went through the watched reads and writes
    CHECK(w.bytes == total);
    CHECK(splices.fills.calls + splices.drains.calls == 0);  // nothing spliced
    CHECK(r.max_asked <= stage);
    CHECK(w.max_asked <= stage);
    CHECK(r.max_moved <= stage);
    CHECK(w.max_moved <= stage);
    // Reads fill the buffer whole (8 MiB queue up behind each one): buffer_size is what each
    // read moves, not merely an upper bound never reached.
    if (small)
      CHECK(r.max_moved == stage);
    else
      CHECK(r.max_moved > (16u << 10));
  }
}

TEST_CASE("options: mirror.sample 0.5 mirrors a binomial share of 200 connections",
          "[options][integration][mirror]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  constexpr int n = 200;
  constexpr double sample = 0.5;
  std::atomic<int> primary_streams{0};
  upstream_server primary([&](fd s) {
    recv_all(s.get());
    send_all(s.get(), "ok", 2);
    ++primary_streams;
  });
  std::mutex m;
  std::vector<bytes> shadow_streams;
  upstream_server shadow([&](fd s) {
    bytes got = recv_all(s.get());
    if (got.empty()) return;  // accepted_settled()'s own connection, which sends nothing
    std::lock_guard lock(m);
    shadow_streams.push_back(std::move(got));
  });
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app, mirror: { "
          "upstream: shadow, sample: 0.5 } }\nupstreams:\n  app: { endpoints: [" +
          ip_endpoint(primary.port()) + "] }\n  shadow: { endpoints: [" +
          ip_endpoint(shadow.port()) + "] }\n",
      "mirror.yaml"));
  const bytes data = random_bytes(1000, 3);
  for (int i = 0; i < n; ++i) {
    fd c = connect_to(p.port());
    send_all(c.get(), data);
    shutdown_write(c.get());
    CHECK(recv_all(c.get()) == bytes{'o', 'k'});
  }
  p.wait_sessions();
  // A mirror's connect is made (SYN sent, so queued for accept) before its connection ends:
  // once every session has ended, the shadow's accept count is the number mirrored.
  const int mirrored = shadow.accepted_settled();
  // Each of those ends in exactly one mirror result, and brings the shadow every byte.
  REQUIRE(
      wait_until([&] { return mirrors_ended(*p.srv) == static_cast<std::uint64_t>(mirrored); }));
  CHECK(mirrors(*p.srv, "completed") == static_cast<std::uint64_t>(mirrored));
  REQUIRE(wait_until([&] {
    std::lock_guard lock(m);
    return shadow_streams.size() == static_cast<std::size_t>(mirrored);
  }));
  {
    std::lock_guard lock(m);
    for (const auto& got : shadow_streams) CHECK(checksum(got) == checksum(data));
  }
  CHECK(primary_streams == n);
  // Binomial(200, 0.5): mean 100, sigma 7.07; outside 6 sigma has odds of about 2e-9.
  const double mean = n * sample, sigma = std::sqrt(n * sample * (1 - sample));
  INFO("mirrored " << mirrored << " of " << n);
  CHECK(std::abs(mirrored - mean) <= 6 * sigma);
  CHECK(mirrored > 0);
  CHECK(mirrored < n);
}

TEST_CASE(
    "options: health_check.send_proxy with send_proxy v2 starts each check with a v2 "
    "LOCAL header",
    "[options][integration][health][proxy_protocol]") {
  // The v2 signature, then version 2 / LOCAL (0x20), family UNSPEC (0x00), length 0.
  const std::string local_header =
      std::string("\r\n\r\n\0\r\nQUIT\n", 12) + std::string("\x20\x00\x00\x00", 4);
  REQUIRE(zcproxy::proxy_protocol::encode_v2_local() == local_header);
  // A backend that requires the header: the LOCAL header and PING get PONG, anything else NOPE.
  // `nope_first` connections get NOPE whatever they send, so the endpoint starts out down and
  // only passing checks can bring it back.
  struct requiring_backend {
    explicit requiring_backend(int nope_first)
        : server([this, nope_first](fd s) {
            std::string got(20, '\0');
            const ssize_t n = ::recv(s.get(), got.data(), got.size(), MSG_WAITALL);
            got.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
            int index;
            {
              std::lock_guard lock(mutex);
              index = static_cast<int>(firsts.size());
              firsts.push_back(got);
            }
            const bool pass = index >= nope_first &&
                              got == std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00PING", 20);
            ::send(s.get(), pass ? "PONG" : "NOPE", 4, MSG_NOSIGNAL);
          }) {}
    std::vector<std::string> seen() {
      std::lock_guard lock(mutex);
      return firsts;
    }
    std::mutex mutex;
    std::vector<std::string> firsts;  // the first 20 bytes of each connection
    upstream_server server;
  };
  // fall 3: one check that a loaded machine makes slow does not take an endpoint out.
  requiring_backend with(3), without(0);
  const std::string check =
      "interval: 250ms, timeout: 250ms, rise: 2, fall: 3, send: PING, "
      "expect: PONG";
  proxy p(zcproxy::load_config_string(
      "threads: 1\nlog: { level: warn, access_log: false }\n"
      "listeners:\n"
      "  - { name: a, bind: \"127.0.0.1:0\", upstream: with }\n"
      "  - { name: b, bind: \"127.0.0.1:0\", upstream: without }\n"
      "upstreams:\n"
      "  with: { endpoints: [" +
          ip_endpoint(with.server.port()) + "], send_proxy: v2, health_check: { " + check +
          ", send_proxy: true } }\n"
          "  without: { endpoints: [" +
          ip_endpoint(without.server.port()) + "], send_proxy: v2, health_check: { " + check +
          " } }\n",
      "hc.yaml"));
  // The first checks of `with` fail (NOPE): down. Then the header makes them pass: up again.
  REQUIRE(wait_until([&] { return !endpoint_at(*p.srv, with.server.port()).healthy; }, 20s));
  REQUIRE(wait_until([&] { return endpoint_at(*p.srv, with.server.port()).healthy; }, 20s));
  // The same checks without the header (send_proxy: v2 on the upstream alone) never pass.
  REQUIRE(wait_until([&] { return !endpoint_at(*p.srv, without.server.port()).healthy; }, 20s));
  // And through more rounds `with` stays up.
  const std::size_t before = with.seen().size();
  REQUIRE(wait_until([&] { return with.seen().size() >= before + 3; }, 20s));
  CHECK(endpoint_at(*p.srv, with.server.port()).healthy);
  for (const auto& got : with.seen()) CHECK(got == local_header + "PING");
  for (const auto& got : without.seen()) CHECK(got == "PING");
}

TEST_CASE(
    "options: once fail_timeout runs out the ejected endpoint is tried again, and used "
    "when it is up",
    "[options][integration][passive]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  constexpr auto fail_timeout = 2s;  // long enough for a loaded machine to connect within it
  const std::uint16_t a_port = dead_port();  // `a`: refused until a backend starts there
  named_backend b("b");
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n  - { name: l, bind: \"127.0.0.1:0\", upstream: app }\n"
          "upstreams:\n  app:\n    endpoints: [" +
          ip_endpoint(a_port) + ", " + ip_endpoint(b.port()) +
          "]\n    connect_timeout: 2s\n    max_fails: 1\n    fail_timeout: 2s\n",
      "passive.yaml"));
  auto a = [&] { return endpoint_at(*p.srv, a_port); };

  // Round-robin gives `a` its turn within two connections: it is refused (the client still
  // reaches b) and, with max_fails 1, ejected.
  auto until_a_tried = [&](std::uint64_t failures) {
    clock_type::time_point before = clock_type::now();
    for (int i = 0; i < 2 && a().connect_failures < failures; ++i) {
      before = clock_type::now();
      CHECK(reached(p.port()) == "b");
    }
    REQUIRE(a().connect_failures == failures);
    return before;  // the failure, and so the ejection, came after this
  };
  // Connections that end within fail_timeout of the failure skip `a`: no new failure.
  auto skipped_while_ejected = [&](clock_type::time_point failed_after, std::uint64_t failures) {
    int within = 0;
    while (within < 4) {
      const std::string got = reached(p.port());
      if (clock_type::now() >= failed_after + fail_timeout) break;
      CHECK(got == "b");
      ++within;
    }
    CHECK(within >= 1);
    CHECK(a().connect_failures == failures);
  };

  auto t0 = until_a_tried(1);
  skipped_while_ejected(t0, 1);
  // fail_timeout runs out: usable again, though still down.
  REQUIRE(wait_until([&] { return a().usable; }, 10s));
  CHECK(clock_type::now() - t0 >= fail_timeout);
  // One connection tries it again; it is still refused, so it is ejected again at once.
  auto t1 = until_a_tried(2);
  skipped_while_ejected(t1, 2);

  // Up again; once the second ejection runs out a connection is served by it.
  named_backend a_up("a", a_port);
  REQUIRE(wait_until([&] { return a().usable; }, 10s));
  std::multiset<std::string> got;
  for (int i = 0; i < 2; ++i) got.insert(reached(p.port()));
  CHECK(got.count("a") == 1);  // round-robin over both again
  CHECK(got.count("b") == 1);
  CHECK(a().connect_failures == 2);
  CHECK(a().connections == 1);
}

TEST_CASE(
    "options: a Unix listener with accept_proxy judges allow and deny by the PROXY "
    "header's source, and refuses a client without one",
    "[options][integration][unix][proxy_protocol][acl]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  temp_dir d;
  const std::string sock = d.file("in.sock");
  upstream_server up(echo);
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n  - { name: u, bind: \"unix:" + sock +
          "\", upstream: app, accept_proxy: true, proxy_timeout: 5s, allow: "
          "[\"192.0.2.0/24\"], deny: [\"192.0.2.66\"] }\n"
          "upstreams:\n  app: { endpoints: [" +
          ip_endpoint(up.port()) + "] }\n",
      "unix.yaml"));
  using zcproxy::proxy_protocol::encode_v1;
  using zcproxy::proxy_protocol::encode_v2;
  const zcproxy::address to{"203.0.113.1", 443, false};
  // A header, then bytes behind it in the same write: a refused client has unread bytes, so its
  // close comes as a reset (ECONNRESET), as the refusal of a TCP client does.
  auto with_header = [&](const std::string& header) {
    fd c = connect_unix(sock);
    const std::string first = header + "ping";
    send_all(c.get(), first.data(), first.size());
    return c;
  };
  auto served = [](fd& c) {
    const bytes got = recv_exact(c.get(), 4);  // the "ping" behind the header, echoed
    return std::string(got.begin(), got.end()) == "ping" && echoes(c.get());
  };

  fd in_v1 = with_header(encode_v1({"192.0.2.10", 1000, false}, to));
  CHECK(served(in_v1));
  fd in_v2 = with_header(encode_v2({"192.0.2.11", 1001, false}, to));
  CHECK(served(in_v2));
  fd denied = with_header(encode_v1({"192.0.2.66", 1002, false}, to));
  CHECK(refused(denied.get()));
  fd not_allowed = with_header(encode_v2({"198.51.100.7", 1003, false}, to));
  CHECK(refused(not_allowed.get()));
  // A LOCAL header says no source: such a client cannot be shown to be in allow.
  fd local = with_header(zcproxy::proxy_protocol::encode_v2_local());
  CHECK(refused(local.get()));
  fd bare = connect_unix(sock);
  send_all(bare.get(), "GET / HTTP/1.1\r\n\r\n", 18);
  CHECK(refused(bare.get()));

  p.wait_sessions(2);  // the two let in are still open
  CHECK(p.closed("denied") == 3);
  CHECK(p.closed("proxy_header") == 1);
  CHECK(up.accepted_settled() == 2);  // no refused client was connected upstream
}

TEST_CASE(
    "options: max_connections_per_ip with balance source_hash limits each client address "
    "on its own and keeps it on one endpoint",
    "[options][integration][limits][balance]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  named_backend a("a"), b("b"), c("c");
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\nlisteners:\n  - { name: l, bind: \"127.0.0.1:0\", upstream: app, "
          "max_connections_per_ip: 2 }\nupstreams:\n  app: { balance: source_hash, endpoints: [" +
          ip_endpoint(a.port()) + ", " + ip_endpoint(b.port()) + ", " + ip_endpoint(c.port()) +
          "] }\n",
      "per_ip.yaml"));
  std::size_t open = 0;  // connections let in and still open
  // Two connections from `from` are let in, on one endpoint (returned); the third is refused.
  std::vector<fd> held;
  auto fill = [&](const std::string& from) {
    fd first = connect_from(from.c_str(), p.port());
    const std::string at = name_on(first.get());
    fd second = connect_from(from.c_str(), p.port());
    CHECK(name_on(second.get()) == at);
    CHECK(echoes(first.get()));
    CHECK(echoes(second.get()));
    fd third = connect_from(from.c_str(), p.port());
    CHECK(refused(third.get()));
    held.push_back(std::move(first));
    held.push_back(std::move(second));
    open += 2;
    return at;
  };

  const std::string home = fill("127.0.0.2");
  // Other addresses, counted on their own although 127.0.0.2 is at its limit: one that
  // source_hash puts on the same endpoint (a per-endpoint count would refuse it) and one on
  // another. Each is first probed by one connection, closed again.
  std::string same_host, other_host;
  for (int host = 3; host < 60 && (same_host.empty() || other_host.empty()); ++host) {
    const std::string from = "127.0.0." + std::to_string(host);
    std::string at;
    {
      fd probe = connect_from(from.c_str(), p.port());
      at = name_on(probe.get());
    }
    p.wait_sessions(open);
    std::string& slot = at == home ? same_host : other_host;
    if (slot.empty()) slot = from;
  }
  REQUIRE_FALSE(same_host.empty());
  REQUIRE_FALSE(other_host.empty());
  CHECK(fill(same_host) == home);
  CHECK(fill(other_host) != home);
  p.wait_sessions(open);
  CHECK(p.closed("limit") == 3);

  // One of 127.0.0.2's connections ends: it may have one more, on the same endpoint as before.
  held.front().close();
  p.wait_sessions(--open);
  fd again = connect_from("127.0.0.2", p.port());
  CHECK(name_on(again.get()) == home);
  fd over = connect_from("127.0.0.2", p.port());
  CHECK(refused(over.get()));
  p.wait_sessions(open + 1);
  CHECK(p.closed("limit") == 4);
  // Every connection let in was connected upstream, and no refused one.
  const int connected =
      a.server.accepted_settled() + b.server.accepted_settled() + c.server.accepted_settled();
  CHECK(p.srv->snapshot().listeners.at(0).accepted == static_cast<std::uint64_t>(connected) + 4);
}

TEST_CASE(
    "options: fallback_response after a connect timeout and after no_endpoint sends the "
    "file, then a FIN, and logs close=fallback",
    "[options][integration][fallback]") {
  temp_dir d;
  const std::string response =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 8\r\nConnection: close\r\n\r\nno "
      "way\r\n";
  d.file("503.http", response);
  const std::string access = d.file("access.log");
  blackhole hole;  // connects hang: only connect_timeout ends them
  const std::uint16_t down1 = dead_port(), down2 = dead_port();
  const std::string yaml =
      "threads: 2\nlog: { level: warn, access_log: true, access_file: \"" + access +
      "\" }\nlisteners:\n"
      "  - { name: slow, bind: \"127.0.0.1:0\", upstream: hole, fallback_response: 503.http }\n"
      "  - { name: gone, bind: \"127.0.0.1:0\", upstream: down, fallback_response: 503.http }\n"
      "upstreams:\n"
      "  hole: { endpoints: [" +
      ip_endpoint(hole.port) +
      "], connect_timeout: 300ms }\n"
      "  down:\n    endpoints: [" +
      ip_endpoint(down1) + ", " + ip_endpoint(down2) +
      "]\n    connect_timeout: 10s\n"
      "    health_check: { interval: 50ms, timeout: 50ms, rise: 1, fall: 1 }\n";
  proxy p(zcproxy::load_config_string(yaml, d.file("zcproxy.yaml", yaml)));
  const std::uint16_t slow_port = p.srv->listening().at(0).port;
  const std::uint16_t gone_port = p.srv->listening().at(1).port;
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  auto fetch = [&](std::uint16_t port) {
    fd c = connect_to(port);
    send_all(c.get(), request.data(), request.size());
    return recv_to_end(c.get());
  };

  SECTION("connect_timeout") {
    const auto t0 = clock_type::now();
    const stream_end got = fetch(slow_port);
    const auto waited = clock_type::now() - t0;
    CHECK(std::string(got.data.begin(), got.data.end()) == response);
    CHECK_FALSE(got.reset);  // a clean end of stream, not a reset
    CHECK(waited >= 250ms);  // the connect attempt ran into connect_timeout first
    p.wait_sessions();
    CHECK(p.closed("fallback", 0) == 1);
    CHECK(p.closed("connect_timeout", 0) == 0);
    CHECK(endpoint_at(*p.srv, hole.port).connect_failures == 1);
    REQUIRE(wait_until([&] { return !access_lines(access, "slow").empty(); }));
    const auto lines = access_lines(access, "slow");
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("endpoint=- bytes_up=0 bytes_down=" +
                                         std::to_string(response.size())) &&
                             Catch::EndsWith(" close=fallback"));
  }
  SECTION("no_endpoint") {
    REQUIRE(wait_until(
        [&] { return !endpoint_at(*p.srv, down1).healthy && !endpoint_at(*p.srv, down2).healthy; },
        20s));
    const auto t0 = clock_type::now();
    const stream_end got = fetch(gone_port);
    const auto waited = clock_type::now() - t0;
    CHECK(std::string(got.data.begin(), got.data.end()) == response);
    CHECK_FALSE(got.reset);
    CHECK(waited < 5s);  // nothing was tried: no connect_timeout (10s) was waited out
    p.wait_sessions();
    CHECK(p.closed("fallback", 1) == 1);
    CHECK(p.closed("no_endpoint", 1) == 0);
    for (auto port : {down1, down2}) CHECK(endpoint_at(*p.srv, port).connect_failures == 0);
    REQUIRE(wait_until([&] { return !access_lines(access, "gone").empty(); }));
    const auto lines = access_lines(access, "gone");
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("upstream=down endpoint=- bytes_up=0 bytes_down=" +
                                         std::to_string(response.size())) &&
                             Catch::EndsWith(" close=fallback"));
  }
}
