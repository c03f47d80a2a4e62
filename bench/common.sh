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
netns=()  # network namespaces made by netns_up
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # and a coproc "holder" (bench/run.sh's idle connections in a namespace), else wait waits for it;
  # bash unsets holder_PID when it reaps it, so this PID is never another process's
  [ -z "${holder_PID:-}" ] || kill "$holder_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  for ns in "${netns[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Ctrl-C, a kill or a closed terminal exit through the EXIT trap too (bash runs a trap once the
# command in the foreground has returned).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Where the parts of a run are: a command prefix for each (empty: here), and the addresses the
# proxies listen on and the backends on. netns_up changes them.
in_client=() in_proxy=() in_server=()
listen_ip=127.0.0.1 backend_ip=127.0.0.1

# Three network namespaces NAME-client, NAME-proxy and NAME-server, joined by two veth pairs, with
# addresses from the benchmarking range 198.18.0.0/15 only:
#   client 198.18.1.1/24 -- 198.18.1.2/24 proxy 198.18.2.1/24 -- 198.18.2.2/24 server
# The veths are made inside the namespaces (the host's never sees them) and go with them. No
# namespace has a default route or another interface, so no packet can leave them; IPv6 is off
# on the veths (no link-local addresses, router solicitations or MLD), lo keeps 127.0.0.1 and ::1.
# The client and the server reach each other through the proxy's namespace, which forwards (its
# own net.ipv4.ip_forward, not the host's): "direct" crosses the same two veths as a proxy.
# The MTU is veth's default, 1500. Sets in_client, in_proxy, in_server, listen_ip, backend_ip.
netns_up() {  # NAME
  local c=$1-client p=$1-proxy s=$1-server ns
  for ns in "$c" "$p" "$s"; do
    ip netns add "$ns"
    netns+=("$ns")
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip link add to-proxy netns "$c" type veth peer name to-client netns "$p"
  ip link add to-server netns "$p" type veth peer name to-proxy netns "$s"
  ip -n "$c" addr add 198.18.1.1/24 dev to-proxy
  ip -n "$p" addr add 198.18.1.2/24 dev to-client
  ip -n "$p" addr add 198.18.2.1/24 dev to-server
  ip -n "$s" addr add 198.18.2.2/24 dev to-proxy
  ip -n "$c" link set to-proxy up
  ip -n "$p" link set to-client up
  ip -n "$p" link set to-server up
  ip -n "$s" link set to-proxy up
  ip -n "$c" route add 198.18.2.0/24 via 198.18.1.2
  ip -n "$s" route add 198.18.1.0/24 via 198.18.2.1
  ip netns exec "$p" sysctl -qw net.ipv4.ip_forward=1
  in_client=(ip netns exec "$c") in_proxy=(ip netns exec "$p") in_server=(ip netns exec "$s")
  listen_ip=198.18.1.2 backend_ip=198.18.2.2
}

port_open() {  # port [host, default 127.0.0.1]; from the client's namespace when there is one
  if [ ${#in_client[@]} = 0 ]; then (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
  else "${in_client[@]}" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${2:-127.0.0.1}" "$1" 2>/dev/null; fi
}
wait_port() {  # port [host]: until something accepts there (at most 10 s)
  for _ in $(seq 200); do
    port_open "$1" "${2:-127.0.0.1}" && return 0
    sleep 0.05
  done
  echo "nothing listens on ${2:-127.0.0.1}:$1" >&2
  tail -n 5 "$work"/*.log "$work"/*/error.log >&2 2>/dev/null || true
  exit 1
}
