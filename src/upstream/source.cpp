#include "zcproxy/source.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "zcproxy/connect.hpp"
#include "zcproxy/sys.hpp"

namespace zcproxy {

namespace {

// What binding `u`'s source meets on a fresh socket: the same calls a connect makes
// (bind_source), with the client's address stood in for by a documentation one (198.51.100.1,
// never this host's: only IP_TRANSPARENT lets a socket bind it).
std::string problem_of(const upstream_config& u) {
  address stand_in;
  stand_in.ip = "198.51.100.1";
  const bool client = u.source.kind == source_kind::client;
  const address& at = client ? stand_in : u.source.fixed;
  const int fd = ::socket(at.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return "upstream " + u.name +
           ": source: cannot open a socket: " + sys::errno_error(errno).message();
  const auto ec = bind_source(fd, {&at, client});
  ::close(fd);
  if (!ec) return "";
  if (client)
    return "upstream " + u.name +
           ": source: client needs CAP_NET_ADMIN (IP_TRANSPARENT: " + ec.message() +
           "): run zcproxy as root (with `user:` it keeps CAP_NET_ADMIN alone), or grant it "
           "(systemd: AmbientCapabilities=CAP_NET_ADMIN)";
  return "upstream " + u.name + ": source: " + at.ip + ": cannot bind it: " + ec.message() +
         (ec.value() == EADDRNOTAVAIL ? " (not an address of this host)" : "");
}

}  // namespace

std::string source_problems(const std::vector<upstream_config>& upstreams) {
  std::string out;
  for (const auto& u : upstreams)
    if (u.source.kind != source_kind::none)
      if (auto p = problem_of(u); !p.empty()) out += (out.empty() ? "" : "; ") + p;
  return out;
}

bool needs_transparent(const std::vector<upstream_config>& upstreams) {
  for (const auto& u : upstreams)
    if (u.source.kind == source_kind::client) return true;
  return false;
}

}  // namespace zcproxy
