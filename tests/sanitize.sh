#!/usr/bin/env bash
# The sanitizer builds CI runs on top of the normal one (tests/run.sh installs what they need):
# - ASan+UBSan: every CTest test but the benchmark, the fuzz run (the normal build runs those;
#   the fuzz targets carry ASan+UBSan of their own) and the soak; a leak at exit counts.
# - TSan: the relay and session tests, which run 2 worker threads each.
# Any report fails the test that caused it. No suppressions.
#   bash tests/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cmake -S . -B build-asan -DZCPROXY_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j2 -LE 'soak|fuzz' -E '^bench_quick$')

export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
cmake -S . -B build-tsan -DZCPROXY_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-tsan -j"$jobs" --target zcproxy zcproxy_tests
(cd build-tsan && ctest --output-on-failure -j2 -R '^(relay|session): ')
