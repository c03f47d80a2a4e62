// The relay's stages: where one direction's bytes wait between the source and the destination.
// A pipe stage (splice engine) and a buffer stage (copy engine) share one interface, in the shape
// of HAProxy's rcv_pipe/snd_pipe and rcv_buf/snd_buf: fill() moves bytes from the source into the
// stage, flush() from the stage to the destination; each is one syscall loop that never waits and
// returns what happened. What to do about it (wait, switch to copy, end the direction) is the
// relay's policy. A stage is a view of a leased pipe or buffer: the relay owns the lease, and a
// stage lives on its connection's thread.
#pragma once

#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "zcproxy/buffer_pool.hpp"
#include "zcproxy/pipe_pool.hpp"
#include "zcproxy/socket.hpp"

namespace zcproxy {

enum class stage_status {
  done,         // fill: bytes moved, the source may hold more; flush: the stage is empty
  would_block,  // fill: the source is drained (EAGAIN); flush: the destination is full, bytes left
  eof,          // fill: the source sent its FIN
  urgent,       // pipe fill: the source sits at a TCP urgent byte, which splice never passes
  error,        // what failed is in `error`
};

struct stage_result {
  std::size_t moved = 0;  // bytes this call moved (before the status, if any)
  stage_status status = stage_status::done;
  boost::system::error_code error{};  // for stage_status::error (the errno, as sys::errno_error)
  // fill: bytes the kernel says it left behind in the source (TCP_INQ, asked for by
  // set_read_hint), or -1 when it did not say (splice, a Unix socket, no hint).
  int left = -1;
};

// Splice: socket -> pipe -> socket, the bytes never enter user space. The pipe's `level` stays
// exact. fill() makes one splice (it moves what the socket holds up to the pipe's room, and the
// relay flushes before it fills again).
class pipe_stage {
 public:
  // urgent_possible: whether the source may hold TCP urgent data; when not (epoll has not
  // reported EPOLLPRI for it), an EAGAIN is not checked for the urgent mark (an ioctl per
  // EAGAIN); a 0 (EOF, or the mark with a FIN behind it) always is.
  explicit pipe_stage(pipe& p, bool urgent_possible = true)
      : pipe_(p), urgent_possible_(urgent_possible) {}
  // At most `max` bytes from socket `src`. EINVAL/ENOSYS (the kernel cannot splice these fds)
  // come back as an error, with nothing consumed.
  stage_result fill(int src, std::size_t max);
  // To socket `dst` until the pipe is empty or the socket is full.
  stage_result flush(int dst);
  std::size_t level() const { return pipe_.level; }

 private:
  pipe& pipe_;
  bool urgent_possible_;
};

// Copy: socket -> memory -> socket, with recvmsg(2) and send(2) on non-blocking sockets. Bytes
// wait in [head, tail) of the buffer; a fill into an empty stage starts at the buffer's front.
class buffer_stage {
 public:
  buffer_stage() = default;
  explicit buffer_stage(buffer& b) : buffer_(&b) {}
  // One read of at most `max` bytes from socket `src` (and the buffer's room); says how many it
  // left behind when the kernel tells (TCP_INQ).
  stage_result fill(int src, std::size_t max);
  // To socket `dst` until the stage is empty or the socket is full.
  stage_result flush(int dst);
  std::size_t level() const { return tail_ - head_; }
  const char* data() const { return buffer_->data.get() + head_; }

 private:
  buffer* buffer_ = nullptr;
  std::uint32_t head_ = 0, tail_ = 0;  // buffer_size is at most 64 MiB
};

class mirror;

// The stage one direction holds while bytes are in flight: a leased pipe (splice engine) or a
// leased buffer (copy engine), or none. The one place where the two engines differ: the relay's
// policy calls fill() and flush() alike for both.
class held_stage {
 public:
  bool held() const { return pipe_ || buffer_; }
  bool spliced() const { return bool(pipe_); }
  void hold(pipe_pool::lease p) { pipe_ = std::move(p); }
  void hold(buffer_pool::lease b) {
    buffer_ = std::move(b);
    copy_ = buffer_stage(*buffer_);
  }
  // A pipe that still holds bytes is closed, not pooled.
  void release() {
    pipe_.reset();
    buffer_.reset();
  }
  // urgent_possible: see pipe_stage (a buffer fill passes an urgent byte anyway).
  stage_result fill(int src, std::size_t max, bool urgent_possible = true) {
    return pipe_ ? pipe_stage(*pipe_, urgent_possible).fill(src, max) : copy_.fill(src, max);
  }
  stage_result flush(int dst) { return pipe_ ? pipe_stage(*pipe_).flush(dst) : copy_.flush(dst); }
  std::size_t level() const { return pipe_ ? pipe_->level : buffer_ ? copy_.level() : 0; }
  // The last n bytes filled, to a mirror (tee(2) from the pipe, or a copy), before they go.
  void feed(mirror& m, std::size_t n);

 private:
  pipe_pool::lease pipe_;
  buffer_pool::lease buffer_;
  buffer_stage copy_;  // over buffer_, while held
};

}  // namespace zcproxy
