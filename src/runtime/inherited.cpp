#include "zcproxy/inherited.hpp"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace zcproxy {

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

void unique_fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<inherited_listener> systemd_sockets() {
  char** names = nullptr;
  // unset_environment: the variables name this process's fds; a child must not believe them.
  const int n = ::sd_listen_fds_with_names(1, &names);
  if (n < 0)
    throw std::runtime_error(std::string("socket activation: LISTEN_FDS: ") + std::strerror(-n));
  std::vector<inherited_listener> out;
  for (int i = 0; i < n; ++i) {
    // sd_listen_fds has set FD_CLOEXEC on each: nothing it hands us crosses an exec.
    const std::string name = names && names[i] ? names[i] : "unknown";
    auto it = out.begin();
    while (it != out.end() && it->name != name) ++it;
    if (it == out.end()) it = out.insert(out.end(), inherited_listener{name, std::nullopt, {}});
    it->fds.emplace_back(SD_LISTEN_FDS_START + i);
  }
  if (names)
    for (int i = 0; i < n; ++i) std::free(names[i]);
  std::free(names);
  return out;
}

std::vector<unique_fd> take_sockets(std::vector<inherited_listener>& from,
                                    const listener_config& lc) {
  auto pick = [&](auto match) -> std::vector<unique_fd> {
    for (auto& l : from)
      if (!l.fds.empty() && match(l)) {
        std::vector<unique_fd> out = std::move(l.fds);
        l.fds.clear();
        return out;
      }
    return {};
  };
  auto fds =
      pick([&](const inherited_listener& l) { return l.bind == lc.bind && l.name == lc.name; });
  if (fds.empty()) fds = pick([&](const inherited_listener& l) { return l.bind == lc.bind; });
  if (fds.empty())
    fds = pick([&](const inherited_listener& l) { return !l.bind && l.name == lc.name; });
  return fds;
}

}  // namespace zcproxy
