// fallback_response: when no endpoint of a listener's upstream can be reached, the client gets
// the file's bytes (sendfile(2) from a sealed memfd; a plain write where sendfile is refused),
// then a clean end of stream.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "control/metrics.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"
#include "zcproxy/sys.hpp"

using namespace test;

namespace {

// A kernel that refuses sendfile, through the syscall seam.
struct sendfile_refusal {
  explicit sendfile_refusal(bool on) : on_(on) {
    if (on_)
      zcproxy::sys::sendfile = [](int, int, off_t*, size_t) -> ssize_t {
        errno = EINVAL;
        return -1;
      };
  }
  ~sendfile_refusal() { zcproxy::sys::sendfile = ::sendfile; }
  bool on_;
};

// A listener `web` with fallback_response `file` (as written in the config), in front of
// `endpoints`; the config file lives in d, so a relative `file` is d's.
zcproxy::config fallback_config(const temp_dir& d, const std::string& file,
                                const std::vector<std::uint16_t>& endpoints,
                                const std::string& upstream_extra = "") {
  std::string eps;
  for (auto p : endpoints)
    eps += (eps.empty() ? "" : ", ") + ("\"127.0.0.1:" + std::to_string(p) + "\"");
  const std::string yaml =
      "threads: 2\nlog: { level: warn, access_log: false }\n"
      "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app, fallback_response: " +
      file + " }\nupstreams:\n  app: { endpoints: [" + eps + "]" + upstream_extra + " }\n";
  return zcproxy::load_config_string(yaml, d.file("zcproxy.yaml", yaml));
}

std::string as_string(const bytes& b) {
  return {b.begin(), b.end()};
}

const std::string response =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
    "Connection: close\r\n\r\nno backend is up :(\n";

}  // namespace

TEST_CASE("fallback: with every endpoint refusing, a client gets exactly the file, then EOF",
          "[fallback][integration]") {
  const bool refuse = GENERATE(false, true);
  INFO((refuse ? "sendfile refused: plain write" : "sendfile"));
  sendfile_refusal refusal(refuse);
  temp_dir d;
  d.file("503.http", response);
  proxy p(fallback_config(d, "503.http", {dead_port(), dead_port()}));
  for (int i = 0; i < 3; ++i) {
    fd c = connect_to(p.port());
    // An HTTP client sends its request first: the response still arrives whole (no reset).
    send_all(c.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    const stream_end end = recv_to_end(c.get());
    CHECK(as_string(end.data) == response);
    CHECK_FALSE(end.reset);
  }
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  const auto st = p.srv->snapshot();
  REQUIRE(st.listeners.size() == 1);
  CHECK(st.listeners[0].closed[zcproxy::close_reason::fallback] == 3);
  CHECK(st.listeners[0].bytes_down == 3 * response.size());
}

namespace {

// sendfile through the seam, at most 16 KiB a call, and every other call refused with EAGAIN as
// a full socket buffer would (loopback's send buffer can grow to hold the whole file, so a real
// one is not certain): partial writes and readiness waits, for certain.
std::atomic<int> sendfile_calls{0}, sendfile_eagains{0};
ssize_t sendfile_in_pieces(int out, int in, off_t* offset, size_t count) {
  if (++sendfile_calls % 2 == 0) {
    ++sendfile_eagains;
    errno = EAGAIN;
    return -1;
  }
  return ::sendfile(out, in, offset, std::min<size_t>(count, 16 << 10));
}

}  // namespace

TEST_CASE("fallback: a 1 MiB file reaches a client whole, through partial writes and EAGAIN",
          "[fallback][integration]") {
  sendfile_calls = 0;
  sendfile_eagains = 0;
  zcproxy::sys::sendfile = sendfile_in_pieces;
  sendfile_refusal restore(false);  // puts ::sendfile back at the end
  temp_dir d;
  const bytes big = random_bytes(zcproxy::max_fallback_bytes, 5);
  std::ofstream(d.file("big.bin"), std::ios::binary).write(big.data(), big.size());
  proxy p(fallback_config(d, d.path + "/big.bin", {dead_port()}));
  fd c = connect_to(p.port());
  const stream_end end = recv_to_end(c.get());
  CHECK(end.data.size() == big.size());
  CHECK(checksum(end.data) == checksum(big));
  CHECK_FALSE(end.reset);
  CHECK(sendfile_calls == 127);  // 64 pieces of 16 KiB, a refusal between each two
  CHECK(sendfile_eagains == 63);
}

TEST_CASE("fallback: the bytes sent are the file as loaded, until a reload reads it again",
          "[fallback][integration][reload]") {
  temp_dir d;
  const std::string path = d.file("503.http", "old body\n");
  proxy p(fallback_config(d, "503.http", {dead_port()}));
  std::ofstream(path, std::ios::trunc) << "new body, longer than the old one\n";
  {
    fd c = connect_to(p.port());
    CHECK(as_string(recv_all(c.get())) == "old body\n");
  }
  REQUIRE(p.srv->reload(fallback_config(d, "503.http", {dead_port()})).error.empty());
  fd c = connect_to(p.port());
  CHECK(as_string(recv_all(c.get())) == "new body, longer than the old one\n");
}

TEST_CASE("fallback: only when no endpoint can be reached, a reachable one is relayed as ever",
          "[fallback][integration]") {
  upstream_server up([](fd s) { send_all(s.get(), recv_all(s.get())); });
  temp_dir d;
  d.file("503.http", response);
  // The dead endpoint first in round-robin order, then the live one: a connection moves on to it.
  proxy p(fallback_config(d, "503.http", {dead_port(), up.port()}));
  for (int i = 0; i < 4; ++i) {
    fd c = connect_to(p.port());
    send_all(c.get(), "ping", 4);
    shutdown_write(c.get());
    CHECK(as_string(recv_all(c.get())) == "ping");
  }
  CHECK(p.srv->snapshot().listeners.at(0).closed[zcproxy::close_reason::fallback] == 0);
}

TEST_CASE("fallback: the binary's access log and metrics say fallback", "[fallback][binary]") {
  temp_dir d;
  d.file("503.http", response);
  running_proxy zc(d,
                   "log: { level: info, access_log: true }\nadmin: { bind: \"127.0.0.1:0\" }\n"
                   "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app, "
                   "fallback_response: 503.http }\nupstreams:\n  app: { endpoints: [\"127.0.0.1:" +
                       std::to_string(dead_port()) + "\"] }\n",
                   "web");
  {
    fd c = connect_to(zc.port);
    CHECK(as_string(recv_all(c.get())) == response);
  }
  REQUIRE(
      wait_until([&] { return slurp(d.file("out")).find("close=fallback") != std::string::npos; }));
  CHECK_THAT(slurp(d.file("out")),
             Catch::Contains("bytes_up=0 bytes_down=" + std::to_string(response.size())));
  std::smatch m;
  const std::string log = zc.log();
  REQUIRE(std::regex_search(log, m, std::regex(R"(admin on 127\.0\.0\.1:(\d+))")));
  const auto metrics = scrape_metrics(static_cast<std::uint16_t>(std::stoi(m[1])));
  CHECK(metrics.at(
            R"(zcproxy_listener_connections_closed_total{listener="web",reason="fallback"})") == 1);
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  CHECK(zc.proc.wait() == 0);
}
