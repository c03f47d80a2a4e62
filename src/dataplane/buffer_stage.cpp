#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "zcproxy/mirror.hpp"
#include "zcproxy/stage.hpp"
#include "zcproxy/sys.hpp"

namespace zcproxy {

// Plain non-blocking system calls, not Asio's async forms: the relay calls a stage when the
// socket was just reported ready (or to find out whether it is), and an async operation would
// cost a pass through the scheduler (one more epoll_wait) per round for nothing.

stage_result buffer_stage::fill(int src, std::size_t max) {
  if (head_ == tail_) head_ = tail_ = 0;  // empty: start at the front, the whole buffer is room
  iovec iov{buffer_->data.get() + tail_, std::min(buffer_->size - tail_, max)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = sys::recvmsg(src, &msg, 0);
    if (n > 0) {
      tail_ += static_cast<std::uint32_t>(n);
      stage_result r{static_cast<std::size_t>(n), stage_status::done};
      // TCP_INQ: bytes still queued, or 1 when none are but a FIN is (see the relay's drained_by).
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ &&
            c->cmsg_len >= CMSG_LEN(sizeof r.left))
          std::memcpy(&r.left, CMSG_DATA(c), sizeof r.left);
      return r;
    }
    if (n == 0) return {0, stage_status::eof};  // the FIN
    const int e = errno;
    if (e == EINTR) continue;  // a signal came before anything moved
    // Drained: the next bytes raise a new edge.
    if (e == EAGAIN || e == EWOULDBLOCK) return {0, stage_status::would_block};
    return {0, stage_status::error,
            sys::errno_error(e)};  // ECONNRESET, ETIMEDOUT...: the source is gone
  }
}

stage_result buffer_stage::flush(int dst) {
  stage_result out;
  while (tail_ > head_) {
    const ssize_t m = sys::send(dst, data(), level(), MSG_NOSIGNAL);
    if (m > 0) {  // short writes are normal
      head_ += static_cast<std::uint32_t>(m);
      out.moved += static_cast<std::size_t>(m);
      continue;
    }
    const int e = m < 0 ? errno : EPIPE;  // 0 moves nothing from a stage that holds bytes
    if (e == EINTR) continue;             // a signal came before anything moved
    // The socket's send buffer is full: the rest stays here until it has room.
    if (e == EAGAIN || e == EWOULDBLOCK) return {out.moved, stage_status::would_block};
    // EPIPE, ECONNRESET: the destination's peer is gone.
    return {out.moved, stage_status::error, sys::errno_error(e)};
  }
  return out;
}

void held_stage::feed(mirror& m, std::size_t n) {
  if (pipe_)
    m.feed_pipe(pipe_->read_fd(), n);
  else
    m.feed(copy_.data(), n);
}

}  // namespace zcproxy
