// watch_config: the binary reloads its config when the file changes on disk, as on SIGHUP: each
// way a file is replaced (a ConfigMap's `..data` symlink swap, a write in place, a rename over the
// path) gives one reload, even while other files in the folder keep changing; a bad file is refused
// and the old config serves on until the next good one; a change during a drain is refused. Which
// config serves is seen by where a new connection goes (backend a or b); reloads are counted by
// /metrics.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/prometheus.hpp"

using namespace test;
namespace fs = std::filesystem;

namespace {

// How long a change may take to be reloaded: 1 s, as promised; a sanitizer's build is slower.
#ifdef ZCPROXY_SANITIZED
constexpr auto reload_bound = std::chrono::seconds(3);
#else
constexpr auto reload_bound = std::chrono::seconds(1);
#endif

std::string config_for(std::uint16_t backend) {
  return "threads: 1\nlog: { level: info, access_log: false }\nwatch_config: true\n"
         "drain_timeout: 30s\nadmin: { bind: \"127.0.0.1:0\" }\nlisteners:\n"
         "  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
         "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
         std::to_string(backend) + "\"] }\n";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

// The one byte the backend behind the proxy answers a new connection with.
char served_by(std::uint16_t port) {
  fd c = connect_to(port);
  const bytes got = recv_all(c.get());
  REQUIRE(got.size() == 1);
  return got[0];
}

double reloads(std::uint16_t admin, const char* result) {
  return scrape_metrics(admin).at(std::string("zcproxy_config_reloads_total{result=\"") + result +
                                  "\"}");
}

// Waits (bounded) until /metrics counts `want` reloads with `result`; returns how long it took.
std::chrono::milliseconds until_reloads(std::uint16_t admin, const char* result, double want) {
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] { return reloads(admin, result) >= want; }, std::chrono::seconds(20)));
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

}  // namespace

TEST_CASE(
    "watch_config: each way a file is replaced reloads once, a bad file is refused, and a "
    "drain refuses a change",
    "[reload][binary]") {
  temp_dir d;
  upstream_server a([](fd s) { send_all(s.get(), "a", 1); });
  upstream_server b([](fd s) { send_all(s.get(), "b", 1); });
  // A ConfigMap as the kubelet mounts it: zcproxy.yaml -> ..data/zcproxy.yaml, ..data -> a
  // timestamped folder.
  fs::create_directory(d.path + "/..2026_12_06_1");
  fs::create_directory_symlink("..2026_12_06_1", d.path + "/..data");
  fs::create_symlink("..data/zcproxy.yaml", d.path + "/zcproxy.yaml");
  running_proxy zc(d, config_for(a.port()), "web");  // written through the links
  REQUIRE(fs::is_symlink(zc.config));
  const std::uint16_t admin = zc.port_of("admin");
  CHECK(served_by(zc.port) == 'a');

  // 1. The kubelet's update: a new folder, a new ..data link renamed over the old one.
  fs::create_directory(d.path + "/..2026_12_06_2");
  write_file(d.path + "/..2026_12_06_2/zcproxy.yaml", config_for(b.port()));
  fs::create_directory_symlink("..2026_12_06_2", d.path + "/..data_tmp");
  fs::rename(d.path + "/..data_tmp", d.path + "/..data");
  auto took = until_reloads(admin, "applied", 1);
  INFO("symlink swap reloaded in " << took.count() << " ms");
  CHECK(took < reload_bound);
  CHECK(served_by(zc.port) == 'b');

  // 2. A write in place (through the links, into the file they reach), while another file in the
  // folder is written every 20 ms (a log, say): that traffic does not hold the reload back.
  std::atomic<bool> noisy{true};
  std::thread noise([&] {
    for (int i = 0; noisy && i < 1000; ++i) {
      write_file(d.path + "/noise.log", std::to_string(i));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  write_file(zc.config, config_for(a.port()));
  took = until_reloads(admin, "applied", 2);
  noisy = false;
  noise.join();
  INFO("write in place reloaded in " << took.count() << " ms");
  CHECK(took < reload_bound);
  CHECK(served_by(zc.port) == 'a');

  // 3. An editor's save: a new file renamed over the path (the link goes, a file takes its place).
  write_file(d.path + "/zcproxy.yaml.new", config_for(b.port()));
  fs::rename(d.path + "/zcproxy.yaml.new", zc.config);
  took = until_reloads(admin, "applied", 3);
  INFO("rename over reloaded in " << took.count() << " ms");
  CHECK(took < reload_bound);
  CHECK(served_by(zc.port) == 'b');

  // 4. A bad file: refused, the running config serves on; the next good one is taken.
  write_file(zc.config, "listeners: [\n");
  until_reloads(admin, "refused", 1);
  CHECK(served_by(zc.port) == 'b');
  write_file(zc.config, config_for(a.port()));
  until_reloads(admin, "applied", 4);
  CHECK(served_by(zc.port) == 'a');
  // One reload per change: four good ones and a bad one, nothing twice.
  CHECK(reloads(admin, "applied") == 4);
  CHECK(reloads(admin, "refused") == 1);
  CHECK_THAT(zc.log(), Catch::Contains("watch_config: " + zc.config + " changed; reloading"));
  CHECK_THAT(zc.log(), Catch::Contains("reload: changed: upstreams ~app"));

  // 5. During a drain (a connection held open), a change is refused as SIGHUP's would be.
  upstream_server quiet([](fd s) { recv_all(s.get()); });
  write_file(zc.config, config_for(quiet.port()));
  until_reloads(admin, "applied", 5);
  fd held = connect_to(zc.port);
  REQUIRE(wait_until([&] { return quiet.accepted() >= 1; }));
  REQUIRE(::kill(zc.proc.pid, SIGTERM) == 0);
  REQUIRE(wait_until([&] { return zc.log().find("draining") != std::string::npos; }));
  write_file(zc.config, config_for(b.port()));
  until_reloads(admin, "refused", 2);
  CHECK_THAT(zc.log(), Catch::Contains("the server is shutting down"));
  CHECK(reloads(admin, "applied") == 5);
  shutdown_write(held.get());
  held.close();
  CHECK(zc.proc.wait() == 0);
}
