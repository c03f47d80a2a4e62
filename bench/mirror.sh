#!/usr/bin/env bash
# The cost of a mirror: iperf3 client->server through zcproxy with `mirror:` on (every byte also
# to a shadow, a socat process that drops what it gets) against the same listener without it, on
# each engine. Rounds alternate off/on; each figure is the median of the rounds. Prints Gbit/s and
# zcproxy's CPU seconds per GiB moved (user+system, from /proc/PID/stat), and how the mirrors
# ended (completed, or stopped as slow when the shadow fell more than max_lag behind).
#
#   bash bench/mirror.sh [-t SECONDS] [-r ROUNDS] [-e "splice copy"] [-l MAX_LAG]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=5
rounds=3
engines="splice copy"
lag=8MiB
while getopts "t:r:e:l:h" o; do
  case $o in
    t) secs=$OPTARG ;;
    r) rounds=$OPTARG ;;
    e) engines=$OPTARG ;;
    l) lag=$OPTARG ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
  esac
done

. bench/common.sh
install_and_build iperf3 socat jq curl
zc=$ZCPROXY_BIN
server_port=5301 shadow_port=5302 plain_port=8301 mirrored_port=8302 admin_port=9391
for p in $server_port $shadow_port $plain_port $mirrored_port $admin_port; do
  ! port_open "$p" || { echo "port $p is in use; stop what runs there first" >&2; exit 1; }
done
iperf3 -s -p $server_port >/dev/null 2>&1 &
pids+=($!)
socat -u -b 1048576 TCP-LISTEN:$shadow_port,bind=127.0.0.1,reuseaddr,fork OPEN:/dev/null &
pids+=($!)
wait_port $server_port
wait_port $shadow_port

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int((NR + 1) / 2)]; else print "fail" }'; }
# iperf3 up through port $1: prints "Gbit/s bytes".
measure() {
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -f g -J 2>/dev/null |
    jq -r '.end.sum_received | "\(.bits_per_second / 1e9) \(.bytes)"'
}
mirror_results() {  # e.g. "completed=6" (only results that occurred), from the metrics
  curl -s "http://127.0.0.1:$admin_port/metrics" |
    sed -nE 's/^zcproxy_listener_mirrors_total\{listener="mirrored",result="([a-z_]+)"\} ([0-9]+)$/\1=\2/p' |
    grep -v '=0$' | tr '\n' ' '
}

echo
echo "mirror cost: iperf3 up, $secs s x $rounds rounds per figure, medians ($(nproc) cores, kernel $(uname -r)); max_lag $lag"
printf "%-8s %-9s %10s %14s  %s\n" "engine" "mirror" "Gbit/s" "CPU s/GiB" "mirrors"
for engine in $engines; do
  cat >"$work/$engine.yaml" <<EOF
threads: 2
log: { level: warn, access_log: false }
relay: { engine: $engine }
admin: { bind: "127.0.0.1:$admin_port" }
listeners:
  - { name: plain, bind: "127.0.0.1:$plain_port", upstream: server }
  - { name: mirrored, bind: "127.0.0.1:$mirrored_port", upstream: server, mirror: { upstream: shadow, max_lag: $lag } }
upstreams:
  server: { endpoints: ["127.0.0.1:$server_port"] }
  shadow: { endpoints: ["127.0.0.1:$shadow_port"] }
EOF
  $zc -c "$work/$engine.yaml" 2>"$work/$engine.log" &
  zpid=$!
  pids+=($zpid)
  wait_port $plain_port
  wait_port $mirrored_port
  : >"$work/off"
  : >"$work/on"
  for _ in $(seq "$rounds"); do
    for side in off on; do
      port=$plain_port
      [ $side = on ] && port=$mirrored_port
      before=$(cpu_ticks $zpid)
      read -r gbps bytes < <(measure $port)
      after=$(cpu_ticks $zpid)
      # ticks are 1/100 s (CLK_TCK); a mirrored GiB is still one GiB of client data
      echo "$gbps $(awk -v t=$((after - before)) -v b="$bytes" 'BEGIN { printf "%.3f", t / 100 / (b / 2^30) }')" >>"$work/$side"
    done
  done
  for side in off on; do
    printf "%-8s %-9s %10s %14s  %s\n" "$engine" "$side" "$(cut -d' ' -f1 "$work/$side" | median)" \
      "$(cut -d' ' -f2 "$work/$side" | median)" "$([ $side = on ] && mirror_results)"
  done
  kill -TERM $zpid
  wait $zpid || { echo "zcproxy ($engine) exited with $?" >&2; cat "$work/$engine.log" >&2; exit 1; }
done
