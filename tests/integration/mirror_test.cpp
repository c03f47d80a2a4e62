// mirror: a sampled share of a listener's connections also sends every client byte to a shadow
// upstream (tee(2) from the relay's pipe on splice; from the buffer on copy), which never slows,
// stalls or breaks the primary.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <mutex>

#include "control/metrics.hpp"
#include "support/net.hpp"

using namespace test;

namespace {

struct engine_case {
  const char* name;
  const char* relay;
};
const engine_case engines[] = {{"splice", "engine: splice"}, {"copy", "engine: copy"}};

const engine_case& pick_engine() {
  return engines[GENERATE(0, 1)];
}

// A backend that reads each connection to its end and records what it got; then replies "ok".
struct recorder {
  std::mutex mutex;
  std::vector<bytes> streams;
  std::size_t count() {
    std::lock_guard lock(mutex);
    return streams.size();
  }
  std::function<void(fd)> handler() {
    return [this](fd s) {
      bytes got = recv_all(s.get());
      send_all(s.get(), "ok", 2);
      std::lock_guard lock(mutex);
      streams.push_back(std::move(got));
    };
  }
};

// The listener `web` in front of `primary`, mirrored to `shadow` for `sample` of connections.
zcproxy::config mirror_config(const engine_case& e, std::uint16_t primary, std::uint16_t shadow,
                              const std::string& sample = "1", const std::string& extra = "") {
  return zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { " + std::string(e.relay) +
      " }\nlisteners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app, mirror: { "
      "upstream: shadow, sample: " +
      sample + extra +
      " } }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:" + std::to_string(primary) +
      "\"] }\n  shadow: { endpoints: [\"127.0.0.1:" + std::to_string(shadow) +
      "\"], connect_timeout: 1s }\n");
}

// Send `data` through the proxy, half-close, and read the primary's reply.
bytes through(std::uint16_t port, const bytes& data) {
  fd c = connect_to(port);
  thread_group t;
  t.spawn([&] {
    send_all(c.get(), data);
    shutdown_write(c.get());
  });
  bytes reply = recv_all(c.get());
  t.join();
  if (!t.errors().empty()) throw std::runtime_error(t.errors().front());
  return reply;
}

std::uint64_t mirrors(zcproxy::server& srv, std::string_view result) {
  const auto& r = zcproxy::mirror_result_names;
  const auto i = static_cast<std::size_t>(std::find(r.begin(), r.end(), result) - r.begin());
  return srv.snapshot().listeners.at(0).mirrors.at(i);
}

}  // namespace

TEST_CASE("mirror: 64 MiB from the client reach the primary and the shadow byte for byte",
          "[mirror][integration]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  recorder primary, shadow;
  upstream_server p_up(primary.handler()), s_up(shadow.handler());
  // A lag as large as the stream: on this shared 2-core machine a shadow thread can be kept off
  // the CPU for longer than the default 8 MiB takes at loopback speed (milliseconds).
  proxy p(mirror_config(e, p_up.port(), s_up.port(), "1", ", max_lag: 64MiB"));
  const bytes data = random_bytes(64 << 20, 17);
  CHECK(through(p.port(), data) == bytes{'o', 'k'});
  REQUIRE(wait_until([&] { return shadow.count() == 1; }));
  REQUIRE(primary.count() == 1);
  CHECK(primary.streams[0].size() == data.size());
  CHECK(checksum(primary.streams[0]) == checksum(data));
  CHECK(shadow.streams[0].size() == data.size());
  CHECK(checksum(shadow.streams[0]) == checksum(data));
  REQUIRE(wait_until([&] { return mirrors(*p.srv, "completed") == 1; }));
  const auto st = p.srv->snapshot().listeners.at(0);
  CHECK(st.mirror_bytes == data.size());
  if (std::string(e.name) == "splice") CHECK(st.copied == 0);  // teed, not copied
}

TEST_CASE(
    "mirror: a shadow that accepts and never reads stops its mirror, and the primary's 64 MiB "
    "complete intact",
    "[mirror][integration]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  recorder primary;
  std::promise<void> go;
  std::shared_future<void> released = go.get_future().share();
  upstream_server p_up(primary.handler());
  recorder shadow;  // what the shadow got, once it reads again: a prefix of the stream
  upstream_server s_up([released, &shadow](fd s) {
    released.wait();
    bytes got = recv_to_end(s.get()).data;  // the mirror closed it early: a reset may end it
    std::lock_guard lock(shadow.mutex);
    shadow.streams.push_back(std::move(got));
  });
  struct release_at_exit {
    std::promise<void>& p;
    bool done = false;
    ~release_at_exit() {
      if (!done) p.set_value();
    }
  } release{go};
  proxy p(mirror_config(e, p_up.port(), s_up.port()));
  const bytes data = random_bytes(64 << 20, 18);
  CHECK(through(p.port(), data) == bytes{'o', 'k'});
  REQUIRE(primary.count() == 1);
  CHECK(checksum(primary.streams[0]) == checksum(data));
  REQUIRE(wait_until([&] { return mirrors(*p.srv, "slow") == 1; }));
  CHECK(mirrors(*p.srv, "completed") == 0);
  CHECK(p.srv->snapshot().listeners.at(0).mirror_bytes < data.size());
  go.set_value();
  release.done = true;
  REQUIRE(wait_until([&] { return shadow.count() == 1; }));
  const bytes& got = shadow.streams[0];
  CHECK(got.size() < data.size());
  CHECK(std::equal(got.begin(), got.end(), data.begin()));  // an exact prefix
}

TEST_CASE(
    "mirror: a shadow that closes mid-stream stops its mirror with an exact prefix, and the "
    "primary's 64 MiB complete intact",
    "[mirror][integration]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  recorder primary, shadow;
  upstream_server p_up(primary.handler());
  upstream_server s_up([&shadow](fd s) {  // takes 1 MiB, then closes
    bytes got = recv_exact(s.get(), 1 << 20);
    std::lock_guard lock(shadow.mutex);
    shadow.streams.push_back(std::move(got));
  });
  proxy p(mirror_config(e, p_up.port(), s_up.port(), "1", ", max_lag: 64MiB"));
  const bytes data = random_bytes(64 << 20, 19);
  CHECK(through(p.port(), data) == bytes{'o', 'k'});
  REQUIRE(primary.count() == 1);
  CHECK(checksum(primary.streams[0]) == checksum(data));
  REQUIRE(wait_until([&] { return mirrors(*p.srv, "shadow_closed") == 1; }));
  REQUIRE(shadow.count() == 1);
  CHECK(std::equal(shadow.streams[0].begin(), shadow.streams[0].end(), data.begin()));
}

TEST_CASE("mirror: a shadow that is down leaves the primary untouched", "[mirror][integration]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  recorder primary;
  upstream_server p_up(primary.handler());
  proxy p(mirror_config(e, p_up.port(), dead_port()));
  for (int i = 0; i < 3; ++i) {
    const bytes data = random_bytes(4 << 20, 30 + i);
    CHECK(through(p.port(), data) == bytes{'o', 'k'});
  }
  REQUIRE(primary.count() == 3);
  REQUIRE(wait_until([&] { return mirrors(*p.srv, "connect_failed") == 3; }));
  CHECK(p.srv->snapshot().listeners.at(0).closed[zcproxy::close_reason::eof] == 3);
}

TEST_CASE("mirror: sample 0 mirrors no connection, sample 1 every one", "[mirror][integration]") {
  const engine_case& e = pick_engine();
  INFO("engine: " << e.name);
  const std::string sample = GENERATE(as<std::string>{}, "0", "1");
  INFO("sample: " << sample);
  recorder primary, shadow;
  upstream_server p_up(primary.handler()), s_up(shadow.handler());
  proxy p(mirror_config(e, p_up.port(), s_up.port(), sample));
  constexpr int n = 20;
  for (int i = 0; i < n; ++i) {
    const bytes data = random_bytes(1000 + i, 40 + i);
    CHECK(through(p.port(), data) == bytes{'o', 'k'});
  }
  REQUIRE(primary.count() == n);
  if (sample == "1") {
    REQUIRE(wait_until([&] { return mirrors(*p.srv, "completed") == n; }));
    REQUIRE(wait_until([&] { return shadow.count() == n; }));
    CHECK(s_up.accepted() == n);
  } else {
    p.wait_sessions();
    CHECK(s_up.accepted_settled() == 0);
    for (const auto result : zcproxy::mirror_result_names) CHECK(mirrors(*p.srv, result) == 0);
  }
}
