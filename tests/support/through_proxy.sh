# Sourced by the package and container tests: 64 MiB byte-exact through a zcproxy that the caller
# starts its own way (in a chroot, in a container), then a drain on SIGTERM ending with exit 0.
#   through_proxy_setup SRC WORK   the payload, a backend on loopback that writes what it gets to
#                                  WORK/payload.out (backend_pid), and WORK/zcproxy.yaml, a config
#                                  in front of it (a listener and the admin listener on port 0)
#   (the caller starts zcproxy with that config, stdout to WORK/proxy.out, stderr to WORK/proxy.err)
#   through_proxy_check SRC WORK PID WAIT_PID UID
#                                  zcproxy (PID; WAIT_PID is what to wait for, PID or its launcher)
#                                  runs as UID, answers /healthz, passes the payload byte-exact,
#                                  and drains on SIGTERM with exit 0, its access line counting it
through_proxy_setup() {
  local src=$1 work=$2
  head -c $((64 << 20)) /dev/urandom >"$work/payload"
  rm -f "$work/backend.port"
  python3 "$src/tests/support/transfer.py" backend "$work/payload.out" >"$work/backend.port" &
  backend_pid=$!
  for _ in $(seq 100); do [ -s "$work/backend.port" ] && break; sleep 0.1; done
  cat >"$work/zcproxy.yaml" <<END
threads: 2
log: { level: info, access_log: true }
listeners:
  - { name: web, bind: "127.0.0.1:0", upstream: app }
upstreams:
  app: { endpoints: ["127.0.0.1:$(cat "$work/backend.port")"] }
admin: { bind: "127.0.0.1:0" }
END
  chmod 644 "$work/zcproxy.yaml"
}

through_proxy_check() {
  local src=$1 work=$2 pid=$3 wait_pid=$4 uid=$5 port= admin code=0
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listener web on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/proxy.err" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$work/proxy.err"; return 1; }
  admin=$(sed -n 's/.*admin on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/proxy.err" | head -1)
  [ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = "$uid" ] || {
    echo "zcproxy does not run as uid $uid"
    return 1
  }
  [ "$(curl -s "http://127.0.0.1:$admin/healthz")" = ok ] || { echo "/healthz is not ok"; return 1; }
  python3 "$src/tests/support/transfer.py" client "$work/payload" "$port"
  wait "$backend_pid"
  cmp "$work/payload" "$work/payload.out" || return 1
  kill -TERM "$pid"
  wait "$wait_pid" || code=$?
  [ "$code" = 0 ] || { echo "zcproxy exited $code after SIGTERM"; cat "$work/proxy.err"; return 1; }
  grep -q "draining" "$work/proxy.err" || { cat "$work/proxy.err"; return 1; }
  grep -q "bytes_up=$((64 << 20)) " "$work/proxy.out" || { cat "$work/proxy.out"; return 1; }
}
