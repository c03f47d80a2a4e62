#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for SECONDS (default 30) from its committed
# seed corpus, after replaying every saved crasher (regressions/TARGET/*) as a regression test.
# Fails on any crash, leak, timeout or sanitizer report. New inputs go to a scratch corpus, never
# into the committed one. Prints each target's executions.
#   bash tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds=${1:-30}
build=${2:-$here/../../build-fuzz}
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for target in config proxy_protocol client_hello values; do
  bin="$build/fuzz_$target"
  regressions=("$here/regressions/$target"/*)
  if [ -e "${regressions[0]}" ]; then
    "$bin" -runs=0 "${regressions[@]}" >"$scratch/$target.replay" 2>&1 || {
      echo "fuzz_$target: a saved crasher fails again:"; tail -30 "$scratch/$target.replay"; status=1; }
  fi
  mkdir -p "$scratch/$target"
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$scratch/$target-" -print_final_stats=1 \
      "$scratch/$target" "$here/corpus/$target" >"$scratch/$target.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$target.log" | grep -o '[0-9]*$')
    echo "fuzz_$target: ok, $runs executions in ${seconds}s"
  else
    echo "fuzz_$target: FAILED"; tail -40 "$scratch/$target.log"
    for a in "$scratch/$target-"*; do [ -e "$a" ] && { echo "crasher (base64): $(base64 -w0 "$a")"; }; done
    status=1
  fi
done
exit $status
