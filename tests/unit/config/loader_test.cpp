// src/config/loader.cpp: YAML text and files in, config_error out: syntax errors, documents,
// unreadable files, and whole valid files.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "zcproxy/config.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using test::errors_of;
using test::minimal;
using zcproxy::address;
using zcproxy::balance_policy;
using zcproxy::config_error;
using zcproxy::engine_mode;

TEST_CASE("the example config parses with the documented values", "[config]") {
  auto c = zcproxy::load_config_file(ZCPROXY_SOURCE_DIR "/conf/zcproxy.yaml");
  CHECK(c.source == ZCPROXY_SOURCE_DIR "/conf/zcproxy.yaml");
  CHECK(c.threads == 0);
  CHECK(c.effective_threads() >= 1);
  CHECK(c.log.level == "info");
  CHECK(c.log.access_log);
  CHECK(c.relay.engine == engine_mode::adaptive);
  CHECK(c.relay.pipe_size == 1u << 20);
  CHECK(c.relay.max_pipes == 4096);
  CHECK(c.relay.buffer_size == 1u << 20);
  CHECK(c.drain_timeout == 10s);
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].name == "web");
  CHECK(c.listeners[0].bind == address{"127.0.0.1", 8080, false});
  CHECK(c.listeners[0].upstream == "app");
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].name == "app");
  REQUIRE(c.upstreams[0].endpoints.size() == 1);
  CHECK(c.upstreams[0].endpoints[0].at.to_string() == "127.0.0.1:5201");
  CHECK(c.upstreams[0].endpoints[0].weight == 1);
  CHECK(c.upstreams[0].balance == balance_policy::round_robin);
  CHECK(c.upstreams[0].timeouts.connect == 3s);
  CHECK(c.upstreams[0].timeouts.idle == 10min);
  CHECK(c.upstreams[0].timeouts.max_duration == 0ms);
  CHECK(c.upstreams[0].max_connect_attempts == 0);
  CHECK(c.upstreams[0].max_fails == 0);
  CHECK(c.upstreams[0].fail_timeout == 10s);
  CHECK(c.upstreams[0].health_check == zcproxy::health_check_config{});
  CHECK(c.listeners[0].timeouts == zcproxy::timeouts_config{});
  const auto* app = c.find_upstream(c.listeners[0].upstream);
  REQUIRE(app != nullptr);
  CHECK(app->name == "app");
  CHECK(c.find_upstream("nope") == nullptr);
}

TEST_CASE("YAML syntax errors are reported with their position", "[config]") {
  auto errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:3:") && Contains(": (yaml): syntax error: ") &&
                            Contains("expected valid YAML"));

  errors = errors_of(std::string("threads: 1: 2\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:11: (yaml): syntax error: "));

  errors = errors_of(std::string(minimal) + "---\nthreads: 2\n");  // points at the ---
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:5:1: (yaml): a second document starts here; expected "
                                   "a single YAML document"));
}

TEST_CASE("input that makes yaml-cpp's LoadAll loop for ever is an error, not a hang", "[config]") {
  // yaml-cpp 0.7's LoadAll never returns on these (the fuzzer found it): each must come back
  // with an error within the test's time limit.
  for (const char* text : {",", "\n,\n", ",\n,\n,", "threads: 1\n,\n"}) {
    INFO("input: " << text);
    CHECK_FALSE(errors_of(text).empty());
  }
}

TEST_CASE("a missing or unreadable file is reported with the system's reason", "[config]") {
  try {
    zcproxy::load_config_file("/nonexistent/zcproxy.yaml");
    FAIL("a missing file was accepted");
  } catch (const config_error& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0] == "/nonexistent/zcproxy.yaml: cannot read: No such file or directory");
    CHECK(std::string(e.what()) == e.errors()[0]);
  }
  try {
    zcproxy::load_config_file(ZCPROXY_SOURCE_DIR "/conf");
    FAIL("a directory was accepted");
  } catch (const config_error& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0] == ZCPROXY_SOURCE_DIR "/conf: cannot read: Is a directory");
  }
}
