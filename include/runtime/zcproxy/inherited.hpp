// Listening sockets this process did not open itself: handed over by the zcproxy it takes over
// from (matched to listeners by bind address), or passed by systemd's socket activation (matched
// by name, the socket unit's FileDescriptorName=). A listener given sockets accepts on them
// instead of binding its address.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "zcproxy/config.hpp"

namespace zcproxy {

// The one owner of an fd: closes it when it goes, unless released.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  ~unique_fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();

 private:
  int fd_ = -1;
};

// One listener's sockets (TCP: one per thread of the process that opened them, all in one
// SO_REUSEPORT group, each with a queue of its own; Unix or systemd: usually one).
struct inherited_listener {
  std::string name;             // the old process's listener name, or systemd's fd name
  std::optional<address> bind;  // take-over: the bind address as configured; systemd: none
  std::vector<unique_fd> fds;
};

// The sockets systemd passed (LISTEN_PID is this process, LISTEN_FDS, LISTEN_FDNAMES), grouped by
// name; none when it passed none. The variables are unset so no child sees them. Throws
// std::runtime_error when they cannot be read.
std::vector<inherited_listener> systemd_sockets();

// The sockets in `from` meant for `lc` (taken out of it): the take-over's with the same bind
// address, preferring the same name (two listeners on port 0 share an address), else systemd's
// named as `lc` is. Empty when none is.
std::vector<unique_fd> take_sockets(std::vector<inherited_listener>& from,
                                    const listener_config& lc);

}  // namespace zcproxy
