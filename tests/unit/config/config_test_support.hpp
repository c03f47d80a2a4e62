// What the config tests share: the smallest valid document, a document around one upstream, and
// the errors the loader reports for a document (each also checked against the binary's).
#pragma once

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "zcproxy/config.hpp"

namespace test {

// The smallest valid listeners/upstreams pair; tests append it to focus on one other key.
inline constexpr const char* minimal = R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)";

// The binary, started with `yaml` as its config file, refuses to start: exit code 2, and every
// one of `errors` on stderr (naming the file instead of t.yaml).
inline void check_binary_refuses(const std::string& yaml, const std::vector<std::string>& errors) {
  using Catch::Matchers::Contains;
  using Catch::Matchers::StartsWith;
  test::temp_dir d;
  const std::string path = d.file("t.yaml");
  std::ofstream(path) << yaml;
  test::process zc({"-c", path}, d.file("out"), d.file("err"));
  CHECK(zc.wait() == 2);
  const std::string err = test::slurp(d.file("err"));
  CHECK_THAT(err, StartsWith("zcproxy: invalid config:\n"));
  for (std::string e : errors) {
    if (e.rfind("t.yaml:", 0) == 0) e.replace(0, 6, path);
    CHECK_THAT(err, Contains("  " + e + "\n"));
  }
}

// Errors reported for `yaml`, named "t.yaml" in messages; fails the test if it was accepted.
// Every config refused here is also refused by the binary at start-up, with the same errors.
inline std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    zcproxy::load_config_string(yaml, "t.yaml");
  } catch (const zcproxy::config_error& e) {
    check_binary_refuses(yaml, e.errors());
    return e.errors();
  }
  FAIL("config was accepted:\n" << yaml);
  return {};
}

// A valid config around one upstream `app` whose keys are `body` (indented four spaces, from line
// 5 of the document), so a test's line:col are easy to read off.
inline std::string with_upstream(const std::string& body) {
  return "listeners:\n  - { name: web, bind: \"127.0.0.1:8080\", upstream: app }\nupstreams:\n"
         "  app:\n" +
         body;
}

inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace test
