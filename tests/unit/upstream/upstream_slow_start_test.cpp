// When an upstream's endpoint "comes up" for slow start: a health check passes, ready after maint,
// an address new beside serving ones (reload or DNS); and what a reload carries over. On an
// injected clock.
#include <catch2/catch.hpp>
#include <chrono>
#include <vector>

#include "zcproxy/upstream.hpp"

using namespace std::chrono_literals;
using zcproxy::address;
using zcproxy::endpoint_config;
using zcproxy::endpoint_mode;
using zcproxy::upstream;

namespace {

const upstream::clock::time_point t0 = upstream::clock::time_point(1000s);

zcproxy::upstream_config app(std::vector<std::uint16_t> ports) {
  zcproxy::upstream_config cfg;
  cfg.name = "app";
  cfg.slow_start = 30s;
  for (auto port : ports)
    cfg.endpoints.push_back(endpoint_config{address{"127.0.0.1", port, false}, 1});
  return cfg;
}

}  // namespace

TEST_CASE("upstream: endpoints start warm, and a passed health check or ready after maint ramps",
          "[upstream][slow_start]") {
  upstream u(app({9000, 9001}), 1, nullptr, t0);
  CHECK(u.effective_weight(0, t0) == 1.0);
  CHECK(u.effective_weight(1, t0) == 1.0);

  CHECK(u.set_healthy(1, false, t0));
  CHECK(u.set_healthy(1, true, t0 + 1s));
  CHECK(u.effective_weight(1, t0 + 16s) == Approx(0.5).margin(0.01));
  CHECK(!u.set_healthy(1, true, t0 + 16s));  // still up: no new ramp
  CHECK(u.effective_weight(1, t0 + 16s) == Approx(0.5).margin(0.01));
  CHECK(u.effective_weight(1, t0 + 31s) == 1.0);

  u.set_mode(0, endpoint_mode::maint, t0 + 40s);
  u.set_mode(0, endpoint_mode::ready, t0 + 40s);
  CHECK(u.effective_weight(0, t0 + 43s) == Approx(0.1).margin(0.01));
  u.set_mode(1, endpoint_mode::drain, t0 + 40s);  // drained: its connections stayed, it is warm
  u.set_mode(1, endpoint_mode::ready, t0 + 40s);
  CHECK(u.effective_weight(1, t0 + 41s) == 1.0);

  // The picks go by it: at 3 s of 30, endpoint 0 takes about 0.1 / 1.1 of them.
  int on_0 = 0;
  for (int n = 0; n < 10000; ++n) {
    std::vector<std::uint8_t> candidates{1, 1};
    on_0 += u.pick(candidates, 0, t0 + 43s) == 0u;
  }
  CHECK(on_0 / 10000.0 == Approx(0.1 / 1.1).margin(0.02));
}

TEST_CASE("upstream: a reload keeps each ramp, and an address new beside serving ones ramps",
          "[upstream][slow_start]") {
  upstream before(app({9000, 9001}), 1, nullptr, t0);
  before.set_healthy(1, false, t0);
  before.set_healthy(1, true, t0);
  upstream after(app({9000, 9001, 9002}), 1, &before, t0 + 15s);
  CHECK(after.effective_weight(0, t0 + 15s) == 1.0);                       // warm stays warm
  CHECK(after.effective_weight(1, t0 + 15s) == Approx(0.5).margin(0.01));  // ramps on
  CHECK(after.effective_weight(2, t0 + 18s) == Approx(0.1).margin(0.01));  // new: ramps
  CHECK(after.effective_weight(2, t0 + 45s) == 1.0);

  // A name's first addresses (it had none: nobody to share with) start warm.
  upstream unresolved(app({}), 1, nullptr, t0);
  upstream resolved(app({9000, 9001}), 1, &unresolved, t0 + 1s);
  CHECK(resolved.effective_weight(0, t0 + 1s) == 1.0);
  CHECK(resolved.effective_weight(1, t0 + 1s) == 1.0);

  // Without slow_start nothing ramps.
  auto plain = app({9000, 9001, 9002});
  plain.slow_start = 0s;
  upstream no_ramp(plain, 1, &before, t0 + 15s);
  for (std::size_t i = 0; i < 3; ++i) CHECK(no_ramp.effective_weight(i, t0 + 15s) == 1.0);
}
