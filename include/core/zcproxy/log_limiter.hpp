// Bounds on the main-log lines that clients can cause.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace zcproxy {

// Main-log lines that clients cause (a refused PROXY header, a denied address, ...), bounded per
// listener and kind, so a flood of bad clients cannot fill the disk or drown other warnings: in
// each interval the first `burst` lines of a kind are written and the rest only counted, and the
// first line of that kind in a later interval comes after one that says how many were left out
// (the kernel's printk_ratelimit, per kind). The access log and /metrics still count every
// event. Thread-safe.
class log_limiter {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr unsigned burst = 5;
  static constexpr std::chrono::seconds interval{10};

  explicit log_limiter(std::size_t kinds) : slots_(kinds) {}
  // Whether to write a line of `kind` (below the constructor's `kinds`) at `now`. `left_out` is
  // set to the count of lines of this kind left out since the last one written when a new
  // interval starts with this line (write that count first), else to 0.
  bool admit(std::size_t kind, clock::time_point now, std::uint64_t& left_out);

 private:
  struct slot {
    clock::time_point started{};  // of the current interval
    unsigned written = 0;         // in it
    std::uint64_t left_out = 0;   // since the last line written
  };
  std::mutex mutex_;
  std::vector<slot> slots_;
};

}  // namespace zcproxy
