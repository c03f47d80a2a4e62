# Sourced by the bench scripts (from the repository's top): install, build, process and port
# helpers. Sets $work (a scratch folder removed on exit) and $pids (killed on exit).

# Install the Debian packages given (plus the build's), and build a Release zcproxy unless
# ZCPROXY_BIN names one already. Sets ZCPROXY_BIN.
install_and_build() {
  bash .ci/deps.sh cmake make g++ ccache libboost1.81-dev libyaml-cpp-dev libspdlog-dev \
    libc-ares-dev pkgconf libsystemd-dev "$@"
  if [ -z "${ZCPROXY_BIN:-}" ]; then
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DZCPROXY_TESTS=OFF >/dev/null
    cmake --build build-release -j"$(nproc)" --target zcproxy >/dev/null
    ZCPROXY_BIN=$PWD/build-release/zcproxy
  fi
}

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # until something accepts on the port (at most 10 s)
  for _ in $(seq 200); do
    port_open "$1" && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  tail -n 5 "$work"/*.log "$work"/*/error.log >&2 2>/dev/null || true
  exit 1
}
