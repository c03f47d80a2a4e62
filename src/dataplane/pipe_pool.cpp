#include "zcproxy/pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "zcproxy/log.hpp"

namespace zcproxy {

std::optional<pipe> pipe::open(std::size_t size) {
  int fds[2];
  // EMFILE/ENFILE: the caller switches to copy rather than failing the connection.
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::nullopt;
  if (size > INT_MAX) size = INT_MAX;
  // EPERM/EBUSY (above pipe-max-size or the user's pipe quota): keep the size we got, and say so
  // once, as small pipes cost throughput.
  if (::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size)) < 0) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      main_log().warn(
          "pipes get less than the {} bytes of pipe_size: F_SETPIPE_SZ: {} (see "
          "/proc/sys/fs/pipe-max-size and pipe-user-pages-soft)",
          size, std::strerror(errno));
  }
  int granted = ::fcntl(fds[1], F_GETPIPE_SZ);
  // Not told: the kernel's default pipe size (16 pages of 4 KiB), which it cannot be below.
  return pipe(fds[0], fds[1], granted > 0 ? static_cast<std::size_t>(granted) : 65536);
}

pipe::pipe(pipe&& o) noexcept
    : level(std::exchange(o.level, 0)),
      fds_{std::exchange(o.fds_[0], -1), std::exchange(o.fds_[1], -1)},
      capacity_(o.capacity_) {}

pipe& pipe::operator=(pipe&& o) noexcept {
  if (this != &o) {
    close();
    fds_[0] = std::exchange(o.fds_[0], -1);
    fds_[1] = std::exchange(o.fds_[1], -1);
    capacity_ = o.capacity_;
    level = std::exchange(o.level, 0);
  }
  return *this;
}

pipe::~pipe() {
  close();
}

void pipe::close() {
  for (int& fd : fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace zcproxy
