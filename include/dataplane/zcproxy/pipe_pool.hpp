// Pipes for the splice engine. A pipe is two fds with exactly one owner; a pipe that still holds
// bytes is closed, never pooled (its bytes belong to a connection that is gone).
#pragma once

#include <cstddef>
#include <optional>

#include "zcproxy/pool.hpp"

namespace zcproxy {

class pipe {
 public:
  // pipe2(O_NONBLOCK|O_CLOEXEC), then F_SETPIPE_SZ(size) where allowed; nullopt when out of fds.
  static std::optional<pipe> open(std::size_t size);

  pipe(pipe&& o) noexcept;
  pipe& operator=(pipe&& o) noexcept;
  pipe(const pipe&) = delete;
  ~pipe();

  int read_fd() const { return fds_[0]; }
  int write_fd() const { return fds_[1]; }
  std::size_t capacity() const { return capacity_; }  // what the kernel granted

  // Bytes in the pipe, kept exact by whoever splices through it.
  std::size_t level = 0;
  bool reusable() const { return level == 0 && fds_[0] >= 0; }

 private:
  pipe(int r, int w, std::size_t capacity) : fds_{r, w}, capacity_(capacity) {}
  void close();
  int fds_[2] = {-1, -1};
  std::size_t capacity_ = 0;
};

using pipe_pool = pool<pipe>;

// max_pipes: leased at once (per thread); keep_idle: pipes kept open for reuse.
inline pipe_pool make_pipe_pool(std::size_t pipe_size, std::size_t max_pipes,
                                std::size_t keep_idle = 32) {
  return pipe_pool([pipe_size] { return pipe::open(pipe_size); }, max_pipes, keep_idle);
}

}  // namespace zcproxy
