#!/usr/bin/env bash
# zcproxy against HAProxy (TCP mode, with and without splice), nginx `stream` and socat, and direct,
# in one run on loopback: iperf3 throughput and CPU per GiB, small HTTP messages and connection
# rate through each proxy (wrk against an nginx backend), and memory with idle connections held.
# Every peer runs at its defaults and tuned for throughput; all proxies stay up for the whole run
# and the cases are interleaved (round -> case -> proxy), so drift hits them all alike.
#
#   bash bench/run.sh [--quick] [--rounds N] [--time SECONDS] [--out DIR]
#
# --quick: one round of 1 s figures, 100 idle connections (a smoke check, not a measurement).
# Writes DIR/latest.md (the table) and DIR/latest.png (the plot); DIR defaults to bench/results.
# ZCPROXY_BIN=path uses that binary instead of building a Release one.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
secs=5
idle=1000
out=bench/results
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; rounds=1; secs=1; idle=100 ;;
    --rounds) rounds=$2; shift ;;
    --time) secs=$2; shift ;;
    --out) out=$2; shift ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

. bench/common.sh
install_and_build iperf3 haproxy nginx libnginx-mod-stream socat wrk gnuplot-nox jq procps

threads=$(nproc)
hz=$(getconf CLK_TCK)
results=$work/results.txt   # name case round value...
: >"$results"
log() { echo "[bench] $*" >&2; }

# --- backends: iperf3 and an nginx serving a small file --------------------------------------
iperf_port=15201
http_port=15280
iperf3 -s -p $iperf_port >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$work/www" "$work/backend"
head -c 100 /dev/zero | tr '\0' 'x' >"$work/www/index.html"
cat >"$work/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$http_port; root $work/www; }
}
EOF
nginx -c "$work/backend/nginx.conf" -p "$work/backend" &
pids+=($!)
wait_port $iperf_port
wait_port $http_port

# --- the proxies: each listens on BASE (-> iperf3) and BASE+1 (-> http backend) -----------------
names=()      # in table order
declare -A base main_pids
next_base=16000

add_proxy() {  # name; sets $f, the prefix of the proxy's files in $work
  names+=("$1")
  base[$1]=$next_base
  next_base=$((next_base + 10))
  f=$work/$(tr -c 'a-z0-9\n' '_' <<<"$1")
}

start_zcproxy() {  # name engine
  local n=$1 b=$next_base
  add_proxy "$n"
  cat >"$f.yaml" <<EOF
threads: $threads
log: { level: warn, access_log: false }
relay: { engine: $2 }
listeners:
  - { name: iperf, bind: "127.0.0.1:$b", upstream: iperf }
  - { name: http, bind: "127.0.0.1:$((b + 1))", upstream: http }
upstreams:
  iperf: { endpoints: ["127.0.0.1:$iperf_port"] }
  http: { endpoints: ["127.0.0.1:$http_port"] }
EOF
  "$ZCPROXY_BIN" -c "$f.yaml" 2>"$f.log" &
  main_pids[$n]=$!
  pids+=($!)
}

start_haproxy() {  # name splice(0|1) tuned(0|1)
  local n=$1 b=$next_base tune="" opts=""
  add_proxy "$n"
  [ "$2" = 1 ] && opts="option splice-request
  option splice-response"
  if [ "$3" = 1 ]; then
    if [ "$2" = 1 ]; then tune="tune.pipesize 1048576"; else tune="tune.bufsize 1048576"; fi
  fi
  cat >"$f.cfg" <<EOF
global
  nbthread $threads
  maxconn 4000   # fits the 20,000-fd cap of this machine (HAProxy needs ~2.5 fds per conn)
  $tune
defaults
  mode tcp
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  $opts
frontend iperf
  bind 127.0.0.1:$b
  default_backend iperf
backend iperf
  server s1 127.0.0.1:$iperf_port
frontend http
  bind 127.0.0.1:$((b + 1))
  default_backend http
backend http
  server s1 127.0.0.1:$http_port
EOF
  haproxy -db -f "$f.cfg" >"$f.log" 2>&1 &
  main_pids[$n]=$!
  pids+=($!)
}

start_nginx() {  # name tuned(0|1)
  local n=$1 b=$next_base buf=""
  add_proxy "$n"
  [ "$2" = 1 ] && buf="proxy_buffer_size 1m;"
  mkdir -p "$f"
  cat >"$f/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $threads;
worker_rlimit_nofile 20000;
daemon off;
pid $f/nginx.pid;
error_log $f/error.log;
events { worker_connections 10000; }
stream {
  $buf
  server { listen 127.0.0.1:$b; proxy_pass 127.0.0.1:$iperf_port; }
  server { listen 127.0.0.1:$((b + 1)); proxy_pass 127.0.0.1:$http_port; }
}
EOF
  nginx -c "$f/nginx.conf" -p "$f" &
  main_pids[$n]=$!
  pids+=($!)
}

start_socat() {  # name tuned(0|1); socat forks a process per connection
  local n=$1 b=$next_base opt=()
  add_proxy "$n"
  [ "$2" = 1 ] && opt=(-b 1048576)
  socat "${opt[@]}" TCP-LISTEN:$b,bind=127.0.0.1,reuseaddr,fork,backlog=4096 TCP:127.0.0.1:$iperf_port &
  main_pids[$n]="$!"
  pids+=($!)
  socat "${opt[@]}" TCP-LISTEN:$((b + 1)),bind=127.0.0.1,reuseaddr,fork,backlog=4096 TCP:127.0.0.1:$http_port &
  main_pids[$n]+=" $!"
  pids+=($!)
}

names+=(direct)
start_zcproxy "zcproxy (default: adaptive)" adaptive
start_zcproxy "zcproxy auto" auto
start_zcproxy "zcproxy splice" splice
start_zcproxy "zcproxy copy" copy
start_haproxy "haproxy splice" 1 0
start_haproxy "haproxy splice tuned" 1 1
start_haproxy "haproxy" 0 0
start_haproxy "haproxy tuned" 0 1
start_nginx "nginx stream" 0
start_nginx "nginx stream tuned" 1
start_socat "socat" 0
start_socat "socat tuned" 1
for n in "${names[@]}"; do
  [ "$n" = direct ] && continue
  wait_port "${base[$n]}"
  wait_port "$((${base[$n]} + 1))"
done

iperf_at() { [ "$1" = direct ] && echo $iperf_port || echo "${base[$1]}"; }
http_at() { [ "$1" = direct ] && echo $http_port || echo $((${base[$1]} + 1)); }

# CPU ticks (user+sys) of the processes and all their descendants, live or reaped.
cpu_ticks() {
  local total=0 p kids
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    # after "(comm) ": utime, stime, and cutime/cstime (children already reaped) are fields 12-15;
    # a live child is counted by the recursion below, once.
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}')))
    kids=$(pgrep -P "$p" || true)
    for k in $kids; do total=$((total + $(cpu_ticks "$k"))); done
  done
  echo $total
}

# --- cases -----------------------------------------------------------------------------------
iperf_case() {  # name case round
  local n=$1 c=$2 r=$3 port args json bps bytes before after cpu
  port=$(iperf_at "$n")
  case $c in
    up) args=() ;;
    down) args=(-R) ;;
    p4) args=(-P 4) ;;
    bidir) args=(--bidir) ;;
  esac
  before=0
  [ "$n" != direct ] && before=$(cpu_ticks ${main_pids[$n]})
  # One retry: the iperf3 server can still be winding down the previous test ("server busy").
  for attempt in 1 2; do
    json=$(iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J "${args[@]}" 2>&1) || true
    sleep 0.2  # let a forking proxy reap its per-connection children, so their CPU is counted
    bytes=$(jq '.end.sum_received.bytes + (.end.sum_received_bidir_reverse.bytes // 0)' <<<"$json" 2>/dev/null || echo 0)
    [ "${bytes:-0}" != 0 ] && [ "$bytes" != null ] && break
    log "$n $c: iperf3 failed (attempt $attempt): $(jq -r '.error // empty' <<<"$json" 2>/dev/null | head -1)"
    [ $attempt = 2 ] && { echo "$n $c $r fail fail" >>"$results"; return; }
    sleep 1
    [ "$n" != direct ] && before=$(cpu_ticks ${main_pids[$n]})
  done
  bps=$(jq '.end.sum_received.bits_per_second + (.end.sum_received_bidir_reverse.bits_per_second // 0)' <<<"$json")
  cpu=-
  if [ "$n" != direct ]; then
    after=$(cpu_ticks ${main_pids[$n]})
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v b="$bytes" 'BEGIN { printf "%.3f", (t / hz) / (b / 1073741824) }')
  fi
  echo "$n $c $r $(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }') $cpu" >>"$results"
  log "$n $c round $r: $(tail -1 "$results" | awk '{print $(NF-1)}') Gbit/s, $cpu CPU s/GiB"
}

to_ms() {  # wrk latency like 512.00us / 1.20ms / 2.00s -> ms
  awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); x = v + 0;
    if (u == "us") x /= 1000; else if (u == "s") x *= 1000; printf "%.3f", x }'
}

wrk_case() {  # name case(rps|cps) round
  local n=$1 c=$2 r=$3 url txt rps p50 p99 hdr=()
  url="http://127.0.0.1:$(http_at "$n")/"
  [ "$c" = cps ] && hdr=(-H "Connection: close")
  txt=$(wrk -t1 -c32 -d"${secs}s" --latency "${hdr[@]}" "$url" 2>&1) || true
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$txt")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$txt")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$txt")")
  echo "$n $c $r ${rps:-fail} $p50 $p99" >>"$results"
  log "$n $c round $r: ${rps:-fail}/s p50 $p50 ms p99 $p99 ms"
}

iperf_cases=(up down p4)
iperf3 --help 2>&1 | grep -q -- --bidir && iperf_cases+=(bidir)
for r in $(seq "$rounds"); do
  for c in "${iperf_cases[@]}"; do
    for n in "${names[@]}"; do iperf_case "$n" "$c" "$r"; done
  done
  for c in rps cps; do
    for n in "${names[@]}"; do wrk_case "$n" "$c" "$r"; done
  done
done

# Memory with idle connections held open through the http listener.
rss_kib() {  # summed over the processes and their descendants
  local total=0 p
  for p in "$@"; do
    [ -r "/proc/$p/status" ] || continue
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
    for k in $(pgrep -P "$p" || true); do total=$((total + $(rss_kib "$k"))); done
  done
  echo $total
}
fd_count() {
  local total=0 p
  for p in "$@"; do
    [ -d "/proc/$p/fd" ] || continue
    total=$((total + $(ls "/proc/$p/fd" | wc -l)))
    for k in $(pgrep -P "$p" || true); do total=$((total + $(fd_count "$k"))); done
  done
  echo $total
}
ulimit -n 20000 2>/dev/null || true
for n in "zcproxy (default: adaptive)" "haproxy splice tuned" "haproxy tuned" "nginx stream tuned"; do
  port=$(http_at "$n")
  rss0=$(rss_kib ${main_pids[$n]}); fds0=$(fd_count ${main_pids[$n]})
  held=()
  for _ in $(seq "$idle"); do exec {fd}<>"/dev/tcp/127.0.0.1/$port"; held+=("$fd"); done
  sleep 1  # let the proxy accept and connect upstream for every one
  rss1=$(rss_kib ${main_pids[$n]}); fds1=$(fd_count ${main_pids[$n]})
  for fd in "${held[@]}"; do exec {fd}>&-; done
  echo "$n idle 1 $rss0 $rss1 $fds0 $fds1" >>"$results"
  log "$n: RSS $rss0 -> $rss1 KiB, fds $fds0 -> $fds1 with $idle idle connections"
  sleep 0.5
done

# --- report ----------------------------------------------------------------------------------
# median (min–max) of column COL over rounds, for name and case
stat() {
  awk -v n="$1" -v c="$2" -v col="$3" '
    { name = $0; sub(/ (up|down|p4|bidir|rps|cps|idle) [0-9]+ .*/, "", name)
      rest = substr($0, length(name) + 2); split(rest, f, " ")
      if (name == n && f[1] == c && f[col] != "fail" && f[col] != "-") v[++k] = f[col] + 0 }
    END { if (!k) { print "–"; exit }
      for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
      if (k == 1) printf "%g", m; else printf "%g (%g–%g)", m, v[1], v[k] }' "$results"
}
versions() {
  echo "- zcproxy: $("$ZCPROXY_BIN" --version | awk '{print $2}'), $threads threads, engine per row"
  echo "- HAProxy: $(haproxy -v | head -1 | awk '{print $3}'), nbthread $threads"
  echo "- nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///'), worker_processes $threads"
  echo "- socat: $(socat -V | awk '/socat version/ {print $3}'), a process per connection"
  echo "- iperf3: $(iperf3 --version | head -1 | awk '{print $2}'); wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
}
md=$out/latest.md
{
  echo "# zcproxy benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, loopback."
  echo "$rounds round(s), iperf3 and wrk for $secs s per figure; each cell is the median (min–max) over rounds."
  [ $quick = 1 ] && echo "**Quick mode: a smoke check, not a measurement.**"
  echo
  versions
  echo
  echo "Tuned: HAProxy \`tune.pipesize 1048576\` (splice) or \`tune.bufsize 1048576\` (no splice), nginx \`proxy_buffer_size 1m\`, socat \`-b 1048576\`. Defaults: as shipped."
  echo
  echo "## Throughput (iperf3, Gbit/s) and CPU (proxy user+sys seconds per GiB moved)"
  echo
  hdr="| proxy |"; sep="| --- |"
  for c in "${iperf_cases[@]}"; do hdr+=" $c Gbit/s |"; sep+=" ---: |"; done
  for c in "${iperf_cases[@]}"; do hdr+=" $c CPU s/GiB |"; sep+=" ---: |"; done
  echo "$hdr"; echo "$sep"
  for n in "${names[@]}"; do
    row="| $n |"
    for c in "${iperf_cases[@]}"; do row+=" $(stat "$n" "$c" 3) |"; done
    for c in "${iperf_cases[@]}"; do row+=" $(stat "$n" "$c" 4) |"; done
    echo "$row"
  done
  echo
  echo "## Small messages (wrk, 1 thread, 32 connections, 100-byte file from nginx)"
  echo
  echo "| proxy | keep-alive req/s | p50 ms | p99 ms | new connection per request, conn/s | p99 ms |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for n in "${names[@]}"; do
    echo "| $n | $(stat "$n" rps 3) | $(stat "$n" rps 4) | $(stat "$n" rps 5) | $(stat "$n" cps 3) | $(stat "$n" cps 5) |"
  done
  echo
  echo "## Memory with $idle idle connections (through the http listener)"
  echo
  echo "| proxy | RSS idle KiB | RSS with $idle KiB | fds idle | fds with $idle |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  awk '$0 ~ / idle 1 / { n = $0; sub(/ idle 1 .*/, "", n); split(substr($0, length(n) + 2), f, " ");
        printf "| %s | %s | %s | %s | %s |\n", n, f[3], f[4], f[5], f[6] }' "$results"
} >"$md"

# The plot: median Gbit/s per case, and CPU s/GiB for single-stream up.
dat=$work/plot.dat
{
  echo "proxy ${iperf_cases[*]} cpu_up"
  for n in "${names[@]}"; do
    line="\"$n\""
    for c in "${iperf_cases[@]}"; do line+=" $(stat "$n" "$c" 3 | awk '{print $1}' | sed 's/–/0/')"; done
    line+=" $(stat "$n" up 4 | awk '{print $1}' | sed 's/–/0/')"
    echo "$line"
  done
} >"$dat"
ncols=$((${#iperf_cases[@]} + 1))
gnuplot <<EOF
set terminal png size 1400,900 font ",10"
set output "$out/latest.png"
set multiplot layout 2,1 title "zcproxy and peers on loopback ($(nproc) cores, $(date -u +%Y-%m-%d))"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -25
set key top right
set grid ytics
set yrange [0:*]
set ylabel "Gbit/s (median)"
plot for [i=2:$ncols] "$dat" using i:xtic(1) title columnheader(i)
set ylabel "CPU s per GiB, single stream up (lower is better)"
plot "$dat" using $((ncols + 1)):xtic(1) title "CPU s/GiB (up)" lc rgb "#aa3333"
unset multiplot
EOF
log "wrote $md and $out/latest.png"
cat "$md"
# The quick mode is a test of this script and of zcproxy under it: a failed zcproxy or direct case
# fails the run, and so does a run where most cases failed (a tool's output not understood). A
# peer's odd failure (socat now and then drops an iperf3 --bidir test of 1 s) is reported and
# shows as "–" in the table.
failed=$(grep -c " fail" "$results" || true)
if [ "$failed" -gt 0 ]; then
  log "$failed case(s) failed:"; grep " fail" "$results" >&2
  if grep -E "^(zcproxy|direct)" "$results" | grep -q " fail" ||
     [ $((2 * failed)) -gt "$(wc -l <"$results")" ]; then
    exit 1
  fi
fi
