// src/config/config.cpp: names of the config's enums, and the timeouts a connection runs with.
#include "zcproxy/config.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using zcproxy::engine_mode;
using zcproxy::load_config_string;

TEST_CASE("engine modes print as they are written in the config", "[config]") {
  CHECK(zcproxy::to_string(engine_mode::automatic) == "auto");
  CHECK(zcproxy::to_string(engine_mode::splice) == "splice");
  CHECK(zcproxy::to_string(engine_mode::copy) == "copy");
  CHECK(zcproxy::to_string(engine_mode::adaptive) == "adaptive");
}

TEST_CASE("listeners and upstreams take connect, idle and max duration timeouts", "[config]") {
  auto c = load_config_string(R"(listeners:
  - { name: a, bind: "127.0.0.1:8080", upstream: app }
  - name: b
    bind: "127.0.0.1:8081"
    upstream: app
    connect_timeout: 1ms
    idle_timeout: 0s
    max_connection_duration: 720h
  - { name: c, bind: "127.0.0.1:8082", upstream: db, idle_timeout: 1ms }
upstreams:
  app:
    endpoints: ["127.0.0.1:9000"]
    connect_timeout: 1h
    idle_timeout: 168h
    max_connection_duration: 0s
  db:
    endpoints: ["127.0.0.1:5432"]
    max_connection_duration: 30m
)");
  REQUIRE(c.listeners.size() == 3);
  CHECK(c.listeners[0].timeouts == zcproxy::timeouts_config{});
  CHECK(c.listeners[1].timeouts.connect == 1ms);
  CHECK(c.listeners[1].timeouts.idle == 0ms);
  CHECK(c.listeners[1].timeouts.max_duration == 720h);
  CHECK(c.listeners[2].timeouts.idle == 1ms);
  CHECK_FALSE(c.listeners[2].timeouts.connect);
  const auto& app = *c.find_upstream("app");
  const auto& db = *c.find_upstream("db");
  CHECK(app.timeouts.connect == 1h);
  CHECK(app.timeouts.idle == 168h);
  CHECK(app.timeouts.max_duration == 0ms);
  CHECK(db.timeouts.max_duration == 30min);
  CHECK_FALSE(db.timeouts.connect);
  CHECK_FALSE(db.timeouts.idle);

  // The listener's value wins, then the upstream's, then the default.
  auto a = timeouts_for(c.listeners[0], app);
  CHECK(a.connect == 1h);
  CHECK(a.idle == 168h);
  CHECK(a.max_duration == 0ms);
  auto b = timeouts_for(c.listeners[1], app);
  CHECK(b.connect == 1ms);
  CHECK(b.idle == 0ms);  // no idle timeout
  CHECK(b.max_duration == 720h);
  auto d = timeouts_for(c.listeners[2], db);
  CHECK(d.connect == 3s);
  CHECK(d.idle == 1ms);
  CHECK(d.max_duration == 30min);
}
