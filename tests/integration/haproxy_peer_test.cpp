// The PROXY header zcproxy sends, read by a real receiver: HAProxy (Debian's haproxy, installed
// by tests/run.sh) with `accept-proxy`, answering with the client address it took from the
// header. v1 and v2, TCP and Unix clients, both engines.
#include <signal.h>

#include <catch2/catch.hpp>
#include <string>

#include "support/net.hpp"
#include "support/process.hpp"

using namespace test;

namespace {

// HAProxy on 127.0.0.1:port, accepting only connections that start with a PROXY header, and
// answering every HTTP request with "src=<the client's address as the header gave it>".
struct haproxy {
  explicit haproxy(const temp_dir& d)
      : port(dead_port()),
        proc("/usr/sbin/haproxy", {"-db", "-f", d.file("haproxy.cfg", config(port))}, "/dev/null",
             d.file("haproxy.out"), d.file("haproxy.err")),
        err(d.file("haproxy.err")) {
    REQUIRE(proc.pid > 0);
    INFO(slurp(err));
    REQUIRE(wait_until([&] { return can_connect(port); }, 20s));
  }

  static std::string config(std::uint16_t port) {
    return "global\n"
           "  maxconn 100\n"
           "defaults\n"
           "  mode http\n"
           "  timeout connect 5s\n"
           "  timeout client 10s\n"
           "  timeout server 10s\n"
           "frontend f\n"
           "  bind 127.0.0.1:" +
           std::to_string(port) +
           " accept-proxy\n"
           "  http-request return status 200 content-type text/plain lf-string \"src=%[src]\"\n";
  }

  std::uint16_t port;
  process proc;
  std::string err;
};

// One HTTP request on `c`; the whole answer.
std::string ask(fd c) {
  send_all(c.get(), "GET / HTTP/1.0\r\nHost: x\r\n\r\n", 27);
  const stream_end e = recv_to_end(c.get());
  return std::string(e.data.begin(), e.data.end());
}

}  // namespace

TEST_CASE(
    "haproxy peer: HAProxy with accept-proxy takes zcproxy's v1 and v2 headers from TCP "
    "and Unix clients",
    "[proxy_protocol][haproxy][integration]") {
  const std::string engine = GENERATE("splice", "copy");
  const std::string version = GENERATE("v1", "v2");
  INFO("engine " << engine << ", send_proxy " << version);
  temp_dir d;
  haproxy hap(d);
  const std::string sock = d.path + "/zc.sock";
  proxy p(zcproxy::load_config_string(
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
          " }\n"
          "listeners:\n"
          "  - { name: tcp, bind: \"127.0.0.1:0\", upstream: hap }\n"
          "  - { name: unix, bind: \"unix:" +
          sock +
          "\", upstream: hap }\n"
          "upstreams:\n  hap: { endpoints: [\"127.0.0.1:" +
          std::to_string(hap.port) + "\"], send_proxy: " + version + " }\n",
      "haproxy_peer.yaml"));

  // A TCP client: HAProxy sees its own address (127.0.0.5), not zcproxy's.
  const std::string tcp = ask(connect_from("127.0.0.5", p.port()));
  CHECK_THAT(tcp, Catch::StartsWith("HTTP/1.1 200") && Catch::EndsWith("src=127.0.0.5"));
  // A Unix client has no address: v1 UNKNOWN, v2 LOCAL, and HAProxy uses the connection's.
  const std::string unix_answer = ask(connect_unix(sock));
  CHECK_THAT(unix_answer, Catch::StartsWith("HTTP/1.1 200") && Catch::EndsWith("src=127.0.0.1"));
  INFO(slurp(hap.err));
  CHECK(::kill(hap.proc.pid, SIGTERM) == 0);
  CHECK(hap.proc.wait() >= 0);
}
