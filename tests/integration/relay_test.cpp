// The relay, on each engine: splice, copy, auto with splice refused (EINVAL) through the syscall
// seam, which must switch to copy without losing or duplicating a byte, and adaptive, which on
// loopback must choose copy.
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <fstream>
#include <future>

#include "support/net.hpp"
#include "zcproxy/sys.hpp"

using namespace test;

namespace {

struct engine_case {
  const char* name;
  const char* relay;   // config relay map contents
  bool refuse_splice;  // make splice fail with EINVAL, as a kernel that cannot splice would
};

const engine_case engines[] = {
    {"splice", "engine: splice", false},
    {"copy", "engine: copy", false},
    {"auto, splice refused", "engine: auto", true},
    {"adaptive, on loopback: copy", "engine: adaptive", false},
};

// While alive, splice(2) fails with EINVAL. Construct before the proxy, destroy after it.
struct splice_refusal {
  explicit splice_refusal(bool on) : on_(on) {
    if (on_)
      zcproxy::sys::splice = [](int, loff_t*, int, loff_t*, size_t, unsigned) -> ssize_t {
        errno = EINVAL;
        return -1;
      };
  }
  ~splice_refusal() { zcproxy::sys::splice = ::splice; }
  bool on_;
};

const engine_case& pick_engine() {
  return engines[GENERATE(0, 1, 2, 3)];
}

void require_no_errors(thread_group& t) {
  auto errors = t.errors();
  if (!errors.empty()) throw std::runtime_error(errors.front());
}

// Once every session has closed: the bytes went through the engine the case asks for.
void check_engine_used(proxy& p, const engine_case& e, std::uint64_t total) {
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  auto st = p.srv->snapshot();
  INFO("engine " << e.name << ": spliced " << st.bytes_spliced << ", copied " << st.bytes_copied);
  CHECK(st.bytes_spliced + st.bytes_copied == total);
  if (std::string(e.relay) == "engine: splice")
    CHECK(st.bytes_copied == 0);
  else
    CHECK(st.bytes_spliced == 0);
  CHECK(st.pipes_leased == 0);
  CHECK(st.buffers_leased == 0);
}

std::size_t sysctl_max(const char* path) {
  std::ifstream f(path);
  std::size_t min = 0, def = 0, max = 0;
  f >> min >> def >> max;
  return max;
}

}  // namespace

TEST_CASE("relay: 64 MiB each way at the same time arrive intact", "[relay][splice][copy]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  const bytes up_data = random_bytes(64 << 20, 1), down_data = random_bytes(64 << 20, 2);
  std::uint64_t upstream_got = 0;
  upstream_server up([&](fd s) {
    thread_group t;
    t.spawn([&] {
      send_all(s.get(), down_data);
      shutdown_write(s.get());
    });
    upstream_got = checksum(recv_all(s.get()));
    require_no_errors(t);
  });
  std::uint64_t client_got = 0;
  {
    proxy p(e.relay, {up.port()});
    fd c = connect_to(p.port());
    thread_group t;
    t.spawn([&] {
      send_all(c.get(), up_data);
      shutdown_write(c.get());
    });
    client_got = checksum(recv_all(c.get()));
    CHECK(t.errors().empty());
    CHECK(up.stop_and_collect_errors().empty());
    check_engine_used(p, e, 128u << 20);
  }
  CHECK(client_got == checksum(down_data));
  CHECK(upstream_got == checksum(up_data));
}

TEST_CASE("relay: many small writes both ways arrive intact and in order",
          "[relay][splice][copy]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  // 20,000 writes of 1..97 bytes each way, every one its own segment (TCP_NODELAY).
  auto small_writes = [](int s, const bytes& data) {
    std::size_t off = 0;
    for (std::size_t i = 0; off < data.size(); ++i) {
      std::size_t n = std::min<std::size_t>(1 + (i * 31) % 97, data.size() - off);
      send_all(s, data.data() + off, n);
      off += n;
    }
    shutdown_write(s);
  };
  const bytes up_data = random_bytes(20000 * 49, 3), down_data = random_bytes(20000 * 49, 4);
  std::uint64_t upstream_got = 0;
  upstream_server up([&](fd s) {
    thread_group t;
    t.spawn([&] { small_writes(s.get(), down_data); });
    upstream_got = checksum(recv_all(s.get()));
    require_no_errors(t);
  });
  proxy p(e.relay, {up.port()});
  fd c = connect_to(p.port());
  thread_group t;
  t.spawn([&] { small_writes(c.get(), up_data); });
  CHECK(checksum(recv_all(c.get())) == checksum(down_data));
  CHECK(t.errors().empty());
  CHECK(up.stop_and_collect_errors().empty());
  CHECK(upstream_got == checksum(up_data));
  check_engine_used(p, e, up_data.size() + down_data.size());
}

TEST_CASE("relay: the client shuts its write side and still receives the whole response",
          "[relay][splice][copy][half-close]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  const bytes request = random_bytes(3 << 20, 5), response = random_bytes(5 << 20, 6);
  std::uint64_t upstream_got = 0;
  upstream_server up([&](fd s) {
    // Answer only once the request has ended: the FIN must have come through.
    upstream_got = checksum(recv_all(s.get()));
    send_all(s.get(), response);
  });
  proxy p(e.relay, {up.port()});
  fd c = connect_to(p.port());
  send_all(c.get(), request);
  shutdown_write(c.get());
  CHECK(checksum(recv_all(c.get())) == checksum(response));
  CHECK(up.stop_and_collect_errors().empty());
  CHECK(upstream_got == checksum(request));
  check_engine_used(p, e, request.size() + response.size());
}

TEST_CASE("relay: the upstream shuts its write side and still receives the rest of the request",
          "[relay][splice][copy][half-close]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  const bytes greeting = random_bytes(2 << 20, 7), request = random_bytes(4 << 20, 8);
  std::uint64_t upstream_got = 0;
  upstream_server up([&](fd s) {
    send_all(s.get(), greeting);
    shutdown_write(s.get());
    upstream_got = checksum(recv_all(s.get()));
  });
  proxy p(e.relay, {up.port()});
  fd c = connect_to(p.port());
  // The client sees the whole greeting and then EOF, and only then sends its request.
  CHECK(checksum(recv_all(c.get())) == checksum(greeting));
  send_all(c.get(), request);
  shutdown_write(c.get());
  CHECK(up.stop_and_collect_errors().empty());
  CHECK(upstream_got == checksum(request));
  check_engine_used(p, e, greeting.size() + request.size());
}

TEST_CASE("relay: an upstream reset ends that client's connection, others carry on",
          "[relay][splice][copy][reset]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  // The first byte a client sends picks the upstream's behaviour: 'R' resets after 64 KiB, 'E'
  // echoes until EOF.
  upstream_server up([&](fd s) {
    bytes mode = recv_exact(s.get(), 1);
    if (mode[0] == 'R') {
      recv_exact(s.get(), 64 << 10);
      close_with_reset(s);
      return;
    }
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
    shutdown_write(s.get());
  });
  proxy p(e.relay, {up.port()});

  fd steady = connect_to(p.port());  // open before the reset, used after it
  send_all(steady.get(), "E", 1);

  fd doomed = connect_to(p.port());
  thread_group t;
  t.spawn([&] {
    bytes data = random_bytes(8 << 20, 9);
    data[0] = 'R';
    send_all(doomed.get(), data);  // fails part-way once the proxy closes: expected
  });
  // The client sees its connection end (EOF or reset), well within the test's deadline.
  CHECK(recv_all(doomed.get()).empty());
  t.join();

  const bytes hello = random_bytes(1 << 20, 10);
  thread_group t2;
  t2.spawn([&] { send_all(steady.get(), hello); });
  CHECK(checksum(recv_exact(steady.get(), hello.size())) == checksum(hello));
  CHECK(t2.errors().empty());
  shutdown_write(steady.get());
  CHECK(recv_all(steady.get()).empty());

  fd later = connect_to(p.port());  // and new clients are served
  send_all(later.get(), "Eping", 5);
  CHECK(recv_exact(later.get(), 4) == bytes{'p', 'i', 'n', 'g'});
  later.close();
  steady.close();
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  CHECK(p.srv->snapshot().pipes_leased == 0);
}

TEST_CASE("relay: an upstream that reads slowly gets backpressure, not unbounded buffering",
          "[relay][splice][copy][backpressure]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  std::promise<void> start_reading;
  auto go = start_reading.get_future().share();
  std::size_t upstream_got = 0;
  upstream_server up([&](fd s) {
    go.wait();
    upstream_got = recv_all(s.get()).size();
  });
  proxy p(e.relay, {up.port()});
  fd c = connect_to(p.port());
  struct release_on_exit {  // the upstream never waits forever, even when a check fails
    std::promise<void>& p;
    bool released = false;
    void release() {
      if (!std::exchange(released, true)) p.set_value();
    }
    ~release_on_exit() { release(); }
  } release{start_reading};

  // What the kernel may hold across the two hops (socket buffers at their autotuning maxima)
  // plus one stage (pipe or buffer, 1 MiB) in the proxy, with slack. A proxy that buffered
  // without limit would take everything the client writes.
  const std::size_t bound = 2 * sysctl_max("/proc/sys/net/ipv4/tcp_rmem") +
                            2 * sysctl_max("/proc/sys/net/ipv4/tcp_wmem") + (4 << 20);
  const std::size_t limit = bound + (32 << 20);
  const bytes chunk = random_bytes(64 << 10, 11);
  // Until the proxy's receive window closes and stays closed: it reads no more.
  const std::size_t sent = write_until_pushed_back(c.get(), chunk, limit);
  INFO("client wrote " << sent << " bytes before blocking; bound " << bound);
  CHECK(sent < bound);
  auto st = p.srv->snapshot();
  CHECK(st.pipes_leased + st.buffers_leased <= 1);  // one stage for the one busy direction

  release.release();
  shutdown_write(c.get());
  CHECK(recv_all(c.get()).empty());
  CHECK(up.stop_and_collect_errors().empty());
  CHECK(upstream_got == sent);  // nothing lost once the upstream reads
}

TEST_CASE(
    "relay: engine splice on sockets that refuse splice closes the connection, copies nothing",
    "[relay][splice]") {
  splice_refusal refusal(true);
  upstream_server up([](fd s) { recv_all(s.get()); });
  proxy p("engine: splice", {up.port()});
  fd c = connect_to(p.port());
  send_all(c.get(), "data", 4);
  CHECK(recv_all(c.get()).empty());  // closed, not silently copied
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  auto st = p.srv->snapshot();
  CHECK(st.bytes_copied == 0);
  CHECK(st.bytes_spliced == 0);
}

TEST_CASE("relay: auto uses copy when the pipe pool is at its cap, and loses nothing",
          "[relay][splice][copy]") {
  // One pipe per thread: with three transfers at once on one thread, most directions find the
  // pool empty and must copy; every byte still arrives.
  upstream_server up([](fd s) {
    bytes got = recv_all(s.get());
    send_all(s.get(), got);
  });
  proxy p("engine: auto, max_pipes: 1", {up.port()}, "", 1);
  const std::size_t size = 8 << 20;
  thread_group t;
  std::atomic<int> intact{0};
  std::vector<fd> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_to(p.port()));
  for (int i = 0; i < 3; ++i) {
    t.spawn([&, i] {
      const bytes data = random_bytes(size, 100 + i);
      thread_group sender;
      sender.spawn([&] {
        send_all(clients[i].get(), data);
        shutdown_write(clients[i].get());
      });
      if (checksum(recv_all(clients[i].get())) == checksum(data)) ++intact;
      require_no_errors(sender);
    });
  }
  CHECK(t.errors().empty());
  CHECK(intact == 3);
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  auto st = p.srv->snapshot();
  CHECK(st.bytes_spliced + st.bytes_copied == 3 * 2 * size);
  CHECK(st.bytes_copied > 0);
  CHECK(st.pipes_leased == 0);
}

TEST_CASE("relay: an urgent (MSG_OOB) byte neither stalls the direction nor loses what follows",
          "[relay][splice][copy][oob]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  // Request and reply with no FIN behind the urgent byte (no new readiness edge comes), then
  // again with a FIN right behind it.
  bytes first, second;
  upstream_server up([&](fd s) {
    first = recv_exact(s.get(), 11);
    send_all(s.get(), "ok", 2);
    second = recv_all(s.get());
  });
  proxy p(e.relay, {up.port()});
  fd c = connect_to(p.port());
  auto send_with_urgent_byte = [&] {
    send_all(c.get(), "hello ", 6);
    REQUIRE(::send(c.get(), "!", 1, MSG_OOB) == 1);
    send_all(c.get(), "world", 5);
  };
  send_with_urgent_byte();
  CHECK(recv_exact(c.get(), 2) == bytes{'o', 'k'});
  send_with_urgent_byte();
  shutdown_write(c.get());
  CHECK(recv_all(c.get()).empty());
  CHECK(up.stop_and_collect_errors().empty());
  // Like a direct connection read without SO_OOBINLINE: the urgent byte is not in the stream.
  CHECK(std::string(first.begin(), first.end()) == "hello world");
  CHECK(std::string(second.begin(), second.end()) == "hello world");
}

TEST_CASE("relay: an early reply from an upstream that then resets still reaches the client",
          "[relay][splice][copy][reset]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  // Like an HTTP 413: the upstream reads the start of a large request, replies, and closes with
  // the rest unread (so its kernel resets). The reply must not be lost to the reset.
  const bytes reply = random_bytes(3000, 12);
  upstream_server up([&](fd s) {
    recv_exact(s.get(), 1000);
    send_all(s.get(), reply);
    s.close();
  });
  proxy p(e.relay, {up.port()});
  for (int i = 0; i < 10; ++i) {
    fd c = connect_to(p.port());
    thread_group t;
    t.spawn([&] { send_all(c.get(), random_bytes(8 << 20, 13)); });  // fails part-way: expected
    stream_end got = recv_to_end(c.get());
    CHECK(checksum(got.data) == checksum(reply));
    ::shutdown(c.get(), SHUT_RDWR);  // unblocks the sender if it still waits
    t.join();
  }
}

TEST_CASE("relay: an upstream reset reaches the client as a reset, not as a clean end",
          "[relay][splice][copy][reset]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  splice_refusal refusal(e.refuse_splice);
  const bytes part = random_bytes(100 << 10, 14);
  upstream_server up([&](fd s) {
    send_all(s.get(), part);
    close_with_reset(s);
  });
  proxy p(e.relay, {up.port()});
  fd c = connect_to(p.port());
  stream_end got = recv_to_end(c.get());
  // A cut-off download must not look complete: the client sees a reset.
  CHECK(got.reset);
  CHECK(got.data.size() <= part.size());
}

TEST_CASE("relay: 1,000 idle connections hold no pipe or buffer while they are open",
          "[relay][splice][copy][idle]") {
  const std::string engine = GENERATE("splice", "copy");
  INFO("engine " << engine);
  upstream_server up([](fd s) {
    char buf[256];
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
  });
  proxy p("engine: " + engine, {up.port()});
  constexpr std::size_t n = 1000;
  std::vector<fd> open;
  for (std::size_t i = 0; i < n; ++i) {
    open.push_back(connect_to(p.port()));
    // A round trip first: each direction has leased a stage once, and must have given it back.
    send_all(open.back().get(), "ping", 4);
    CHECK(recv_exact(open.back().get(), 4) == bytes{'p', 'i', 'n', 'g'});
  }
  // All 1,000 open and idle: no stage is held (pipes and buffers go back to the pools). The last
  // round trip's stage is given back just after its bytes reach the client (the relay's next
  // read meets EAGAIN), so the count is awaited, with every connection still open.
  zcproxy::server::stats st;
  CHECK(wait_until(
      [&] {
        st = p.srv->snapshot();
        return st.pipes_leased == 0 && st.buffers_leased == 0;
      },
      10s));
  INFO("pipes leased " << st.pipes_leased << ", idle " << st.pipes_idle << "; buffers leased "
                       << st.buffers_leased);
  CHECK(st.pipes_leased == 0);
  CHECK(st.buffers_leased == 0);
  CHECK(st.sessions == n);
  open.clear();
  p.wait_sessions();
  const auto after = p.srv->snapshot();  // and the bytes went by the engine asked for
  CHECK((engine == "splice" ? after.bytes_spliced : after.bytes_copied) == 2 * 4 * n);
}
