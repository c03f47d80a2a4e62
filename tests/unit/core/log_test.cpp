#include "zcproxy/log.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <limits>
#include <regex>
#include <stdexcept>
#include <string>

#include "support/process.hpp"

using namespace std::chrono;
using zcproxy::access_log_format;
using zcproxy::access_record;
using zcproxy::close_reason;
using zcproxy::format_access;

namespace {

namespace json = boost::json;

// 2026-11-25T17:02:20.123Z and the connection's start, 3017 ms earlier.
const system_clock::time_point now = sys_days{year{2026} / 11 / 25} + 17h + 2min + 20s + 123ms;
const system_clock::time_point start = now - 3017ms;

access_record full_record() {
  return {.client = "127.0.0.1:58590",
          .listener = "web",
          .sni = "api.example.com",
          .upstream = "app",
          .endpoint = "127.0.0.1:5201",
          .bytes_up = 542638117,
          .bytes_down = 0,
          .duration_ms = 3017,
          .engine_up = "splice",
          .engine_down = "splice+copy",
          .close = close_reason::eof,
          .start = start};
}

// A refused client: no server name, upstream, endpoint or engine.
access_record refused_record() {
  access_record r;
  r.client = "[::1]:40000";
  r.listener = "edge";
  r.close = close_reason::denied;
  r.start = now;
  return r;
}

// `t` in local time as the text format writes it, without the milliseconds.
std::string local_time_text(system_clock::time_point t) {
  const std::time_t tt = system_clock::to_time_t(t);
  std::tm parts{};
  ::localtime_r(&tt, &parts);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &parts);
  return out;
}

json::object parse_line(const std::string& line) {
  INFO(line);
  json::value v = json::parse(line);  // throws on anything that is not JSON
  REQUIRE(v.is_object());
  return v.as_object();
}

const std::regex rfc3339_ms(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2}))");

}  // namespace

TEST_CASE("the text access line is exactly today's key=value line", "[log]") {
  CHECK(format_access(full_record(), access_log_format::text, now) ==
        local_time_text(now) +
            ".123 access client=127.0.0.1:58590 listener=web sni=api.example.com upstream=app "
            "endpoint=127.0.0.1:5201 bytes_up=542638117 bytes_down=0 duration_ms=3017 "
            "engine_up=splice engine_down=splice+copy close=eof");
  // What is absent is "-".
  CHECK(format_access(refused_record(), access_log_format::text, now + 5ms) ==
        local_time_text(now) +
            ".128 access client=[::1]:40000 listener=edge sni=- upstream=- endpoint=- bytes_up=0 "
            "bytes_down=0 duration_ms=0 engine_up=- engine_down=- close=denied");
}

TEST_CASE("the JSON access line parses and carries every field with its type", "[log]") {
  const std::string line = format_access(full_record(), access_log_format::json, now);
  CHECK(line.find('\n') == std::string::npos);
  const json::object o = parse_line(line);
  CHECK(o.size() == 13);
  // RFC 3339, UTC, milliseconds.
  REQUIRE(o.at("time").is_string());
  REQUIRE(o.at("start").is_string());
  const std::string time(o.at("time").as_string());
  const std::string started(o.at("start").as_string());
  CHECK(std::regex_match(time, rfc3339_ms));
  CHECK(std::regex_match(started, rfc3339_ms));
  CHECK(time == "2026-11-25T17:02:20.123Z");
  CHECK(started == "2026-11-25T17:02:17.106Z");
  CHECK(o.at("client") == "127.0.0.1:58590");
  CHECK(o.at("listener") == "web");
  CHECK(o.at("sni") == "api.example.com");
  CHECK(o.at("upstream") == "app");
  CHECK(o.at("endpoint") == "127.0.0.1:5201");
  // Numbers are JSON numbers, not strings.
  CHECK(o.at("bytes_up").is_number());
  CHECK(o.at("bytes_up").to_number<std::uint64_t>() == 542638117);
  CHECK(o.at("bytes_down").to_number<std::uint64_t>() == 0);
  CHECK(o.at("duration_ms").to_number<std::uint64_t>() == 3017);
  CHECK(o.at("engine_up") == "splice");
  CHECK(o.at("engine_down") == "splice+copy");
  CHECK(o.at("close") == "eof");
  // The fields come in the text format's order, after the two times.
  CHECK(
      line.starts_with(R"({"time":"2026-11-25T17:02:20.123Z","start":"2026-11-25T17:02:17.106Z",)"
                       R"("client":"127.0.0.1:58590","listener":"web","sni":"api.example.com",)"));
}

TEST_CASE("the JSON access line: absent fields are null, 64-bit counts are exact", "[log]") {
  access_record r = refused_record();
  r.bytes_up = std::numeric_limits<std::uint64_t>::max();
  const json::object o = parse_line(format_access(r, access_log_format::json, now));
  for (const char* key : {"sni", "upstream", "endpoint", "engine_up", "engine_down"}) {
    INFO(key);
    CHECK(o.at(key).is_null());
  }
  CHECK(o.at("bytes_up").to_number<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());
  CHECK(o.at("start") == "2026-11-25T17:02:20.123Z");
  CHECK(o.at("close") == "denied");
}

TEST_CASE("the JSON access line escapes quotes, backslashes and control bytes", "[log]") {
  const std::string odd = std::string("a\"b\\c\nd\re\tf\x01g\x1fh") + '\0' + "i/\x7f";
  access_record r = full_record();
  r.listener = odd;
  r.client = "unix:/run/\"odd\".sock";
  const std::string line = format_access(r, access_log_format::json, now);
  // One line, and no raw control byte in it.
  for (char c : line) {
    INFO(static_cast<int>(static_cast<unsigned char>(c)));
    CHECK(static_cast<unsigned char>(c) >= 0x20);
  }
  CHECK_THAT(line, Catch::Contains(R"("listener":"a\"b\\c\nd\re\tf\u0001g\u001fh\u0000i/)"));
  const json::object o = parse_line(line);
  CHECK(std::string(o.at("listener").as_string()) == odd);
  CHECK(o.at("client") == "unix:/run/\"odd\".sock");
}

TEST_CASE("an access file that cannot be opened leaves the access log where it was", "[log]") {
  test::temp_dir d;
  const std::string good = d.file("access.log");
  const std::string blocked = d.file("plain", "a file, not a directory\n");
  zcproxy::log_config cfg;
  cfg.access_format = access_log_format::json;
  cfg.access_file = good;
  zcproxy::setup_logging(cfg);

  zcproxy::log_config bad;  // text, into a directory that is a file
  bad.access_file = blocked + "/access.log";
  CHECK_THROWS_WITH(zcproxy::setup_logging(bad),
                    Catch::StartsWith("log.access_file: ") && Catch::Contains(bad.access_file));
  REQUIRE(zcproxy::access_log_enabled());
  zcproxy::log_access(full_record());
  zcproxy::shutdown_logging();  // writes out what is queued
  CHECK_FALSE(zcproxy::access_log_enabled());
  const std::string written = test::slurp(good);
  CHECK(written.ends_with("\n"));
  CHECK(parse_line(written.substr(0, written.size() - 1)).at("listener") == "web");
  zcproxy::setup_logging({});  // back to the defaults (stdout) for whatever runs next
}

TEST_CASE("connect and interim lines say which they are, and the final line has no event",
          "[log]") {
  access_record connect = full_record();
  connect.event = zcproxy::access_event::connect;
  connect.connect_ms = 12;
  CHECK(format_access(connect, access_log_format::text, now) ==
        local_time_text(now) +
            ".123 access event=connect client=127.0.0.1:58590 listener=web sni=api.example.com "
            "upstream=app endpoint=127.0.0.1:5201 connect_ms=12");
  access_record interim = full_record();
  interim.event = zcproxy::access_event::interim;
  CHECK(format_access(interim, access_log_format::text, now) ==
        local_time_text(now) +
            ".123 access event=interim client=127.0.0.1:58590 listener=web sni=api.example.com "
            "upstream=app endpoint=127.0.0.1:5201 bytes_up=542638117 bytes_down=0 "
            "duration_ms=3017 engine_up=splice engine_down=splice+copy");
  CHECK(format_access(full_record(), access_log_format::text, now).find("event=") ==
        std::string::npos);

  const std::string connect_json = format_access(connect, access_log_format::json, now);
  CHECK(
      connect_json ==
      R"({"time":"2026-11-25T17:02:20.123Z","event":"connect","start":"2026-11-25T17:02:17.106Z",)"
      R"("client":"127.0.0.1:58590","listener":"web","sni":"api.example.com","upstream":"app",)"
      R"("endpoint":"127.0.0.1:5201","connect_ms":12})");
  const json::object i = parse_line(format_access(interim, access_log_format::json, now));
  CHECK(i.size() == 13);  // the final line's 13 fields, "event" instead of "close"
  CHECK(i.at("event") == "interim");
  CHECK(i.at("bytes_up").to_number<std::uint64_t>() == 542638117);
  CHECK(i.at("duration_ms").to_number<std::uint64_t>() == 3017);
  CHECK(i.at("engine_down") == "splice+copy");
  CHECK_FALSE(i.contains("close"));
  CHECK_FALSE(
      parse_line(format_access(full_record(), access_log_format::json, now)).contains("event"));
}
