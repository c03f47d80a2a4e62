#!/usr/bin/env bash
# The main job: build zcproxy (Release), start an iperf3 server, put zcproxy in front of it with
# conf/zcproxy.yaml (and the same config with each engine), and print iperf3 throughput through the
# proxy beside the direct figure: client->server, server->client (-R) and 4 streams (-P 4).
#
#   bash bench/iperf3.sh [-t SECONDS] [-e "adaptive auto splice copy"]
#
# Ports come from conf/zcproxy.yaml: the proxy listens on 127.0.0.1:8080, iperf3 on 5201.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=5
engines="adaptive auto splice copy"
while getopts "t:e:h" o; do
  case $o in
    t) secs=$OPTARG ;;
    e) engines=$OPTARG ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
  esac
done

. bench/common.sh
install_and_build iperf3
zc=$ZCPROXY_BIN
conf=conf/zcproxy.yaml
proxy_port=8080
server_port=5201
for p in $proxy_port $server_port; do
  ! port_open "$p" || { echo "port $p is in use; stop what runs there first" >&2; exit 1; }
done

iperf3 -s -p $server_port >/dev/null 2>&1 &
pids+=($!)
wait_port $server_port

# iperf3 through port $1 with extra args; prints the receiver's Gbit/s.
measure() {
  local port=$1; shift
  iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -f g "$@" 2>&1 |
    awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") v = $(i-1) } END { print v ? v : "fail" }'
}
run_cases() {  # label port
  printf "%-20s %10s %10s %10s\n" "$1" "$(measure "$2")" "$(measure "$2" -R)" "$(measure "$2" -P 4)"
}

echo
echo "iperf3 on loopback, $secs s per figure, Gbit/s ($(nproc) cores, kernel $(uname -r))"
printf "%-20s %10s %10s %10s\n" "path" "up" "down (-R)" "-P 4"
run_cases "direct" $server_port
for engine in $engines; do
  sed "s/^\(  engine:\).*/\1 $engine/; s/^\(  access_log:\).*/\1 false/" "$conf" >"$work/$engine.yaml"
  $zc --check -c "$work/$engine.yaml" >/dev/null
  $zc -c "$work/$engine.yaml" 2>"$work/$engine.log" &
  zpid=$!
  pids+=($zpid)
  wait_port $proxy_port
  run_cases "zcproxy $engine" $proxy_port
  kill -TERM $zpid
  wait $zpid || { echo "zcproxy ($engine) exited with $?" >&2; cat "$work/$engine.log" >&2; exit 1; }
done
