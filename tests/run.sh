#!/usr/bin/env bash
# Install what is missing, build, and run the tests through CTest. Every test has its own time
# limit (set in CMakeLists.txt): a hang fails, it never blocks.
#   bash tests/run.sh          the fast tier: the normal build and every test once (unit,
#                              integration, faults, soak, the browser test, the benchmark's quick
#                              mode, the systemd unit, man pages, the Debian package and the
#                              container image built and run, the Kubernetes manifests): about
#                              15 minutes from a cold build
#   bash tests/run.sh --full   the full tier (what CI runs): the same plus the fuzz smoke run, the
#                              whole suite again under ASan+UBSan and, under TSan, the tests where
#                              threads meet (relay, session, reload, upstream and health checks,
#                              mirror, admin, DNS): about 40 minutes from a cold build on 2 cores
# BUILD_DIR=build by default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh cmake make g++ ccache libboost1.81-dev libyaml-cpp-dev libspdlog-dev catch2 \
  libc-ares-dev pkgconf libsystemd-dev \
  iperf3 haproxy nginx libnginx-mod-stream socat wrk gnuplot-nox jq procps openssl curl dnsmasq-base \
  clang libclang-rt-14-dev clang-format chromium fonts-liberation util-linux \
  systemd go-md2man man-db groff-base lintian dpkg-dev debootstrap buildah python3 nodejs \
  iproute2 iptables \
  # socket activation: libsystemd-dev (found by pkg-config); man pages: go-md2man (man_pages:
  # man-db, groff); the package and container tests: cpack's dpkg-shlibdeps (dpkg-dev), lintian,
  # debootstrap, buildah;
  # k8s_manifests: Node.js (npm comes with it) and the npm registry;
  # bench_quick: the peers and tools; systemd_unit: systemd-analyze; sni: openssl;
  # fuzz_smoke: clang and libFuzzer; format: clang-format; the stats page test: chromium;
  # security: setpriv; the admin API (binary): curl; DNS names: dnsmasq; source: network
  # namespaces and policy routing (iproute2, iptables)
BUILD_DIR=${BUILD_DIR:-build}
jobs=$(nproc)
# ccache hits across clones in other folders (CI's is a fresh one each time), and across build
# folders of one clone (the package test's): with -g the compiler's folder is part of the hash
# unless told not to be.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true

stage() { echo "== $* ($(date -u +%H:%M:%S))"; }

# ctest in build folder $1 with the arguments after it. A test that cannot run here (no root, no
# ::1) is reported as skipped, not passed; with ZCPROXY_NO_SKIPS=1 (as .ci/run sets: CI is root
# and has ::1) a skipped test fails the run.
run_ctest() {
  local dir=$1 out rc=0
  shift
  out=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j2 "$@") 2>&1 | tee "$out" || rc=$?
  if [ "$rc" = 0 ] && [ "${ZCPROXY_NO_SKIPS:-0}" = 1 ] && grep -q "(Skipped)" "$out"; then
    echo "these tests were skipped, and this run must run every test:"
    grep "(Skipped)" "$out"
    rc=1
  fi
  rm -f "$out"
  return "$rc"
}

full=0
case "${1:-}" in
  --full) full=1 ;;
  "") ;;
  *) echo "usage: bash tests/run.sh [--full]" >&2; exit 2 ;;
esac

stage "normal build"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$jobs"
if [ "$full" = 0 ]; then
  stage "every test (the fast tier: no fuzz smoke, no sanitizer builds; --full runs them)"
  run_ctest "$BUILD_DIR" -LE fuzz
  stage "done"
  exit 0
fi
stage "every test, the fuzz smoke run included"
run_ctest "$BUILD_DIR"

# Any report fails its test: the builds use -fno-sanitize-recover, and the runtimes exit non-zero
# (LeakSanitizer included) with a stack for each report.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
stage "ASan+UBSan build"
cmake -S . -B "$BUILD_DIR-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZCPROXY_SANITIZE=address >/dev/null
cmake --build "$BUILD_DIR-asan" -j"$jobs"
stage "every test under ASan+UBSan (but the four out-of-fds ones, see below)"
# The four out-of-fds tests are left out here: they run the proxy out of fds on purpose, and
# UBSan's vptr check then reports every virtual call as "invalid vptr" ("memory cannot be
# printed"). It proves a vptr readable by writing it into a pipe (IsAccessibleMemoryRange in
# sanitizer_common, GCC 12's copy: `if (pipe(...)) return false;`), and out of fds there is no
# pipe. A false report of the runtime's own, not of zcproxy's: valgrind runs the same scenario on
# the normal build without an invalid access. Both tests run in the normal build above.
run_ctest "$BUILD_DIR-asan" -E 'out of fds'

stage "TSan build"
cmake -S . -B "$BUILD_DIR-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZCPROXY_SANITIZE=thread >/dev/null
cmake --build "$BUILD_DIR-tsan" -j"$jobs" --target zcproxy_tsan_tests
stage "relay, session, reload, upstream, mirror, admin and DNS tests under TSan (2 worker threads each)"
run_ctest "$BUILD_DIR-tsan" -L tsan
stage "done"
