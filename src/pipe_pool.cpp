#include "zcproxy/pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <utility>

namespace zcproxy {

std::optional<pipe> pipe::open(std::size_t size) {
  int fds[2];
  // EMFILE/ENFILE: the caller falls back to copy rather than failing the connection.
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::nullopt;
  if (size > INT_MAX) size = INT_MAX;
  // EPERM/EBUSY (above pipe-max-size or the user's pipe quota): keep the size we got.
  (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size));
  int granted = ::fcntl(fds[1], F_GETPIPE_SZ);
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
