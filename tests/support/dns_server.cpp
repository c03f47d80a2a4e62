#include "support/dns_server.hpp"

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "support/net.hpp"

namespace test {
namespace {

// A port on 127.0.0.1 free now for both UDP and TCP (dnsmasq binds both); 0 when this try found
// none.
std::uint16_t free_port() {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  fd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!tcp || !udp || ::bind(tcp.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
      ::getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::runtime_error("no port for dnsmasq");
  if (::bind(udp.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) return 0;
  return ntohs(sa.sin_port);
}

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("rename " + tmp);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

dns_server::dns_server(const temp_dir& d, const std::string& hosts)
    : hosts_path_(d.file("hosts")), log_path_(d.file("dnsmasq.log")) {
  write_file(hosts_path_, hosts);
  const passwd* me = ::getpwuid(::geteuid());  // dnsmasq started as root would become nobody
  for (int attempt = 0; attempt < 20 && !proc_; ++attempt) {
    port_ = free_port();
    if (port_ == 0) continue;
    auto p = std::make_unique<process>(
        "/usr/sbin/dnsmasq",
        std::vector<std::string>{
            "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--addn-hosts=" + hosts_path_, "--listen-address=127.0.0.1", "--bind-interfaces",
            "--port=" + std::to_string(port_), "--local-ttl=1", "--local=/test/",
            "--log-facility=-",
            "--pid-file=", std::string("--user=") + (me ? me->pw_name : "root")},
        "/dev/null", d.file("dnsmasq.out"), log_path_);
    // Started: it says it read the hosts file. A port taken meanwhile: it says so, and exits.
    std::string log;
    wait_until(
        [&] {
          log = slurp(log_path_);
          return count(log, "read " + hosts_path_) > 0 || count(log, "dnsmasq: ") > 0;
        },
        10s);
    if (count(log, "read " + hosts_path_) > 0) proc_ = std::move(p);
  }
  if (!proc_) throw std::runtime_error("dnsmasq did not start: " + slurp(log_path_));
}

dns_server::~dns_server() {
  if (!proc_) return;
  ::kill(proc_->pid, SIGCONT);
  ::kill(proc_->pid, SIGTERM);
  proc_->wait();
}

void dns_server::set_hosts(const std::string& hosts) {
  const std::string read = "read " + hosts_path_;
  const std::size_t reads = count(slurp(log_path_), read);
  write_file(hosts_path_, hosts);
  ::kill(proc_->pid, SIGHUP);
  if (!wait_until([&] { return count(slurp(log_path_), read) > reads; }, 10s))
    throw std::runtime_error("dnsmasq did not reread its hosts file: " + slurp(log_path_));
}

void dns_server::pause() {
  ::kill(proc_->pid, SIGSTOP);
}

void dns_server::resume() {
  ::kill(proc_->pid, SIGCONT);
}

}  // namespace test
