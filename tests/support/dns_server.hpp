// A real DNS server on loopback for the tests: dnsmasq (Debian dnsmasq-base) on a port of its
// own, answering for *.test from a hosts file the test rewrites, with a TTL of 1 s; other names
// under .test are NXDOMAIN, and nothing is forwarded anywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "support/process.hpp"

namespace test {

class dns_server {
 public:
  // `hosts`: lines "ADDRESS NAME" (an /etc/hosts file), kept in `d`.
  dns_server(const temp_dir& d, const std::string& hosts);
  ~dns_server();
  std::uint16_t port() const { return port_; }
  // "127.0.0.1:PORT", for a config's `resolvers:`.
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Rewrite the hosts file and make dnsmasq read it again (SIGHUP); returns once it has.
  void set_hosts(const std::string& hosts);
  // Stop answering (SIGSTOP: queries time out), and answer again.
  void pause();
  void resume();

 private:
  std::string hosts_path_, log_path_;
  std::uint16_t port_ = 0;
  std::unique_ptr<process> proc_;
};

}  // namespace test
