#include "runtime/generation.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "runtime/worker.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "zcproxy/upstream.hpp"

namespace {

namespace asio = boost::asio;

zcproxy::config config_of(const std::string& listeners, const std::string& upstream_extra = "") {
  return zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nlisteners:\n" + listeners +
          "upstreams:\n  app:\n    endpoints: [\"127.0.0.1:1\"]\n" + upstream_extra,
      "test.yaml");
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

struct two_workers {
  asio::io_context a{1}, b{1};
  std::vector<asio::io_context*> ios{&a, &b};
};

}  // namespace

TEST_CASE("generation: the first one opens every listener on every worker, ports resolved",
          "[generation]") {
  two_workers w;
  const auto built = zcproxy::build_generation(
      config_of("  - { name: one, bind: \"127.0.0.1:0\", upstream: app }\n"
                "  - { name: two, bind: \"127.0.0.1:0\", upstream: app }\n"),
      nullptr, w.ios);
  const auto& g = *built.gen;
  REQUIRE(g.listeners.size() == 2);
  CHECK(g.listeners[0].id != g.listeners[1].id);
  for (const auto& l : g.listeners) {
    CHECK(l.bound.port != 0);
    CHECK(l.target == g.find("app"));
    CHECK(l.state != nullptr);
  }
  REQUIRE(built.plans.size() == 2);
  for (const auto& plan : built.plans) {
    REQUIRE(plan.size() == 2);
    for (std::size_t j = 0; j < 2; ++j) {
      CHECK(plan[j].id == g.listeners[j].id);
      CHECK(plan[j].acceptors.size() == 1);
    }
  }
}

TEST_CASE("generation: a reload keeps listeners by address, opens new ones, carries upstreams",
          "[generation][reload]") {
  two_workers w;
  const auto first = zcproxy::build_generation(
      config_of("  - { name: kept, bind: \"127.0.0.1:0\", upstream: app }\n"), nullptr, w.ios);
  const auto& old = first.gen->listeners.at(0);
  // The same configured address (port 0) as before, first in config order; one more listener.
  const auto second = zcproxy::build_generation(
      config_of("  - { name: kept, bind: \"127.0.0.1:0\", upstream: app }\n"
                "  - { name: added, bind: \"127.0.0.1:0\", upstream: app }\n"),
      first.gen.get(), w.ios);
  const auto& g = *second.gen;
  REQUIRE(g.listeners.size() == 2);
  const auto& kept = g.listeners[0];
  const auto& added = g.listeners[1];
  CHECK(kept.id == old.id);
  CHECK(kept.state == old.state);  // its counts carry on
  CHECK(kept.bound == old.bound);
  CHECK(added.id != old.id);
  CHECK(added.state != old.state);
  for (const auto& plan : second.plans) {
    CHECK(plan[0].acceptors.empty());
    CHECK(plan[1].acceptors.size() == 1);
  }
  CHECK(g.upstreams.at(0) == first.gen->upstreams.at(0));  // unchanged: the same one

  const auto third = zcproxy::build_generation(
      config_of("  - { name: kept, bind: \"127.0.0.1:0\", upstream: app }\n",
                "    connect_timeout: 3s\n"),
      second.gen.get(), w.ios);
  CHECK(third.gen->upstreams.at(0) != second.gen->upstreams.at(0));  // changed: a new one
  CHECK(third.gen->listeners.at(0).id == kept.id);
}

TEST_CASE("generation: an address in use refuses the whole generation and undoes what it opened",
          "[generation]") {
  two_workers w;
  test::temp_dir d;
  const std::string path = d.file("first.sock");
  std::uint16_t port = 0;
  test::fd taken = test::listen_loopback(port);
  try {
    zcproxy::build_generation(
        config_of("  - { name: first, bind: \"unix:" + path + "\", upstream: app }\n" +
                  "  - { name: second, bind: \"127.0.0.1:" + std::to_string(port) +
                  "\", upstream: app }\n"),
        nullptr, w.ios);
    FAIL("build_generation did not throw");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("listener second") && Catch::Contains("in use"));
  }
  CHECK_FALSE(exists(path));
}
