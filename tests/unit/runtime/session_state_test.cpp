// src/runtime/session_state.hpp: when a connection's next interim access-log line is due.
#include "runtime/session_state.hpp"

#include <catch2/catch.hpp>
#include <chrono>

using namespace std::chrono_literals;
using zcproxy::detail::session_state;

TEST_CASE("interim lines: due every interval from the last due time, and a late sweep bursts none",
          "[log][runtime]") {
  const std::chrono::steady_clock::time_point t0{};
  // A sweep 80 ms after the line was due: the next is due an interval after the due time, not
  // after the sweep, so the lines do not drift.
  CHECK(session_state::next_due(t0 + 1s, 1s, t0 + 1080ms) == t0 + 2s);
  // A sweep 2.5 intervals late (a worker that was busy): one line now, the next an interval from
  // now, not the missed ones one after another.
  CHECK(session_state::next_due(t0 + 1s, 1s, t0 + 3500ms) == t0 + 4500ms);
  CHECK(session_state::next_due(t0 + 1s, 1s, t0 + 2s) == t0 + 3s);
}
