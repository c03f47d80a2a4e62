// src/config/values.cpp: sizes and durations as a config writes them.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "zcproxy/config.hpp"

using namespace std::chrono_literals;

TEST_CASE("parse_size accepts bytes and binary/decimal units", "[config]") {
  auto [text, bytes] = GENERATE(table<const char*, std::size_t>({
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"4KiB", 4096},
      {"4K", 4096},
      {"64 KiB", 65536},
      {"1MiB", 1 << 20},
      {"1M", 1 << 20},
      {"2GiB", std::size_t{2} << 30},
      {"1G", std::size_t{1} << 30},
      {"16KB", 16000},
      {"16kB", 16000},
      {"3MB", 3000000},
      {"1GB", 1000000000},
      {"18446744073709551615", 18446744073709551615ull},
  }));
  INFO(text);
  CHECK(zcproxy::parse_size(text) == bytes);
}

TEST_CASE("parse_size rejects junk, negatives and overflow", "[config]") {
  auto text = GENERATE("", " ", "KiB", "-1", "-1KiB", "+1", "1.5MiB", "1XB", "1 MiB ", " 1MiB",
                       "1MiBs", "1kib", "0x10", "18446744073709551616", "17179869184GiB", "1e3");
  INFO('"' << text << '"');
  CHECK_FALSE(zcproxy::parse_size(text).has_value());
}

TEST_CASE("parse_duration needs a unit", "[config]") {
  auto [text, ms] = GENERATE(table<const char*, std::chrono::milliseconds>({
      {"0ms", 0ms},
      {"0s", 0ms},
      {"500ms", 500ms},
      {"3s", 3s},
      {"1m", 1min},
      {"90m", 90min},
      {"24h", 24h},
      {"10 s", 10s},
  }));
  INFO(text);
  CHECK(zcproxy::parse_duration(text) == ms);
}

TEST_CASE("parse_duration rejects bare numbers, junk, negatives and overflow", "[config]") {
  auto text = GENERATE("", "10", "s", "-1s", "+1s", "1.5s", "1d", "1sec", "1 h ", "1ms5", "1S",
                       "99999999999999999999ms", "9223372036854775807h", "9223372036854775808ms");
  INFO('"' << text << '"');
  CHECK_FALSE(zcproxy::parse_duration(text).has_value());
}
