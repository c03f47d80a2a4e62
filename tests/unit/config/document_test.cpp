// src/config/document.cpp: the top level of a document and its small sections (log, relay,
// admin, upgrade_socket), their defaults and their errors.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "support/process.hpp"
#include "zcproxy/config.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using test::errors_of;
using test::joined;
using test::minimal;
using zcproxy::address;
using zcproxy::balance_policy;
using zcproxy::engine_mode;
using zcproxy::load_config_string;

TEST_CASE("absent keys take their defaults", "[config]") {
  auto c = load_config_string(minimal, "min.yaml");
  CHECK(c.source == "min.yaml");
  CHECK(c.threads == 0);
  CHECK(c.log.level == "info");
  CHECK(c.log.access_log == true);
  CHECK(c.log.access_format == zcproxy::access_log_format::text);
  CHECK(c.log.access_file.empty());  // stdout
  CHECK(c.relay.engine == engine_mode::adaptive);
  CHECK(c.relay.pipe_size == 1u << 20);
  CHECK(c.relay.max_pipes == 4096);
  CHECK(c.relay.buffer_size == 1u << 20);
  CHECK(c.drain_timeout == 10s);
  REQUIRE(c.upstreams.size() == 1);
  const auto& u = c.upstreams[0];
  REQUIRE(u.endpoints.size() == 1);
  CHECK(u.endpoints[0].weight == 1);
  CHECK(u.balance == balance_policy::round_robin);
  CHECK_FALSE(u.health_check.enabled);
  CHECK(u.health_check == zcproxy::health_check_config{});
  CHECK(u.health_check.interval == 2s);
  CHECK(u.health_check.timeout == 1s);
  CHECK(u.health_check.rise == 2);
  CHECK(u.health_check.fall == 3);
  CHECK(u.health_check.send.empty());
  CHECK(u.health_check.expect.empty());
  CHECK(u.max_fails == 0);
  CHECK(u.fail_timeout == 10s);
  CHECK(u.max_connect_attempts == 0);
  CHECK(u.timeouts == zcproxy::timeouts_config{});
  CHECK(c.listeners[0].timeouts == zcproxy::timeouts_config{});
  auto t = timeouts_for(c.listeners[0], u);
  CHECK(t.connect == 3s);
  CHECK(t.idle == 10min);
  CHECK(t.max_duration == 0ms);
}

TEST_CASE("every key can be set", "[config]") {
  auto c = load_config_string(R"(threads: 4
log: { level: "off", access_log: false, access_format: json, access_file: /tmp/zcproxy.log }
relay: { engine: copy, pipe_size: 64KiB, max_pipes: 0, buffer_size: 16KB }
drain_timeout: 0s
listeners:
  - { name: a, bind: "0.0.0.0:0", upstream: app }
  - { name: b, bind: "0.0.0.0:0", upstream: db }
  - { name: c, bind: "[::1]:8443", upstream: app }
upstreams:
  app:
    endpoints: ["127.0.0.1:9000", "[::1]:9001"]
    connect_timeout: 250ms
  db: { endpoints: ["10.0.0.1:5432"], connect_timeout: 1h }
)");
  CHECK(c.threads == 4);
  CHECK(c.effective_threads() == 4);
  CHECK(c.log.level == "off");
  CHECK_FALSE(c.log.access_log);
  CHECK(c.log.access_format == zcproxy::access_log_format::json);
  CHECK(c.log.access_file == "/tmp/zcproxy.log");
  CHECK(c.relay.engine == engine_mode::copy);
  CHECK(c.relay.pipe_size == 64 * 1024);
  CHECK(c.relay.max_pipes == 0);
  CHECK(c.relay.buffer_size == 16000);
  CHECK(c.drain_timeout == 0ms);
  REQUIRE(c.listeners.size() == 3);
  // Two listeners on port 0 do not clash: each gets its own ephemeral port.
  CHECK(c.listeners[1].bind.port == 0);
  CHECK(c.listeners[2].bind == address{"::1", 8443, true});
  CHECK(c.listeners[2].bind.to_string() == "[::1]:8443");
  REQUIRE(c.upstreams.size() == 2);
  CHECK(c.upstreams[0].endpoints.size() == 2);
  CHECK(c.upstreams[0].timeouts.connect == 250ms);
  CHECK(c.find_upstream("db")->timeouts.connect == 1h);

  CHECK(load_config_string(std::string("relay: { engine: splice }\n") + minimal).relay.engine ==
        engine_mode::splice);
  CHECK(load_config_string(std::string("relay: { engine: auto }\n") + minimal).relay.engine ==
        engine_mode::automatic);
  CHECK(load_config_string(std::string("relay: { engine: adaptive }\n") + minimal).relay.engine ==
        engine_mode::adaptive);
}

TEST_CASE("unknown top-level key is reported with the allowed keys", "[config]") {
  auto errors = errors_of(std::string("thread: 4\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:1: thread: unknown key; expected one of: ") &&
                            Contains("threads, log, relay, drain_timeout, listeners, upstreams"));
}

TEST_CASE("listeners and upstreams of the wrong type are reported", "[config]") {
  auto errors = errors_of(R"(listeners:
  web: { bind: "127.0.0.1:8080", upstream: app }
upstreams:
  - app
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:2:3: listeners: expected a non-empty sequence of "
                                   "listeners") &&
                            Contains("got a map"));
  CHECK_THAT(errors[1],
             StartsWith("t.yaml:4:3: upstreams: expected a non-empty map of upstream name") &&
                 Contains("got a sequence"));
}

TEST_CASE("an unknown relay engine is reported", "[config]") {
  auto errors = errors_of(std::string("relay:\n  engine: zerocopy\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK(
      errors[0] ==
      R"(t.yaml:2:11: relay.engine: expected one of: auto, splice, copy, adaptive, got "zerocopy")");
}

TEST_CASE("bad log level, access_log and thread count are reported", "[config]") {
  auto errors = errors_of(std::string(R"(threads: 1025
log:
  level: verbose
  access_log: maybe
)") + minimal);
  INFO(joined(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:10: threads: expected an integer from 0 to 1024") &&
                            Contains(R"(got "1025")"));
  CHECK(errors[1] ==
        "t.yaml:3:10: log.level: expected one of: trace, debug, info, warn, error, "
        R"(critical, off, got "verbose")");
  CHECK(errors[2] == R"(t.yaml:4:15: log.access_log: expected true or false, got "maybe")");
}

TEST_CASE("upgrade_socket is an absolute path in a directory that exists", "[config][upgrade]") {
  CHECK(load_config_string(std::string("upgrade_socket: /tmp/zcproxy-upgrade.sock\n") + minimal)
            .upgrade_socket == "/tmp/zcproxy-upgrade.sock");
  CHECK(load_config_string(minimal).upgrade_socket.empty());  // off
  auto error_for = [](const std::string& value) {
    auto errors = errors_of("upgrade_socket: " + value + "\n" + minimal);
    INFO(joined(errors));
    REQUIRE(errors.size() == 1);
    return errors[0];
  };
  const std::string expected =
      "t.yaml:1:17: upgrade_socket: expected an absolute path of at most 107 bytes in an existing "
      "directory, e.g. /run/zcproxy/upgrade.sock, got ";
  CHECK(error_for("upgrade.sock") == expected + R"("upgrade.sock": not an absolute path)");
  CHECK(
      error_for("/nonexistent-zcproxy/upgrade.sock") ==
      expected +
          R"("/nonexistent-zcproxy/upgrade.sock": directory /nonexistent-zcproxy does not exist)");
  const std::string long_path = "/tmp/" + std::string(110, 'x');
  CHECK(error_for(long_path) ==
        expected + "\"" + long_path + "\": longer than a Unix socket address holds");
  CHECK(error_for("/tmp/") == expected + R"("/tmp/": names a directory, not a file)");
  CHECK(error_for("[/tmp/a]") ==
        "t.yaml:1:17: upgrade_socket: expected an absolute path of at "
        "most 107 bytes in an existing directory, e.g. "
        "/run/zcproxy/upgrade.sock, got a sequence");
}

TEST_CASE("bad access_format and access_file are reported", "[config]") {
  // One error per document: a key may appear once.
  auto error_for = [](const std::string& log) {
    auto errors = errors_of("log: " + log + "\n" + minimal);
    INFO(joined(errors));
    REQUIRE(errors.size() == 1);
    return errors[0];
  };
  CHECK(error_for("{ access_format: xml }") ==
        R"(t.yaml:1:23: log.access_format: expected one of: text, json, got "xml")");
  CHECK(error_for("{ access_format: [json] }") ==
        "t.yaml:1:23: log.access_format: expected one of: text, json, got a sequence");
  const std::string expected =
      "expected an absolute file path in an existing directory, e.g. "
      "/var/log/zcproxy/access.log, got ";
  CHECK(error_for("{ access_file: access.log }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("access.log": not an absolute path)");
  CHECK(error_for("{ access_file: /nonexistent-zcproxy/access.log }") ==
        "t.yaml:1:21: log.access_file: " + expected +
            R"("/nonexistent-zcproxy/access.log": directory /nonexistent-zcproxy: )"
            "No such file or directory");
  const std::string readme = ZCPROXY_SOURCE_DIR "/README.md";
  CHECK(error_for("{ access_file: \"" + readme + "/access.log\" }") ==
        "t.yaml:1:21: log.access_file: " + expected + "\"" + readme + "/access.log\": " + readme +
            " is not a directory");
  CHECK(error_for("{ access_file: /tmp/ }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("/tmp/": names a directory, not a file)");
  CHECK(error_for("{ access_file: /tmp }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("/tmp": it is a directory)");
  CHECK(error_for("{ access_file: \"\" }") ==
        "t.yaml:1:21: log.access_file: " + expected + R"("": not an absolute path)");
  CHECK(error_for("{ access_file: { path: /tmp/a.log } }") ==
        "t.yaml:1:21: log.access_file: " + expected + "a map");
  // A file in the root directory, and one that does not exist yet, are fine.
  CHECK(load_config_string("log: { access_file: /zcproxy-access.log }\n" + std::string(minimal))
            .log.access_file == "/zcproxy-access.log");
}

TEST_CASE("empty listeners, upstreams and endpoints are reported", "[config]") {
  auto errors = errors_of(R"(listeners: []
upstreams: {}
)");
  INFO(joined(errors));
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:12: listeners: expected a non-empty sequence") &&
                            Contains("got an empty sequence"));
  CHECK_THAT(errors[1], StartsWith("t.yaml:2:12: upstreams: expected a non-empty map") &&
                            Contains("got an empty map"));

  errors = errors_of(R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app:
    endpoints: []
)");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:5:16: upstreams.app.endpoints: expected a non-empty "
                                   "sequence of endpoints") &&
                            Contains("got an empty sequence"));
}

TEST_CASE("an empty document is an error: listeners and upstreams are required", "[config]") {
  for (const char* text : {"", "# nothing but a comment\n"}) {
    auto errors = errors_of(text);
    REQUIRE(errors.size() == 2);
    CHECK_THAT(errors[0], StartsWith("t.yaml:1:1: listeners: required key is missing; expected a "
                                     "non-empty sequence of listeners"));
    CHECK_THAT(errors[1], StartsWith("t.yaml:1:1: upstreams: required key is missing"));
  }
  auto errors = errors_of("- just\n- a list\n");
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:1: (top level): expected a map with keys threads") &&
                            Contains("got a sequence"));
}

TEST_CASE("admin: is off unless given, and on loopback unless said otherwise",
          "[config][security]") {
  CHECK_FALSE(load_config_string(std::string(minimal)).admin.enabled);
  for (const char* head : {"admin:\n", "admin: {}\n", "admin: { reload: true }\n"}) {
    INFO(head);
    const auto c = load_config_string(std::string(head) + minimal);
    CHECK(c.admin.enabled);
    CHECK(c.admin.bind.to_string() == "127.0.0.1:9901");
  }
  CHECK(load_config_string(std::string("admin: { bind: \"[::1]:9000\" }\n") + minimal)
            .admin.bind.to_string() == "[::1]:9000");
  const auto errors = errors_of(std::string("admin: yes\n") + minimal);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], StartsWith("t.yaml:1:8: admin: expected a map with keys bind, allow, deny, "
                                   "reload"));
}

TEST_CASE("admin.token_file: read at load, only from a file no one else may read",
          "[config][security]") {
  test::temp_dir d;
  const std::string token = "f00dfeedf00dfeed-0123456789";
  auto with_token_file = [&](const std::string& path) {
    return "admin: { token_file: \"" + path + "\" }\n" + std::string(minimal);
  };
  auto file = [&](const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = d.file(name, text);
    ::chmod(path.c_str(), mode);
    return path;
  };
  CHECK(load_config_string(std::string("admin: {}\n") + minimal).admin.token.empty());
  for (mode_t mode : {0600, 0400}) {
    const auto c = load_config_string(with_token_file(file("good", token + "\n", mode)));
    CHECK(c.admin.token == token);  // the first line, without its newline
  }
  struct bad_case {
    std::string path, why;
  };
  const bad_case bad[] = {
      {file("shared", token, 0640), "group or others may access it"},
      {file("everyone", token, 0604), "group or others may access it"},
      {file("short", "0123456789abcde\n", 0600), "not 16 or more printable characters"},
      {file("spaced", "0123456789 abcdef\n", 0600), "not 16 or more printable characters"},
      {file("empty", "\n", 0600), "not 16 or more printable characters"},
      {d.path + "/missing", "No such file or directory"},
      {d.path, "not a regular file"},
      {"relative/token", "not an absolute path"},
  };
  for (const auto& c : bad) {
    INFO(c.path);
    const auto errors = errors_of(with_token_file(c.path));
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], StartsWith("t.yaml:1:22: admin.token_file: expected an absolute path"));
    CHECK_THAT(errors[0], Contains(c.why));
  }
}

TEST_CASE("config: the README's configuration example is a valid config", "[config]") {
  const std::string readme = test::slurp(ZCPROXY_SOURCE_DIR "/README.md");
  const auto section = readme.find("## Configuration");
  REQUIRE(section != std::string::npos);
  const auto start = readme.find("```yaml\n", section);
  REQUIRE(start != std::string::npos);
  const auto end = readme.find("```", start + 8);
  REQUIRE(end != std::string::npos);
  const std::string yaml = readme.substr(start + 8, end - start - 8);
  try {
    // Read as a file in conf/, so its relative fallback_response is conf/503.http.
    const auto c = load_config_string(yaml, ZCPROXY_SOURCE_DIR "/conf/README.yaml");
    CHECK(c.admin.enabled);
    CHECK_FALSE(c.listeners.back().routes.patterns.empty());
  } catch (const zcproxy::config_error& e) {
    for (const auto& line : e.errors()) UNSCOPED_INFO(line);
    FAIL("the README's example has errors");
  }
}

TEST_CASE("log.on_connect and log.interval: off by default, set, and a bad interval reported",
          "[config]") {
  auto c = load_config_string(minimal, "min.yaml");
  CHECK_FALSE(c.log.on_connect);
  CHECK(c.log.interval == 0ms);
  c = load_config_string(std::string("log: { on_connect: true, interval: 60s }\n") + minimal,
                         "t.yaml");
  CHECK(c.log.on_connect);
  CHECK(c.log.interval == 60s);
  CHECK(
      load_config_string(std::string("log: { interval: 1s }\n") + minimal, "t.yaml").log.interval ==
      1s);
  CHECK(
      load_config_string(std::string("log: { interval: 0s }\n") + minimal, "t.yaml").log.interval ==
      0ms);
  auto error_for = [](const std::string& log) {
    auto errors = errors_of("log: " + log + "\n" + minimal);
    INFO(joined(errors));
    REQUIRE(errors.size() == 1);
    return errors[0];
  };
  const std::string range = "expected a duration from 0s (no interim lines) or 1s to 24h, got ";
  CHECK(error_for("{ interval: 500ms }") == "t.yaml:1:18: log.interval: " + range + "\"500ms\"");
  CHECK(error_for("{ interval: 25h }") == "t.yaml:1:18: log.interval: " + range + "\"25h\"");
  CHECK_THAT(error_for("{ interval: soon }"), StartsWith("t.yaml:1:18: log.interval: expected "));
  CHECK_THAT(error_for("{ on_connect: yes please }"),
             StartsWith("t.yaml:1:20: log.on_connect: expected "));
}
