// src/config/fallback_body.cpp: a fallback_response file, read when the config loads.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "support/process.hpp"
#include "zcproxy/config.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using test::errors_of;
using test::minimal;
using zcproxy::load_config_string;

TEST_CASE(
    "fallback_response is read when the config loads: missing, unreadable or too large is "
    "an error",
    "[config][fallback]") {
  test::temp_dir d;
  d.file("503.http", "HTTP/1.1 503 x\r\n\r\n");
  auto with_fallback = [](const std::string& file) {
    return "listeners:\n  - { name: web, bind: \"127.0.0.1:8080\", upstream: app, "
           "fallback_response: " +
           file + " }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:9000\"] }\n";
  };
  // Relative to the config file's directory.
  auto c = load_config_string(with_fallback("503.http"), d.path + "/zcproxy.yaml");
  REQUIRE(c.listeners[0].fallback);
  CHECK(c.listeners[0].fallback_path == d.path + "/503.http");
  CHECK(c.listeners[0].fallback->size == 18);
  c = load_config_string(with_fallback(d.path + "/503.http"), "elsewhere.yaml");
  REQUIRE(c.listeners[0].fallback);
  CHECK_FALSE(load_config_string(std::string(minimal)).listeners[0].fallback);

  std::string big(zcproxy::max_fallback_bytes + 1, 'x');
  d.file("big.http", big);
  d.file("exact.http", big.substr(1));
  CHECK(load_config_string(with_fallback(d.path + "/exact.http")).listeners[0].fallback->size ==
        zcproxy::max_fallback_bytes);
  auto errors = errors_of(with_fallback(d.path + "/big.http"));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:76: listeners[0].fallback_response: expected a file "
                                   "of at most 1 MiB") &&
                            Contains("big.http is larger than 1 MiB"));
  errors = errors_of(with_fallback(d.path + "/missing.http"));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Contains("missing.http: No such file or directory"));
  errors = errors_of(with_fallback(d.path));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Contains(": Is a directory"));
}
