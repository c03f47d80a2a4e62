// endpoint_connection on real loopback sockets: a connect counts one connection and starts its
// endpoint, and its end (explicit or by destruction) ends it once, leaving the bytes counted
// through it as they were; a refused endpoint counts a failure and the next one is tried; a
// hanging connect is a timeout at its limit; max_fails failures eject an endpoint (and say so
// unless told not to); a stop ends the tries uncounted.
#include "zcproxy/endpoint_connection.hpp"

#include <spdlog/sinks/ostream_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/net.hpp"
#include "zcproxy/log.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using zcproxy::close_reason;
using zcproxy::endpoint_connect_options;
using zcproxy::endpoint_connection;
using zcproxy::outcome;
using zcproxy::stream_socket;
using zcproxy::upstream;
using namespace test;

namespace {

// An upstream of 127.0.0.1 endpoints at `ports` (weights `weights`, 1 each when empty), one
// worker.
std::unique_ptr<upstream> upstream_at(const std::vector<std::uint16_t>& ports,
                                      std::vector<unsigned> weights = {}, unsigned max_fails = 0) {
  zcproxy::upstream_config cfg;
  cfg.name = "app";
  cfg.max_fails = max_fails;
  cfg.fail_timeout = 60s;  // longer than any test: an ejected endpoint stays so
  for (std::size_t i = 0; i < ports.size(); ++i)
    cfg.endpoints.push_back({.at = *zcproxy::parse_address("127.0.0.1:" + std::to_string(ports[i])),
                             .weight = weights.empty() ? 1 : weights[i]});
  return std::make_unique<upstream>(std::move(cfg), 1);
}

// Runs c.connect on `socket` to its end (bounded); `stop_after`, when given, stops the caller
// that long after the start (as a session's stop: the flag set, the timer cancelled).
outcome<> connect(endpoint_connection& c, stream_socket& socket, endpoint_connect_options options,
                  std::optional<std::chrono::milliseconds> stop_after = std::nullopt) {
  asio::io_context& io = static_cast<asio::io_context&>(socket.get_executor().context());
  asio::steady_timer timer(io), stopper(io);
  bool stopping = false;
  options.timer = &timer;
  std::optional<outcome<>> out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        out = co_await c.connect(socket, options, [&] { return stopping; });
        stopper.cancel();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  if (stop_after) {
    stopper.expires_after(*stop_after);
    stopper.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      stopping = true;
      timer.cancel();
    });
  }
  io.restart();
  io.run_for(10s);
  REQUIRE(out);
  return std::move(*out);
}

// The main log's lines while it lives.
struct captured_log {
  captured_log() : sink(std::make_shared<spdlog::sinks::ostream_sink_st>(text)) {
    zcproxy::main_log().sinks().push_back(sink);
  }
  ~captured_log() { std::erase(zcproxy::main_log().sinks(), sink); }
  std::ostringstream text;
  spdlog::sink_ptr sink;
};

}  // namespace

TEST_CASE(
    "endpoint_connection: a connect counts one connection and starts its endpoint, and its end, "
    "once, ends it and the bytes stay as counted",
    "[endpoint_connection]") {
  std::uint16_t port = 0;
  const fd listener = listen_loopback(port);
  const auto up = upstream_at({port});
  asio::io_context io;
  stream_socket socket(io);
  auto c = std::make_optional<endpoint_connection>(*up, 0);
  const outcome<> r = connect(*c, socket, {.timeout = 2000ms});
  REQUIRE(r);
  CHECK(socket.is_open());
  REQUIRE(c->index() == 0u);
  CHECK(c->at().to_string() == "127.0.0.1:" + std::to_string(port));
  CHECK(up->counts(0).connections == 1);
  CHECK(up->counts(0).connect_failures == 0);
  CHECK(up->active(0) == 1);
  // Bytes go to the endpoint's slot for this worker, as they move.
  zcproxy::add_single_writer(c->meter().up, 5);
  zcproxy::add_single_writer(c->meter().down, 7);
  CHECK(up->counts(0).bytes_up == 5);
  CHECK(up->counts(0).bytes_down == 7);

  SECTION("an explicit end, then the destructor") {
    c->end();
    CHECK(up->active(0) == 0);
    c->end();
    CHECK(up->active(0) == 0);
    CHECK(c->index() == 0u);  // still known, for the access log
    c.reset();
  }
  SECTION("the destructor alone") {
    c.reset();
  }
  SECTION("moved: the connection goes with it, and is ended once") {
    endpoint_connection held;  // as a session holds one before its connect
    CHECK_FALSE(held.index());
    held = std::move(*c);
    CHECK_FALSE(c->index());
    c.reset();  // the moved-from one ends nothing
    CHECK(up->active(0) == 1);
    REQUIRE(held.index() == 0u);
    endpoint_connection other(std::move(held));
    CHECK(up->active(0) == 1);
    held = endpoint_connection(*up, 0);  // assigned over an empty one: nothing ends
    CHECK(up->active(0) == 1);
    other = endpoint_connection();  // assigned over a connected one: it ends, once
    CHECK(up->active(0) == 0);
    CHECK_FALSE(other.index());
  }
  SECTION("reset: ended and forgotten") {
    c->reset();
    CHECK(up->active(0) == 0);
    CHECK_FALSE(c->index());
    c.reset();
  }
  CHECK(up->active(0) == 0);
  CHECK(up->counts(0).connections == 1);
  CHECK(up->counts(0).bytes_up == 5);
  CHECK(up->counts(0).bytes_down == 7);
}

TEST_CASE("endpoint_connection: a refused endpoint counts a failure and the next one is tried",
          "[endpoint_connection]") {
  std::uint16_t live = 0;
  const fd listener = listen_loopback(live);
  // The dead one weighs more: round-robin's first turn is its.
  const auto up = upstream_at({dead_port(), live}, {2, 1});
  asio::io_context io;
  stream_socket socket(io);
  endpoint_connection c(*up, 0);
  const outcome<> r = connect(c, socket, {.timeout = 2000ms});
  REQUIRE(r);
  CHECK(c.index() == 1u);
  CHECK(up->counts(0).connect_failures == 1);
  CHECK(up->counts(0).connections == 0);
  CHECK(up->counts(1).connections == 1);
  CHECK(up->active(0) == 0);
  CHECK(up->active(1) == 1);
}

TEST_CASE(
    "endpoint_connection: when every attempt is refused it closes with connect_failed, saying "
    "what each met, and nothing is started",
    "[endpoint_connection]") {
  const std::uint16_t a = dead_port(), b = dead_port();
  const auto up = upstream_at({a, b});
  asio::io_context io;
  stream_socket socket(io);
  endpoint_connection c(*up, 0);
  const outcome<> r = connect(c, socket, {.timeout = 2000ms});
  REQUIRE_FALSE(r);
  CHECK(r.reason() == close_reason::connect_failed);
  // Both, in the order tried, "; " between them.
  const std::string refused_a = "127.0.0.1:" + std::to_string(a) + ": Connection refused";
  const std::string refused_b = "127.0.0.1:" + std::to_string(b) + ": Connection refused";
  CHECK((r.why() == refused_a + "; " + refused_b || r.why() == refused_b + "; " + refused_a));
  CHECK_FALSE(socket.is_open());
  CHECK_FALSE(c.index());
  for (std::size_t i : {0u, 1u}) {
    CHECK(up->counts(i).connect_failures == 1);
    CHECK(up->active(i) == 0);
  }
}

TEST_CASE("endpoint_connection: a connect that hangs is a timeout at its limit",
          "[endpoint_connection]") {
  blackhole hole;
  const auto up = upstream_at({hole.port});
  asio::io_context io;
  stream_socket socket(io);
  endpoint_connection c(*up, 0);
  const auto start = std::chrono::steady_clock::now();
  const outcome<> r = connect(c, socket, {.timeout = 200ms});
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.reason() == close_reason::connect_timeout);
  CHECK(r.why() == "127.0.0.1:" + std::to_string(hole.port) + ": timed out");
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  CHECK(up->counts(0).connect_failures == 1);
  CHECK_FALSE(c.index());
}

TEST_CASE(
    "endpoint_connection: max_fails failures in a row eject the endpoint, with a warning unless "
    "told not to, and an ejected endpoint is not tried",
    "[endpoint_connection]") {
  const bool log_ejection = GENERATE(true, false);
  const std::uint16_t dead = dead_port();
  const auto up = upstream_at({dead}, {}, 2);
  asio::io_context io;
  stream_socket socket(io);
  captured_log log;
  for (int i = 0; i < 2; ++i) {
    endpoint_connection c(*up, 0);
    const outcome<> r = connect(c, socket, {.timeout = 2000ms, .log_ejection = log_ejection});
    REQUIRE_FALSE(r);
    CHECK(r.reason() == close_reason::connect_failed);
    CHECK(up->usable(0, upstream::clock::now()) == (i == 0));
  }
  const std::string ejected = "upstream app endpoint 127.0.0.1:" + std::to_string(dead) +
                              ": ejected for 60000 ms after 2 connect failures in a row";
  if (log_ejection)
    CHECK_THAT(log.text.str(), Catch::Contains(ejected));
  else
    CHECK_THAT(log.text.str(), !Catch::Contains("ejected"));
  // Ejected: nothing is usable, so nothing is tried (no why).
  endpoint_connection c(*up, 0);
  const outcome<> r = connect(c, socket, {.timeout = 2000ms});
  REQUIRE_FALSE(r);
  CHECK(r.reason() == close_reason::no_endpoint);
  CHECK(r.why().empty());
  CHECK(up->counts(0).connect_failures == 2);
}

TEST_CASE("endpoint_connection: a stop ends the tries at once, uncounted, as shutdown",
          "[endpoint_connection]") {
  blackhole hole;
  const auto up = upstream_at({hole.port});
  asio::io_context io;
  stream_socket socket(io);
  endpoint_connection c(*up, 0);
  const auto start = std::chrono::steady_clock::now();
  const outcome<> r = connect(c, socket, {.timeout = 5000ms}, 50ms);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  REQUIRE_FALSE(r);
  CHECK(r.reason() == close_reason::shutdown);
  CHECK_FALSE(socket.is_open());
  CHECK(up->counts(0).connect_failures == 0);
  CHECK(up->usable(0, upstream::clock::now()));
  CHECK_FALSE(c.index());
}

TEST_CASE(
    "endpoint_connection: source binds a fixed address, and one it cannot bind, or a client of "
    "another family, closes with source_failed, not counted against the endpoint",
    "[endpoint_connection][source]") {
  std::uint16_t port = 0;
  fd listener = listen_loopback(port);
  auto up_from = [&](zcproxy::source_config source) {
    zcproxy::upstream_config cfg;
    cfg.name = "app";
    cfg.max_fails = 1;  // one failure counted would eject it
    cfg.fail_timeout = 60s;
    cfg.source = std::move(source);
    cfg.endpoints.push_back({.at = *zcproxy::parse_address("127.0.0.1:" + std::to_string(port))});
    return std::make_unique<upstream>(std::move(cfg), 1);
  };
  asio::io_context io;
  {
    // All of 127/8 is this host's: 127.0.0.7 is a fixed source that binds.
    const auto up = up_from({zcproxy::source_kind::fixed, *zcproxy::parse_address("127.0.0.7:0")});
    stream_socket socket(io);
    endpoint_connection c(*up, 0);
    REQUIRE(connect(c, socket, {.timeout = 2000ms}));
    const auto local = zcproxy::local_of(socket);
    REQUIRE(local);
    CHECK(local->ip == "127.0.0.7");
    CHECK(local->port != 0);  // the kernel's, at connect
  }
  const auto v6_client = *zcproxy::parse_address("[::1]:5000");
  struct attempt {
    zcproxy::source_config source;
    const zcproxy::address* client;
    std::string why;
  } attempts[] = {
      {{zcproxy::source_kind::fixed, *zcproxy::parse_address("198.51.100.7:0")},
       nullptr,
       "binding source: Cannot assign requested address"},
      {{zcproxy::source_kind::client},
       &v6_client,
       "source client [::1]:5000 is not an address of the endpoint's family"},
      {{zcproxy::source_kind::client},
       nullptr,
       "source client unknown is not an address of the endpoint's family"},
  };
  for (const auto& a : attempts) {
    INFO(a.why);
    const auto up = up_from(a.source);
    for (int i = 0; i < 2; ++i) {  // the second finds the endpoint still usable
      stream_socket socket(io);
      endpoint_connection c(*up, 0);
      const outcome<> r = connect(c, socket, {.timeout = 2000ms, .client = a.client});
      REQUIRE_FALSE(r);
      CHECK(r.reason() == close_reason::source_failed);
      CHECK(r.why() == "127.0.0.1:" + std::to_string(port) + ": " + a.why);
      CHECK_FALSE(socket.is_open());
    }
    CHECK(up->counts(0).connect_failures == 0);
  }
}
