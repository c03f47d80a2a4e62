// SNI routing on real loopback sockets: `openssl s_server` backends, each with a certificate of
// its own name, behind one listener with routes; `openssl s_client -servername` connects through
// it. The certificate a client sees names the backend it reached, and the reversed line it gets
// back proves the bytes after the ClientHello went both ways. Plain recording backends check the
// bytes forwarded exactly (split ClientHellos, non-TLS clients, a PROXY header first).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <string_view>
#include <thread>

#include "support/net.hpp"
#include "support/process.hpp"
#include "zcproxy/proxy_protocol.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

// `openssl s_server -rev` (it sends back each line reversed; a line "CLOSE" ends the connection)
// with a fresh self-signed certificate for `name`, on a port the kernel chooses.
struct tls_backend {
  tls_backend(const temp_dir& d, const std::string& name) : out(d.file(name + ".server.out")) {
    const std::string key = d.file(name + ".key"), cert = d.file(name + ".crt");
    process req("openssl",
                {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=" + name, "-days", "2"},
                "/dev/null", d.file(name + ".req.out"), d.file(name + ".req.err"));
    REQUIRE(req.wait() == 0);
    server = std::make_unique<process>(
        "openssl",
        std::vector<std::string>{"s_server", "-rev", "-accept", "127.0.0.1:0", "-cert", cert,
                                 "-key", key},
        "/dev/null", out, d.file(name + ".server.err"));
    const std::regex accept_line(R"(ACCEPT 127\.0\.0\.1:(\d+))");
    std::smatch m;
    std::string text;  // outlives the wait: m points into it
    REQUIRE(wait_until([&] {
      text = slurp(out);
      return std::regex_search(text, m, accept_line);
    }));
    port = static_cast<std::uint16_t>(std::stoi(m[1]));
  }

  std::string out;
  std::unique_ptr<process> server;
  std::uint16_t port = 0;
};

// What `openssl s_client` printed after sending `line` through the proxy on `port` with the
// server name `name` ("" sends none), waiting for the reply and closing.
std::string tls_round_trip(const temp_dir& d, std::uint16_t port, const std::string& name,
                           const std::string& line) {
  static int n = 0;
  const std::string tag = "client" + std::to_string(++n);
  const std::string in = d.file(tag + ".in", line + "\nCLOSE\n");
  std::vector<std::string> args{"s_client", "-ign_eof", "-connect",
                                "127.0.0.1:" + std::to_string(port)};
  if (name.empty()) {
    args.push_back("-noservername");
  } else {
    args.push_back("-servername");
    args.push_back(name);
  }
  process client("openssl", args, in, d.file(tag + ".out"), d.file(tag + ".err"));
  const int rc = client.wait(30s);
  INFO("s_client stderr: " << slurp(d.file(tag + ".err")));
  CHECK(rc == 0);
  return slurp(d.file(tag + ".out"));
}

std::string reversed(std::string s) {
  return {s.rbegin(), s.rend()};
}

// A backend that records every byte it receives on each connection.
struct recorder {
  std::mutex mutex;
  std::vector<std::string> streams;

  std::unique_ptr<upstream_server> start() {
    return std::make_unique<upstream_server>([this](fd s) {
      const bytes got = recv_all(s.get());
      std::lock_guard lock(mutex);
      streams.emplace_back(got.begin(), got.end());
    });
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return streams.size();
  }
};

std::string captured(const std::string& name) {
  return slurp(std::string(ZCPROXY_SOURCE_DIR) + "/tests/data/tls/" + name);
}

// A config: listener "tls" on 127.0.0.1:0 with `listener_keys` (its routes), and one upstream per
// (name, port).
zcproxy::config routed_config(const std::string& listener_keys,
                              const std::vector<std::pair<std::string, std::uint16_t>>& upstreams,
                              const std::string& engine = "splice") {
  std::string yaml =
      "threads: 2\nlog: { level: warn, access_log: false }\nrelay: { engine: " + engine +
      " }\nlisteners:\n  - { name: tls, bind: \"127.0.0.1:0\", " + listener_keys +
      " }\nupstreams:\n";
  for (const auto& [name, port] : upstreams)
    yaml += "  " + name + ": { endpoints: [\"127.0.0.1:" + std::to_string(port) + "\"] }\n";
  return zcproxy::load_config_string(yaml, "sni.yaml");
}

void send_in_pieces(int s, const std::string& data, std::size_t piece) {
  const int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (std::size_t at = 0; at < data.size(); at += piece) {
    send_all(s, data.data() + at, std::min(piece, data.size() - at));
    // Pacing, not waiting for an event: each piece leaves as a segment of its own and the
    // proxy's read returns with it alone.
    std::this_thread::sleep_for(5ms);
  }
}

}  // namespace

TEST_CASE("sni: openssl clients reach the backend their server name routes to, via splice",
          "[sni][integration]") {
  temp_dir d;
  tls_backend api(d, "api.example.com"), web(d, "web.example.com"), other(d, "fallback.test");
  proxy p(routed_config(
      "routes: [{sni: api.example.com, upstream: api}, {sni: \"*.example.com\", upstream: web}, "
      "{default: other}]",
      {{"api", api.port}, {"web", web.port}, {"other", other.port}}));

  struct expectation {
    const char* server_name;
    const char* backend;
  };
  for (const auto& e : {expectation{"api.example.com", "api.example.com"},
                        expectation{"API.Example.com", "api.example.com"},  // case-insensitive
                        expectation{"www.example.com", "web.example.com"},
                        expectation{"a.b.example.com", "web.example.com"},  // any depth
                        expectation{"example.com", "fallback.test"},        // not *.example.com
                        expectation{"unknown.test", "fallback.test"},
                        expectation{"", "fallback.test"}}) {  // no server_name: default
    INFO("server name \"" << e.server_name << "\"");
    const std::string line = std::string("hello via ") + e.server_name;
    const std::string out = tls_round_trip(d, p.port(), e.server_name, line);
    CHECK_THAT(out, Contains(std::string("subject=CN = ") + e.backend));
    CHECK_THAT(out, Contains(reversed(line)));
  }
  // Past the ClientHello, the bytes (the rest of the handshake and the data) went by splice.
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
  const auto st = p.srv->snapshot();
  CHECK(st.bytes_spliced > 0);
  CHECK(st.bytes_copied == 0);
}

TEST_CASE("sni: no route and no default closes the client without an upstream connect",
          "[sni][integration]") {
  temp_dir d;
  recorder rec;
  auto backend = rec.start();
  proxy p(
      routed_config("routes: [{sni: api.example.com, upstream: api}]", {{"api", backend->port()}}));
  for (const char* hello : {"openssl_no_sni.bin", "curl_sni.bin"}) {
    INFO(hello);
    // curl's names api.example.com, which is routed: the control.
    fd c = connect_to(p.port());
    send_all(c.get(), captured(hello).data(), captured(hello).size());
    // Not shutdown_write: the proxy may have reset the unrouted client already (ENOTCONN).
    ::shutdown(c.get(), SHUT_WR);
    const stream_end e = recv_to_end(c.get());
    CHECK(e.data.empty());
    if (std::string_view(hello) == "openssl_no_sni.bin") CHECK(e.reset);  // no_route: reset
  }
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  CHECK(rec.streams[0] == captured("curl_sni.bin"));
  CHECK(backend->accepted() == 1);
}

TEST_CASE("sni: a ClientHello split across segments is routed and forwarded byte for byte",
          "[sni][integration]") {
  recorder api, web;
  auto api_backend = api.start(), web_backend = web.start();
  proxy p(routed_config(
      "routes: [{sni: api.example.com, upstream: api}, {default: web}], sni_timeout: 10s",
      {{"api", api_backend->port()}, {"web", web_backend->port()}}));
  const std::string hello = captured("openssl_tls13_sni.bin");
  const bytes tail = random_bytes(1 << 20, 7);  // what a client sends after its hello
  for (std::size_t piece : {1, 5, 100}) {
    INFO("pieces of " << piece << " bytes");
    fd c = connect_to(p.port());
    // The first 300 bytes in pieces, then the rest of the hello and the tail at once.
    send_in_pieces(c.get(), hello.substr(0, 300), piece);
    send_all(c.get(), hello.data() + 300, hello.size() - 300);
    send_all(c.get(), tail);
    shutdown_write(c.get());
    CHECK(recv_all(c.get()).empty());
  }
  REQUIRE(wait_until([&] { return api.count() == 3; }));
  const std::string expected = hello + std::string(tail.begin(), tail.end());
  for (const auto& got : api.streams) {
    CHECK(got.size() == expected.size());
    CHECK(got == expected);
  }
  CHECK(web.count() == 0);
}

TEST_CASE("sni: non-TLS bytes go to the default route with non_tls: default, else are closed",
          "[sni][integration]") {
  recorder rec;
  auto backend = rec.start();
  const std::string plain = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
  SECTION("non_tls: default forwards them unchanged") {
    proxy p(
        routed_config("routes: [{sni: api.example.com, upstream: api}, {default: plain}], "
                      "non_tls: default",
                      {{"api", dead_port()}, {"plain", backend->port()}}));
    fd c = connect_to(p.port());
    send_all(c.get(), plain.data(), plain.size());
    shutdown_write(c.get());
    CHECK(recv_all(c.get()).empty());
    REQUIRE(wait_until([&] { return rec.count() == 1; }));
    CHECK(rec.streams[0] == plain);
  }
  SECTION("non_tls: close (the default) closes them, and a malformed ClientHello likewise") {
    proxy p(routed_config("routes: [{sni: api.example.com, upstream: api}, {default: plain}]",
                          {{"api", dead_port()}, {"plain", backend->port()}}));
    std::string malformed = captured("openssl_tls13_sni.bin");
    malformed[5] = 2;  // a ServerHello's type where the ClientHello's belongs
    for (const std::string& first : {plain, malformed}) {
      fd c = connect_to(p.port());
      send_all(c.get(), first.data(), first.size());
      const stream_end e = recv_to_end(c.get());
      CHECK(e.data.empty());
      CHECK(e.reset);
    }
    p.wait_sessions();
    CHECK(backend->accepted_settled() == 0);
  }
}

TEST_CASE(
    "sni: a client that never completes its ClientHello is closed at sni_timeout while "
    "others are served",
    "[sni][integration]") {
  recorder rec;
  auto backend = rec.start();
  proxy p(
      routed_config("routes: [{default: app}], sni_timeout: 300ms", {{"app", backend->port()}}));
  const std::string hello = captured("openssl_tls13_sni.bin");
  std::vector<fd> slow;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {  // slowloris: a few bytes of a valid hello, then silence
    slow.push_back(connect_to(p.port()));
    send_all(slow.back().get(), hello.data(), 10);
  }
  // A well-behaved client is served meanwhile.
  fd good = connect_to(p.port());
  send_all(good.get(), hello.data(), hello.size());
  shutdown_write(good.get());
  CHECK(recv_all(good.get()).empty());
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  CHECK(rec.streams[0] == hello);
  for (auto& s : slow) CHECK(recv_to_end(s.get()).data.empty());
  const auto waited = std::chrono::steady_clock::now() - started;
  CHECK(waited >= 300ms);
  CHECK(waited < 5s);
  CHECK(backend->accepted() == 1);
  REQUIRE(wait_until([&] { return p.srv->snapshot().sessions == 0; }));
}

TEST_CASE("sni: with accept_proxy, the PROXY header comes first and the ClientHello after it",
          "[sni][proxy][integration]") {
  recorder rec;
  auto backend = rec.start();
  proxy p(routed_config(
      "accept_proxy: true, routes: [{sni: api.example.com, upstream: api}, {default: none}]",
      {{"api", backend->port()}, {"none", dead_port()}}));
  const std::string hello = captured("openssl_tls12_sni.bin");
  const std::string header = zcproxy::proxy_protocol::encode_v1(
      *zcproxy::parse_address("192.0.2.1:40000"), *zcproxy::parse_address("192.0.2.2:443"));
  fd c = connect_to(p.port());
  send_all(c.get(), (header + hello).data(), header.size() + hello.size());
  shutdown_write(c.get());
  CHECK(recv_all(c.get()).empty());
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  CHECK(rec.streams[0] == hello);  // the header was consumed, the hello forwarded whole
}

TEST_CASE(
    "sni: the access log shows the server name, the PROXY header's client and splice for "
    "the bytes after the header and the ClientHello",
    "[sni][proxy][binary]") {
  temp_dir d;
  upstream_server backend([](fd s) {  // echo
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      send_all(s.get(), buf, static_cast<std::size_t>(n));
    }
  });
  running_proxy r(d,
                  "threads: 2\nlog: { level: info, access_log: true }\nrelay: { engine: splice }\n"
                  "listeners:\n"
                  "  - name: tls\n    bind: \"127.0.0.1:0\"\n    accept_proxy: true\n"
                  "    routes: [{sni: api.example.com, upstream: api}]\n"
                  "upstreams:\n  api: { endpoints: [\"127.0.0.1:" +
                      std::to_string(backend.port()) + "\"] }\n",
                  "tls");
  const std::string header = zcproxy::proxy_protocol::encode_v1(
      *zcproxy::parse_address("192.0.2.1:40000"), *zcproxy::parse_address("192.0.2.2:443"));
  const std::string hello = captured("openssl_tls13_sni.bin");
  const bytes payload = random_bytes(4 << 20, 3);
  fd c = connect_to(r.port);
  send_all(c.get(), (header + hello).data(), header.size() + hello.size());
  thread_group writer;
  writer.spawn([&] {
    send_all(c.get(), payload);
    shutdown_write(c.get());
  });
  const bytes got = recv_all(c.get());
  writer.join();
  CHECK(got.size() == hello.size() + payload.size());
  CHECK(std::string(got.begin(), got.begin() + hello.size()) == hello);
  REQUIRE(wait_until([&] { return slurp(d.file("out")).find("close=") != std::string::npos; }));
  const std::string access = slurp(d.file("out"));
  CHECK_THAT(access, Contains("client=192.0.2.1:40000 listener=tls sni=api.example.com "
                              "upstream=api endpoint=127.0.0.1:" +
                              std::to_string(backend.port())));
  CHECK_THAT(access, Contains("bytes_up=" + std::to_string(hello.size() + payload.size())) &&
                         Contains("engine_up=splice engine_down=splice close=eof"));
}
