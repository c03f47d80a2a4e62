// What the config tests share: the smallest valid document, a document around one upstream, and
// the errors the loader reports for a document. All in-process: the unit tier starts no process
// (binary_test.cpp shows once that the binary prints the loader's errors as they are).
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "zcproxy/config.hpp"

namespace test {

// The smallest valid listeners/upstreams pair; tests append it to focus on one other key.
inline constexpr const char* minimal = R"(listeners:
  - { name: web, bind: "127.0.0.1:8080", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:9000"] }
)";

// Errors reported for `yaml`, named "t.yaml" in messages; fails the test if it was accepted.
inline std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    zcproxy::load_config_string(yaml, "t.yaml");
  } catch (const zcproxy::config_error& e) {
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
