#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "zcproxy/stage.hpp"
#include "zcproxy/sys.hpp"

namespace zcproxy {

namespace {

constexpr unsigned splice_flags =
    SPLICE_F_MOVE | SPLICE_F_NONBLOCK;  // never SPLICE_F_MORE: it corks

bool at_urgent_mark(int fd) {
  int at_mark = 0;
  return ::ioctl(fd, SIOCATMARK, &at_mark) == 0 && at_mark == 1;
}

}  // namespace

stage_result pipe_stage::fill(int src, std::size_t max) {
  const std::size_t room = pipe_.capacity() - pipe_.level;
  for (;;) {
    const ssize_t r =
        sys::splice(src, nullptr, pipe_.write_fd(), nullptr, std::min(room, max), splice_flags);
    if (r > 0) {
      pipe_.level += static_cast<std::size_t>(r);
      return {static_cast<std::size_t>(r), stage_status::done};
    }
    const int e = errno;
    // splice stops at a TCP urgent byte: with EAGAIN though more is queued (and no edge to
    // come), or with 0 when the FIN is queued behind it. A read passes it, splice never does.
    // A 0 is always checked: it ends the direction, and the EPOLLPRI behind `urgent_possible_`
    // may not be reported yet (the byte came during this round, after the last epoll report).
    // An EAGAIN is checked only when EPOLLPRI was reported: if it is not yet, it will be, and
    // the wait it wakes checks again.
    const bool blocked = e == EAGAIN || e == EWOULDBLOCK;
    if ((r == 0 || (blocked && urgent_possible_)) && at_urgent_mark(src))
      return {0, stage_status::urgent};
    if (r == 0) return {0, stage_status::eof};  // the FIN, with nothing before it
    if (e == EINTR) continue;                   // a signal came before anything moved
    // Drained, and the next bytes raise a new edge. (Never a full pipe: the relay fills only
    // an empty one.)
    if (blocked) return {0, stage_status::would_block};
    // EINVAL/ENOSYS: these fds cannot splice, and nothing was consumed (the relay may copy
    // instead). ECONNRESET, ETIMEDOUT...: the source is gone.
    return {0, stage_status::error, sys::errno_error(e)};
  }
}

stage_result pipe_stage::flush(int dst) {
  stage_result out;
  while (pipe_.level > 0) {
    const ssize_t m =
        sys::splice(pipe_.read_fd(), nullptr, dst, nullptr, pipe_.level, splice_flags);
    if (m > 0) {
      pipe_.level -= static_cast<std::size_t>(m);
      out.moved += static_cast<std::size_t>(m);
      continue;
    }
    // 0 moves nothing from a pipe that holds bytes: the destination is gone, as with EPIPE.
    const int e = m < 0 ? errno : EPIPE;
    if (e == EINTR) continue;  // a signal came before anything moved
    // The socket's send buffer is full: the rest stays in the pipe until it has room.
    if (e == EAGAIN || e == EWOULDBLOCK) return {out.moved, stage_status::would_block};
    // EPIPE, ECONNRESET: the destination's peer is gone; the pipe keeps what it holds.
    return {out.moved, stage_status::error, sys::errno_error(e)};
  }
  return out;
}

}  // namespace zcproxy
