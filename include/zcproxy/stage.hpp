// The relay's stages: where one direction's bytes wait between the source and the destination.
// A pipe stage (splice engine) and a buffer stage (copy engine) share one interface, in the shape
// of HAProxy's rcv_pipe/snd_pipe and rcv_buf/snd_buf: fill() moves bytes from the source into the
// stage, flush() from the stage to the destination; each is one syscall loop that never waits and
// returns what happened. What to do about it (wait, fall back to copy, end the direction) is the
// relay's policy. A stage is a view of a leased pipe or buffer: the relay owns the lease, and a
// stage lives on its connection's thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "zcproxy/buffer_pool.hpp"
#include "zcproxy/pipe_pool.hpp"
#include "zcproxy/socket.hpp"

namespace zcproxy {

enum class stage_status {
  done,         // fill: bytes moved, the source may hold more; flush: the stage is empty
  would_block,  // fill: the source is drained (EAGAIN); flush: the destination is full, bytes left
  eof,          // fill: the source sent its FIN
  urgent,       // pipe fill: the source sits at a TCP urgent byte, which splice never passes
  error,        // the errno is in `error`
};

struct stage_result {
  std::size_t moved = 0;  // bytes this call moved (before the status, if any)
  stage_status status = stage_status::done;
  int error = 0;  // the errno, for stage_status::error
  // fill: bytes the kernel says it left behind in the source (TCP_INQ, asked for by
  // set_read_hint), or -1 when it did not say (splice, a Unix socket, no hint).
  int left = -1;
};

// Splice: socket -> pipe -> socket, the bytes never enter user space. The pipe's `level` stays
// exact. fill() makes one splice (it moves what the socket holds up to the pipe's room, and the
// relay flushes before it fills again).
class pipe_stage {
 public:
  explicit pipe_stage(pipe& p) : pipe_(p) {}
  // At most `max` bytes from socket `src`. EINVAL/ENOSYS (the kernel cannot splice these fds)
  // come back as an error, with nothing consumed.
  stage_result fill(int src, std::size_t max);
  // To socket `dst` until the pipe is empty or the socket is full.
  stage_result flush(int dst);
  std::size_t level() const { return pipe_.level; }

 private:
  pipe& pipe_;
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

}  // namespace zcproxy
