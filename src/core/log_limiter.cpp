#include "zcproxy/log_limiter.hpp"

#include <utility>

namespace zcproxy {

bool log_limiter::admit(std::size_t kind, clock::time_point now, std::uint64_t& left_out) {
  std::lock_guard lock(mutex_);
  slot& s = slots_.at(kind);
  left_out = 0;
  if (s.written == 0 || now - s.started >= interval) {
    s.started = now;
    s.written = 0;
    left_out = std::exchange(s.left_out, 0);
  }
  if (s.written < burst) {
    ++s.written;
    return true;
  }
  ++s.left_out;
  return false;
}

}  // namespace zcproxy
