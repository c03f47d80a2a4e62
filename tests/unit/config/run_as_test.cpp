// src/config/run_as.cpp: user: and group:, looked up when the config loads.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "zcproxy/config.hpp"

using Catch::Matchers::StartsWith;
using test::errors_of;
using test::minimal;
using zcproxy::load_config_string;

TEST_CASE("user and group are resolved when the config loads, and core_dumps is off by default",
          "[config][security]") {
  auto c = load_config_string(std::string(minimal));
  CHECK_FALSE(c.run_as);
  CHECK_FALSE(c.core_dumps);

  c = load_config_string(std::string("user: nobody\ncore_dumps: true\n") + minimal);
  REQUIRE(c.run_as);
  CHECK(c.run_as->user == "nobody");
  CHECK(c.run_as->uid == 65534);
  CHECK(c.run_as->gid == 65534);  // nobody's primary group
  CHECK(c.core_dumps);

  c = load_config_string(std::string("user: nobody\ngroup: root\n") + minimal);
  REQUIRE(c.run_as);
  CHECK(c.run_as->gid == 0);
  // Numbers need no passwd or group entry (a container's uid), but then the group must be said.
  c = load_config_string(std::string("user: 4242\ngroup: 4343\n") + minimal);
  REQUIRE(c.run_as);
  CHECK(c.run_as->uid == 4242);
  CHECK(c.run_as->gid == 4343);

  auto errors = errors_of(std::string("user: no-such-user-zc\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected a user of this system, got "
                                   "\"no-such-user-zc\""));
  errors = errors_of(std::string("user: nobody\ngroup: no-such-group-zc\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:8: group: expected a group of this system"));
  errors = errors_of(std::string("group: nogroup\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:8: group: expected user: as well"));
  errors = errors_of(std::string("user: 4242\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected group: too"));
  // 2^32 would wrap round to uid 0.
  errors = errors_of(std::string("user: 4294967296\ngroup: 1\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected a uid below 4294967295"));
  errors = errors_of(std::string("user: nobody\ngroup: 4294967296\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:8: group: expected a gid below 4294967295"));
  errors = errors_of(std::string("user: [a]\ncore_dumps: sometimes\n") + minimal);
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:7: user: expected a user name or numeric uid"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:13: core_dumps: expected true or false"));
}
