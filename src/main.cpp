// zcproxy: parse the command line, load the config, run the server inside its control plane.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "zcproxy/admin.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/control_plane.hpp"
#include "zcproxy/inherited.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/privileges.hpp"
#include "zcproxy/resolver.hpp"
#include "zcproxy/source.hpp"

namespace {

constexpr const char* usage =
    "usage: zcproxy -c FILE          run with the config in FILE\n"
    "       zcproxy -c FILE --takeover  run, taking the listening sockets of the zcproxy that\n"
    "                                serves FILE's upgrade_socket, which then stops accepting\n"
    "                                and drains\n"
    "       zcproxy --check -c FILE  validate FILE, print what it would listen on and forward to\n"
    "       zcproxy --version | --help\n"
    "\n"
    "Signals: SIGINT/SIGTERM stop accepting and let open connections finish for up to\n"
    "drain_timeout; a second one closes them at once. SIGHUP reloads FILE: a bad one is\n"
    "refused with its errors logged and the running config stays; a good one applies to new\n"
    "connections, open ones run on unchanged. SIGUSR1 reopens log.access_file (logrotate).\n"
    "Exit codes: 0 ok; 2 bad usage, a bad config or a failure to start (an address in use, a\n"
    "privileged port without the right to bind it, a user it cannot switch to, a take-over\n"
    "that got no sockets, an upstream source: it cannot bind).\n"
    "Sockets passed by systemd (LISTEN_FDS, FileDescriptorName= a listener's name) are used\n"
    "instead of binding.\n";

void print_plan(const zcproxy::config& cfg) {
  std::printf("config %s is valid\n", cfg.source.c_str());
  std::printf("threads: %u, engine: %s, pipe_size: %zu, max_pipes: %zu, buffer_size: %zu\n",
              cfg.effective_threads(), std::string(to_string(cfg.relay.engine)).c_str(),
              cfg.relay.pipe_size, cfg.relay.max_pipes, cfg.relay.buffer_size);
  if (cfg.log.access_log)
    std::printf("access log: %s to %s\n", std::string(to_string(cfg.log.access_format)).c_str(),
                cfg.log.access_file.empty() ? "stdout" : cfg.log.access_file.c_str());
  for (const auto& l : cfg.listeners)
    std::printf("listener %s: %s -> %s\n", l.name.c_str(), l.bind.to_string().c_str(),
                l.destination().c_str());
  if (cfg.admin.enabled)
    std::printf("admin: %s (%s)\n", cfg.admin.bind.to_string().c_str(),
                zcproxy::admin_paths(cfg.admin).c_str());
  if (!cfg.upgrade_socket.empty())
    std::printf("upgrade socket: %s (zcproxy --takeover -c FILE takes over)\n",
                cfg.upgrade_socket.c_str());
  for (const auto& u : cfg.upstreams) {
    std::printf("upstream %s: [", u.name.c_str());
    for (std::size_t i = 0; i < u.endpoints.size(); ++i)
      std::printf("%s%s", i ? ", " : "", to_string(u.endpoints[i]).c_str());
    std::printf("]\n");
  }
}

// Names among the endpoints that do not resolve now: a warning each (the proxy would start, and
// their endpoints stay unusable until they resolve).
void check_names(const zcproxy::config& cfg) {
  for (const auto& name : zcproxy::names_in(cfg)) {
    const auto a = zcproxy::resolver::resolve_once(name, std::chrono::seconds(5));
    if (a.result == zcproxy::dns_result::ok)
      std::printf("name %s: %zu address(es)\n", name.host.c_str(), a.addresses.size());
    else
      std::printf(
          "warning: name %s does not resolve now (%s: %s); its endpoints stay unusable "
          "until it does\n",
          name.host.c_str(), std::string(to_string(a.result)).c_str(), a.detail.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  bool check = false;
  bool takeover = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (arg == "--version" || arg == "-V") {
      std::printf("zcproxy %s\n", ZCPROXY_VERSION);
      return 0;
    } else if (arg == "--takeover") {
      takeover = true;
    } else if (arg == "--check") {
      check = true;
    } else if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      file = argv[++i];
    } else {
      std::fprintf(stderr, "zcproxy: unexpected argument '%s'\n%s", arg.c_str(), usage);
      return 2;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "zcproxy: no config file given (-c FILE)\n%s", usage);
    return 2;
  }

  zcproxy::config cfg;
  try {
    cfg = zcproxy::load_config_file(file);
  } catch (const zcproxy::config_error& e) {
    std::fprintf(stderr, "zcproxy: invalid config:\n");
    for (const auto& line : e.errors()) std::fprintf(stderr, "  %s\n", line.c_str());
    return 2;
  }
  if (check) {
    print_plan(cfg);
    check_names(cfg);
    // What a start would fail on (exit 2), asked of this process as it runs now.
    if (auto problems = zcproxy::source_problems(cfg.upstreams); !problems.empty()) {
      std::fprintf(stderr, "zcproxy: %s\n", problems.c_str());
      return 2;
    }
    return 0;
  }
  try {
    zcproxy::limit_core_dumps(cfg.core_dumps);
    zcproxy::control_plane process(std::move(cfg));
    process.runtime().inherit(zcproxy::systemd_sockets());
    if (takeover) process.take_over();
    const int code = process.run_until_signalled();
    zcproxy::shutdown_logging();  // the access lines still queued, before exit
    return code;
  } catch (const std::exception& e) {
    // What stops a start (an address in use, a port that needs privileges, a file or user that
    // cannot be had) is the operator's to fix, as a bad config is: the same exit code.
    std::fprintf(stderr, "zcproxy: %s\n", e.what());
    return 2;
  }
}
