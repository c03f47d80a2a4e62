#!/usr/bin/env bash
# Which engine moves the most bytes per CPU second on this host (loopback): zcproxy with engine
# splice and engine copy side by side, iperf3 up (client->server) and down (-R), on an idle
# machine and with both cores busy (one CPU-bound process per core beside the run), interleaved
# (round -> load -> direction -> engine). Prints, per engine, load and direction, the median
# Gbit/s and CPU seconds of the proxy per GiB moved: the figures behind `adaptive`'s rule.
#
#   bash bench/engines.sh [--rounds N] [--time SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
secs=3
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --time) secs=$2; shift ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
  esac
  shift
done

. bench/common.sh
install_and_build iperf3
hz=$(getconf CLK_TCK)
server_port=5201
for p in $server_port 8091 8092; do
  ! port_open "$p" || { echo "port $p is in use; stop what runs there first" >&2; exit 1; }
done
iperf3 -s -p $server_port >/dev/null 2>&1 &
pids+=($!)
wait_port $server_port

declare -A port pid
for engine in splice copy; do
  port[$engine]=$([ $engine = splice ] && echo 8091 || echo 8092)
  cat >"$work/$engine.yaml" <<EOF
log: { level: warn, access_log: false }
relay: { engine: $engine }
listeners:
  - { name: iperf, bind: "127.0.0.1:${port[$engine]}", upstream: iperf }
upstreams:
  iperf: { endpoints: ["127.0.0.1:$server_port"] }
EOF
  "$ZCPROXY_BIN" -c "$work/$engine.yaml" 2>"$work/$engine.log" &
  pid[$engine]=$!
  pids+=($!)
  wait_port "${port[$engine]}"
done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime of the process
hogs=()
load() {  # idle|busy
  for h in "${hogs[@]}"; do kill "$h" 2>/dev/null || true; done
  hogs=()
  if [ "$1" = busy ]; then
    for _ in $(seq "$(nproc)"); do
      bash -c 'while :; do :; done' &
      hogs+=($!)
      pids+=($!)
    done
  fi
}
: >"$work/results"
for r in $(seq "$rounds"); do
  for l in idle busy; do
    load $l
    for dir in up down; do
      for engine in splice copy; do
        args=()
        [ $dir = down ] && args=(-R)
        t0=$(ticks "${pid[$engine]}")
        bytes=$(iperf3 -c 127.0.0.1 -p "${port[$engine]}" -t "$secs" -J "${args[@]}" |
          jq '.end.sum_received.bytes')
        t1=$(ticks "${pid[$engine]}")
        echo "$engine $l $dir $bytes $((t1 - t0))" >>"$work/results"
      done
    done
  done
done
load idle

echo "zcproxy engines on loopback, $rounds rounds of $secs s, medians ($(nproc) cores, kernel $(uname -r))"
printf "%-7s %-5s %-5s %12s %14s\n" engine load dir Gbit/s "CPU s/GiB"
for l in idle busy; do
  for dir in up down; do
    for engine in splice copy; do
      awk -v e=$engine -v l=$l -v d=$dir -v s="$secs" -v hz="$hz" '
        $1 == e && $2 == l && $3 == d { g[n] = $4 * 8 / s / 1e9; c[n] = ($5 / hz) / ($4 / 2^30); n++ }
        function median(a, n,   i, j, t) {
          for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
          return n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2
        }
        END { printf "%-7s %-5s %-5s %12.2f %14.3f\n", e, l, d, median(g, n), median(c, n) }' "$work/results"
    done
  done
done
