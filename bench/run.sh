#!/usr/bin/env bash
# zcproxy against HAProxy (TCP mode, with and without splice), nginx `stream` and socat, and direct,
# in one run on loopback: iperf3 throughput and CPU per GiB; small HTTP messages through each proxy
# (wrk against an nginx backend, keep-alive and a new connection per request, 32 and 512
# connections): rate, p50/p99/p99.9 and CPU per request or connection; system calls per request and
# per connection (a separate pass under strace); memory and fds with 1,000 and 8,000 idle
# connections held. Every peer runs at its defaults and tuned for throughput; all proxies stay up
# for the whole run and the cases are interleaved (round -> case -> proxy), so drift hits them all
# alike; socat (a process per connection) goes last in each case, and its children are waited for.
#
#   bash bench/run.sh [--quick] [--rounds N] [--time SECONDS] [--out DIR] [--baseline BINARY]
#                     [--only REGEX] [--topology loopback|veth]
#
# --quick: one round of 1 s figures, 100 idle connections (a smoke check, not a measurement).
# --baseline: also runs BINARY as "zcproxy before" (default engine) beside the one under test, in
# the same interleaved run: the A/B of a change. --only: only the proxies whose row name matches
# the extended REGEX (direct always runs), e.g. --only zcproxy for an A/B without the peers.
# --topology veth: the clients, the proxies and the backends in three network namespaces joined by
# two veth pairs (bench/common.sh's netns_up; made and removed by the run); latest-veth.md/png.
# Every run checks what it measures: a wrk case with any socket error or non-2xx response, an
# iperf3 case with an error or a short count, zcproxy's idle connections holding more than their two
# sockets, or a figure missing for zcproxy or direct fails the run (a peer's failure is reported).
# Writes DIR/latest.md (the table) and DIR/latest.png (the plot); DIR defaults to bench/results.
# ZCPROXY_BIN=path uses that binary instead of building a Release one.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
secs=5
idle_counts=(1000 8000)
out=bench/results
quick=0
baseline=""
only=""
topology=loopback
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; rounds=1; secs=1; idle_counts=(100) ;;
    --rounds) rounds=$2; shift ;;
    --time) secs=$2; shift ;;
    --out) out=$2; shift ;;
    --baseline) baseline=$(realpath "$2"); shift ;;
    --only) only=$2; shift ;;
    --topology) case $2 in loopback | veth) topology=$2 ;; *) sed -n '2,23p' "$0"; exit 2 ;; esac; shift ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

. bench/common.sh
install_and_build iperf3 haproxy nginx libnginx-mod-stream socat wrk gnuplot-nox jq procps curl strace

threads=$(nproc)
hz=$(getconf CLK_TCK)
results=$work/results.txt   # name case round value...
: >"$results"
log() { echo "[bench] $*" >&2; }

report=latest  # the report's files: DIR/latest.md and .png
if [ "$topology" = veth ]; then
  bash .ci/deps.sh iproute2
  netns_up "zcb-$$"
  report=latest-veth
fi

# --- backends: iperf3 and an nginx serving a small file --------------------------------------
iperf_port=15201
http_port=15280
bind=()  # iperf3 listens on every address on loopback, on the server's address in veth
[ "$topology" = veth ] && bind=(-B "$backend_ip")
"${in_server[@]}" iperf3 -s "${bind[@]}" -p $iperf_port >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$work/www" "$work/backend"
# nginx's workers run as another user (www-data, from root): they must be able to pass through
# $work (mktemp makes it 0700) to read the file, or every answer is a 403.
chmod a+x "$work"
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
  server { listen $backend_ip:$http_port; root $work/www; }
}
EOF
"${in_server[@]}" nginx -c "$work/backend/nginx.conf" -p "$work/backend" &
pids+=($!)
wait_port $iperf_port "$backend_ip"
wait_port $http_port "$backend_ip"

# --- the proxies: each listens on BASE (-> iperf3) and BASE+1 (-> http backend) -----------------
names=()      # in table order
declare -A base main_pids logs
next_base=16000

add_proxy() {  # name; sets $f, the prefix of the proxy's files in $work
  names+=("$1")
  base[$1]=$next_base
  next_base=$((next_base + 10))
  f=$work/$(tr -c 'a-z0-9\n' '_' <<<"$1")
}

start_zcproxy() {  # name engine [binary]
  local n=$1 b=$next_base bin=${3:-$ZCPROXY_BIN}
  add_proxy "$n"
  # The admin listener (any free port, read back from the "admin on" line, which is logged at
  # level info: start-up lines only, nothing per connection) gives the idle section the leases.
  cat >"$f.yaml" <<EOF
threads: $threads
log: { level: info, access_log: false }
admin: { bind: "127.0.0.1:0" }
relay: { engine: $2 }
listeners:
  - { name: iperf, bind: "$listen_ip:$b", upstream: iperf }
  - { name: http, bind: "$listen_ip:$((b + 1))", upstream: http }
upstreams:
  iperf: { endpoints: ["$backend_ip:$iperf_port"] }
  http: { endpoints: ["$backend_ip:$http_port"] }
EOF
  "${in_proxy[@]}" "$bin" -c "$f.yaml" 2>"$f.log" &
  main_pids[$n]=$!
  logs[$n]=$f.log
  pids+=($!)
}

start_haproxy() {  # name splice(0|1) tuned(0|1)
  local n=$1 b=$next_base tune="" opts="" pipes=""
  add_proxy "$n"
  [ "$2" = 1 ] && opts="option splice-request
  option splice-response" && pipes="maxpipes 900"
  if [ "$3" = 1 ]; then
    if [ "$2" = 1 ]; then tune="tune.pipesize 1048576"; else tune="tune.bufsize 1048576"; fi
  fi
  cat >"$f.cfg" <<EOF
global
  nbthread $threads
  # Room for the 8,000 idle connections (2 fds each), within this machine's 20,000-fd cap: HAProxy
  # sizes its fd table from maxconn (and maxpipes, a quarter of maxconn by default, 2 fds each)
  # and refuses to start when the cap is below that.
  maxconn 9000
  $pipes
  $tune
defaults
  mode tcp
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  $opts
frontend iperf
  bind $listen_ip:$b
  default_backend iperf
backend iperf
  server s1 $backend_ip:$iperf_port
frontend http
  bind $listen_ip:$((b + 1))
  default_backend http
backend http
  server s1 $backend_ip:$http_port
EOF
  "${in_proxy[@]}" haproxy -db -f "$f.cfg" >"$f.log" 2>&1 &
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
events { worker_connections 19000; }  # 8,000 idle connections are 16,000 on one worker at worst
stream {
  $buf
  server { listen $listen_ip:$b; proxy_pass $backend_ip:$iperf_port; }
  server { listen $listen_ip:$((b + 1)); proxy_pass $backend_ip:$http_port; }
}
EOF
  "${in_proxy[@]}" nginx -c "$f/nginx.conf" -p "$f" &
  main_pids[$n]=$!
  pids+=($!)
}

start_socat() {  # name tuned(0|1); socat forks a process per connection
  local n=$1 b=$next_base opt=()
  add_proxy "$n"
  [ "$2" = 1 ] && opt=(-b 1048576)
  "${in_proxy[@]}" socat "${opt[@]}" TCP-LISTEN:$b,bind=$listen_ip,reuseaddr,fork,backlog=4096 TCP:$backend_ip:$iperf_port &
  main_pids[$n]="$!"
  pids+=($!)
  "${in_proxy[@]}" socat "${opt[@]}" TCP-LISTEN:$((b + 1)),bind=$listen_ip,reuseaddr,fork,backlog=4096 TCP:$backend_ip:$http_port &
  main_pids[$n]+=" $!"
  pids+=($!)
}

wanted() { [ -z "$only" ] || grep -Eq -- "$only" <<<"$1"; }  # name: whether --only keeps it
names+=(direct)
start_zcproxy "zcproxy (default: adaptive)" adaptive
[ -n "$baseline" ] && start_zcproxy "zcproxy before (default: adaptive)" adaptive "$baseline"
wanted "zcproxy auto" && start_zcproxy "zcproxy auto" auto
wanted "zcproxy splice" && start_zcproxy "zcproxy splice" splice
wanted "zcproxy copy" && start_zcproxy "zcproxy copy" copy
wanted "haproxy splice" && start_haproxy "haproxy splice" 1 0
wanted "haproxy splice tuned" && start_haproxy "haproxy splice tuned" 1 1
wanted "haproxy" && start_haproxy "haproxy" 0 0
wanted "haproxy tuned" && start_haproxy "haproxy tuned" 0 1
wanted "nginx stream" && start_nginx "nginx stream" 0
wanted "nginx stream tuned" && start_nginx "nginx stream tuned" 1
wanted "socat" && start_socat "socat" 0
wanted "socat tuned" && start_socat "socat tuned" 1
for n in "${names[@]}"; do
  [ "$n" = direct ] && continue
  wait_port "${base[$n]}" "$listen_ip"
  wait_port "$((${base[$n]} + 1))" "$listen_ip"
done

iperf_at() { [ "$1" = direct ] && echo $iperf_port || echo "${base[$1]}"; }
http_at() { [ "$1" = direct ] && echo $http_port || echo $((${base[$1]} + 1)); }
host_at() { [ "$1" = direct ] && echo "$backend_ip" || echo "$listen_ip"; }

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
# Why iperf3's JSON holds no sound figure (one line), or nothing when it does. Each direction (two
# with --bidir) must have moved bytes, have a receiver's bits_per_second, and have received about
# what was sent: the bytes still in flight when the test stops are sent but never counted by the
# receiver (with -P 4 on a busy machine 10-16% of them). So the shortfall may be what the buffers
# on the way can hold, per stream: the largest send and receive buffers (tcp_wmem, tcp_rmem) of
# both hops and 4 MiB in the proxy, or 10% of the bytes sent, whichever is more; and no more.
inflight=$((2 * ($(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_wmem) +
                  $(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_rmem)) + 4 * 1048576))
iperf_bad() {  # json bidir(0|1) streams
  [ -n "$1" ] || { echo "iperf3 printed nothing"; return; }
  jq -r --argjson bidir "$2" --argjson slack $(($3 * inflight)) '
    def dir(s; r; what):
      if (s.bytes // 0) <= 0 or (r.bytes // 0) <= 0 then
        "\(what): nothing moved (bytes sent: \(s.bytes // "none"), received: \(r.bytes // "none"))"
      elif (r.bits_per_second // 0) <= 0 then "\(what): no bits_per_second at the receiver"
      elif s.bytes - r.bytes > ([s.bytes * 0.1, $slack] | max) then
        "\(what): received \(r.bytes) of \(s.bytes) bytes sent"
      else empty end;
    if .error then "iperf3: \(.error)"
    else [dir(.end.sum_sent; .end.sum_received; "forward"),
          (if $bidir == 1 then dir(.end.sum_sent_bidir_reverse; .end.sum_received_bidir_reverse;
                                   "reverse") else empty end)] | .[0] // empty
    end' <<<"$1" 2>/dev/null || echo "not iperf3 JSON: $(head -c 200 <<<"$1" | tr '\n' ' ')"
}

iperf_case() {  # name case round
  local n=$1 c=$2 r=$3 port args json why bps bytes before after cpu bidir=0 streams=1
  port=$(iperf_at "$n")
  case $c in
    up) args=() ;;
    down) args=(-R) ;;
    p4) args=(-P 4); streams=4 ;;
    bidir) args=(--bidir); bidir=1 ;;
  esac
  before=0
  [ "$n" != direct ] && before=$(cpu_ticks ${main_pids[$n]})
  # One retry: the iperf3 server can still be winding down the previous test ("server busy").
  # And up to three more for a --bidir test whose streams swapped roles: iperf3 tells its two
  # streams apart by the order the server accepts them, and a proxy with more than one thread
  # (every one here) may connect upstream in the other order. Then both ends send on one
  # connection, neither reads it, and nothing arrives either way (seen in 2-4 of 25 runs through
  # zcproxy with 2 threads, 0 of 25 with 1; direct, never). Nothing there says anything of the
  # proxy, so it is run again; any other failure is not.
  local attempts=2
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    json=$("${in_client[@]}" iperf3 -c "$(host_at "$n")" -p "$port" -t "$secs" -J "${args[@]}" 2>&1) || true
    sleep 0.2  # let a forking proxy reap its per-connection children, so their CPU is counted
    why=$(iperf_bad "$json" $bidir $streams)
    [ -z "$why" ] && break
    log "$n $c: iperf3 failed (attempt $attempt): $why"
    if [ $bidir = 1 ] && [ $attempts -lt 5 ] && jq -e '.error == null and
        .end.sum_received.bytes == 0 and .end.sum_received_bidir_reverse.bytes == 0' \
        <<<"$json" >/dev/null 2>&1; then
      log "$n $c: the streams swapped roles (nothing arrived either way): run again"
      attempts=$((attempts + 1))
    fi
    [ $attempt = $attempts ] && { echo "$n $c $r fail fail" >>"$results"; return; }
    sleep 1
    [ "$n" != direct ] && before=$(cpu_ticks ${main_pids[$n]})
  done
  bytes=$(jq '.end.sum_received.bytes + (.end.sum_received_bidir_reverse.bytes // 0)' <<<"$json")
  bps=$(jq '.end.sum_received.bits_per_second + (.end.sum_received_bidir_reverse.bits_per_second // 0)' <<<"$json")
  cpu=-
  if [ "$n" != direct ]; then
    after=$(cpu_ticks ${main_pids[$n]})
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v b="$bytes" 'BEGIN { printf "%.3f", (t / hz) / (b / 1073741824) }')
  fi
  echo "$n $c $r $(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }') $cpu" >>"$results"
  log "$n $c round $r: $(tail -1 "$results" | awk '{print $(NF-1)}') Gbit/s, $cpu CPU s/GiB"
}

# Why wrk's output holds no sound figure (every reason, on one line), or nothing when it does.
# wrk prints Requests/sec even when every request failed: it counts the failures apart, on lines
# it prints only when a count is not zero ("Socket errors: connect 0, read 3, write 0, timeout 0",
# "Non-2xx or 3xx responses: 12"). Any such count fails the case. None is expected, not even with
# "Connection: close": nginx sends its response whole and then closes, and wrk, run against the
# backend directly and through zcproxy, HAProxy, nginx stream and socat, with and without the
# header, counted no error of any kind.
wrk_bad() {  # wrk output
  local rps errs non2xx why=()
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$1")
  errs=$(sed -n 's/^ *Socket errors: *//p' <<<"$1")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$1")
  if [ -z "$rps" ]; then
    why+=("no Requests/sec figure ($(grep -v '^ ' <<<"$1" | head -1))")
  elif ! awk -v x="$rps" 'BEGIN { exit !(x + 0 > 0) }'; then
    why+=("Requests/sec is $rps")
  fi
  if grep -q '[1-9]' <<<"$errs"; then why+=("socket errors: $errs"); fi
  if [ -n "$non2xx" ] && [ "$non2xx" != 0 ]; then why+=("$non2xx responses not 2xx or 3xx"); fi
  if [ -n "$rps" ] && { ! grep -q '^ *50% ' <<<"$1" || ! grep -q '^ *99% ' <<<"$1"; }; then
    why+=("no p50 or p99 latency")
  fi
  if [ ${#why[@]} -gt 0 ]; then (IFS=';'; echo "${why[*]}" | sed 's/;/; /g'); fi
}

# wrk's percentiles beyond --latency's 99%: its done() hook prints p50, p99 and p99.9 (µs) and
# the count of requests (for the CPU per request).
cat >"$work/pct.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("pct %d %d %d %d\n", latency:percentile(50), latency:percentile(99),
                         latency:percentile(99.9), summary.requests))
end
EOF

# Let socat's per-connection children exit before the next case: a proxy measured while they
# wind down (after 512 connections, seconds) is measured on a loaded machine.
settle() {  # name
  [ "$1" = "${1#socat}" ] && return 0
  local kids
  for _ in $(seq 300); do
    kids=""
    for p in ${main_pids[$1]}; do kids+=$(pgrep -P "$p" || true); done
    [ -z "$kids" ] && return 0
    sleep 0.1
  done
  log "$1: children still running after 30 s"
}

wrk_case() {  # name case(rps|cps)CONNECTIONS round
  local n=$1 c=$2 r=$3 url txt why rps p50 p99 p999 reqs before after cpu=- hdr=() conns=${2#???}
  url="http://$(host_at "$n"):$(http_at "$n")/"
  [ "${c:0:3}" = cps ] && hdr=(-H "Connection: close")
  [ "$n" != direct ] && before=$(cpu_ticks ${main_pids[$n]})
  txt=$("${in_client[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$work/pct.lua" "${hdr[@]}" "$url" 2>&1) || true
  sleep 0.2  # as for iperf3: socat's children reaped, their CPU counted
  why=$(wrk_bad "$txt")
  read -r _ p50 p99 p999 reqs < <(grep '^pct ' <<<"$txt" || echo "pct")
  [ -z "$why" ] && [ -z "$reqs" ] && why="no percentiles from the done() hook"
  if [ -n "$why" ]; then
    echo "$n $c $r fail fail fail fail fail" >>"$results"
    log "$n $c round $r: wrk failed: $why"
    settle "$n"
    return
  fi
  if [ "$n" != direct ]; then
    after=$(cpu_ticks ${main_pids[$n]})
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v q="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / q }')
  fi
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$txt")
  read -r p50 p99 p999 < <(awk -v a="$p50" -v b="$p99" -v c="$p999" 'BEGIN { printf "%.3f %.3f %.3f\n", a / 1000, b / 1000, c / 1000 }')
  echo "$n $c $r $rps $p50 $p99 $p999 $cpu" >>"$results"
  log "$n $c round $r: $rps/s p50 $p50 ms p99 $p99 ms p99.9 $p999 ms, $cpu CPU µs each"
  settle "$n"
}

wrk_cases=(rps32 rps512 cps32 cps512)
iperf_cases=(up down p4)
# (Not a pipe into grep -q: grep may exit before iperf3 has written all its help, iperf3 then dies
# of SIGPIPE and, with pipefail, bidir was dropped: in 1 of 5 tries here.)
grep -q -- --bidir <<<"$(iperf3 --help 2>&1)" && iperf_cases+=(bidir)
for r in $(seq "$rounds"); do
  for c in "${iperf_cases[@]}"; do
    for n in "${names[@]}"; do iperf_case "$n" "$c" "$r"; done
  done
  for c in "${wrk_cases[@]}"; do
    for n in "${names[@]}"; do wrk_case "$n" "$c" "$r"; done
  done
done

# System calls per request and per connection: a separate short pass under `strace -c -f`
# (tracing slows a proxy several times over, so none of the figures above is taken with it), every
# process and thread of the proxy traced, and a forking one's new children followed.
descendants() {  # pid...: the pids and all their descendants
  local p
  for p in "$@"; do echo "$p"; descendants $(pgrep -P "$p" || true); done
}
sys_case() {  # name case(rps|cps)
  local n=$1 c=$2 args=() hdr=() txt reqs sp calls
  [ "$c" = cps ] && hdr=(-H "Connection: close")
  for p in $(descendants ${main_pids[$n]}); do args+=(-p "$p"); done
  strace -c -f -o "$work/strace.txt" "${args[@]}" 2>"$work/strace.err" &
  sp=$!
  # Attached (strace says so for each process) before the load starts.
  for _ in $(seq 100); do
    [ "$(grep -c attached "$work/strace.err")" -ge "$(descendants ${main_pids[$n]} | wc -l)" ] && break
    sleep 0.05
  done
  txt=$("${in_client[@]}" wrk -t1 -c32 -d2s -s "$work/pct.lua" "${hdr[@]}" "http://$(host_at "$n"):$(http_at "$n")/" 2>&1) || true
  sleep 0.2
  kill -INT "$sp" 2>/dev/null || true
  wait "$sp" || true
  read -r _ _ _ _ reqs < <(grep '^pct ' <<<"$txt" || echo "pct")
  # strace -c's table: "% time seconds usecs/call calls [errors] syscall", then a "total" line.
  # Kept: the total per request, and the 8 most frequent calls per request.
  calls=""
  if [ -n "$reqs" ] && [ "$reqs" -gt 0 ]; then
    calls=$(awk -v q="$reqs" '$NF == "total" && $1 ~ /^[0-9.]+$/ { printf "%.2f", $4 / q }' "$work/strace.txt")
    [ -n "$calls" ] && calls+=" $(awk -v q="$reqs" '$NF != "total" && $NF ~ /^[a-z_0-9]+$/ &&
        $1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ { printf "%.2f %s\n", $4 / q, $NF }' "$work/strace.txt" |
        sort -nr | head -8 | awk '{ printf "%s%s:%s", (NR > 1 ? "," : ""), $2, $1 }')"
  fi
  if [ -z "$calls" ]; then
    echo "$n sys$c 1 fail" >>"$results"
    log "$n sys$c: no strace figures ($(head -c 200 "$work/strace.err" | tr '\n' ' '))"
  else
    echo "$n sys$c 1 $calls" >>"$results"
    log "$n: system calls per ${c/rps/request}: $calls"
  fi
  settle "$n"
}
for n in "${names[@]}"; do
  [ "$n" = direct ] && continue
  for c in rps cps; do sys_case "$n" "$c"; done
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
# zcproxy's /metrics (its admin port is in its start-up line), or nothing.
zcproxy_metrics() {  # name
  local port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.* admin on 127\.0\.0\.1:\([0-9]*\):.*/\1/p' "${logs[$1]}")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] && "${in_proxy[@]}" curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" || true
}
# A sample's value from metrics text, as an integer (the exposition may write 1e+05), or nothing.
metric() { awk -v m="$1" '$1 == m { printf "%d\n", $2 }' <<<"$2"; }  # sample name, metrics text

# zcproxy must hold an idle connection with its two sockets (the client's and the upstream's) and
# nothing else: no pipe (2 fds each, and pinned kernel memory) and no pool buffer. Why not (one
# line), or nothing. The fd count may stray by a tenth of the connections (a timer or the admin
# connection coming and going), far less than one pipe per connection would add.
zcproxy_idle_bad() {  # rss0 rss1 fds0 fds1 metrics-before metrics-while-held
  local d=$(($4 - $3)) lo=$((2 * idle - idle / 10)) hi=$((2 * idle + idle / 10)) a0 a1 pipes bufs
  a0=$(metric zcproxy_connections_active "$5"); a1=$(metric zcproxy_connections_active "$6")
  pipes=$(metric 'zcproxy_pipes{state="leased"}' "$6")
  bufs=$(metric zcproxy_copy_buffers_leased "$6")
  if [ "$1" = 0 ] || [ "$2" = 0 ] || [ "$3" = 0 ] || [ "$4" = 0 ]; then
    echo "no RSS or fd figure (is zcproxy still running?)"
  elif [ -z "$5" ] || [ -z "$6" ]; then
    echo "no /metrics from zcproxy's admin listener"
  elif [ -z "$a0" ] || [ -z "$a1" ] || [ -z "$pipes" ] || [ -z "$bufs" ]; then
    echo "no connections_active, pipes leased or copy_buffers_leased in /metrics"
  elif [ $((a1 - a0)) != "$idle" ]; then
    echo "connections active went from $a0 to $a1, not up by $idle"
  elif [ "$d" -lt $lo ] || [ "$d" -gt $hi ]; then
    echo "fds rose by $d, not by about $((2 * idle)) ($lo-$hi): 2 per connection"
  elif [ "$pipes" != 0 ] || [ "$bufs" != 0 ]; then
    echo "$pipes pipes and $bufs copy buffers leased by idle connections"
  fi
}

# veth: bash opens a /dev/tcp connection in its own namespace only, so a child in the client's
# holds them: it opens $idle connections to PORT, prints how many it has, and holds them until its
# stdin closes. held gets as many copies of the pipe to that stdin: closing them all, as the loop
# does with its sockets on loopback, lets the child close its connections and end.
hold_in_client() {  # port
  local n w r
  # The last one has had its stdin closed a while ago (and has ended, or ends now)
  [ -z "${holder_PID:-}" ] || { kill "$holder_PID" 2>/dev/null; wait "$holder_PID"; } || true
  coproc holder { exec "${in_client[@]}" bash -c 'n=0
    for _ in $(seq "$2"); do { exec {fd}<>"/dev/tcp/$0/$1"; } 2>/dev/null || break; n=$((n + 1)); done
    echo "$n"; read -r _ || true' "$listen_ip" "$1" "$idle"; }
  w=${holder[1]} r=${holder[0]}
  read -r -t 60 n <&"$r" || n=0
  for _ in $(seq "$n"); do exec {fd}>&"$w"; held+=("$fd"); done
  exec {w}>&- {r}<&-
}

ulimit -n 20000 2>/dev/null || true
for idle in "${idle_counts[@]}"; do
for n in "zcproxy (default: adaptive)" "zcproxy before (default: adaptive)" "haproxy" "haproxy splice" \
  "nginx stream" "haproxy splice tuned" "haproxy tuned" "nginx stream tuned"; do
  [ -n "${base[$n]:-}" ] || continue  # not in this run (--baseline, --only)
  port=$(http_at "$n")
  rss0=$(rss_kib ${main_pids[$n]}); fds0=$(fd_count ${main_pids[$n]})
  m0=""
  [ "$n" != "${n#zcproxy}" ] && m0=$(zcproxy_metrics "$n")  # after the fd count: it opens one
  held=()
  if [ "$topology" = veth ]; then
    hold_in_client "$port"
  else
    for _ in $(seq "$idle"); do
      # (bash's own message quiet: the check below tells; the braces keep stderr as it is)
      { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || break
      held+=("$fd")
    done
  fi
  # Let the proxy accept and connect upstream for every one (more time on a busy machine).
  sleep 1
  for _ in $(seq 10); do
    fds1=$(fd_count ${main_pids[$n]})
    [ $((fds1 - fds0)) -ge $((2 * idle)) ] && break
    sleep 0.5
  done
  rss1=$(rss_kib ${main_pids[$n]}); fds1=$(fd_count ${main_pids[$n]})
  # zcproxy's figures are checked (and fail the run if off); the peers' are only reported.
  extra="" why=""
  if [ "$n" != "${n#zcproxy}" ]; then
    m1=$(zcproxy_metrics "$n")
    why=$(zcproxy_idle_bad "$rss0" "$rss1" "$fds0" "$fds1" "$m0" "$m1")
    [ ${#held[@]} = "$idle" ] || why="could open only ${#held[@]} of $idle connections"
    pipes=$(metric 'zcproxy_pipes{state="leased"}' "$m1")
    bufs=$(metric zcproxy_copy_buffers_leased "$m1")
    extra=" ${pipes:--} ${bufs:--}"
    [ -n "$why" ] && extra+=" fail"
  fi
  for fd in "${held[@]}"; do exec {fd}>&-; done
  echo "$n idle$idle 1 $rss0 $rss1 $fds0 $fds1$extra" >>"$results"
  msg="$n: RSS $rss0 -> $rss1 KiB, fds $fds0 -> $fds1 with ${#held[@]} idle connections"
  log "$msg${extra:+; pipes and copy buffers leased:${extra% fail}}"
  [ -n "$why" ] && log "$n: idle connections: fail: $why"
  # The closed connections' TIME_WAIT and the proxies' frees settle before the next count.
  sleep 1
done
done

# veth: the share of its bytes zcproxy's default engine spliced. Neither peer is on its host there
# (not loopback, not its own address), so `adaptive` should choose `auto` (splice) throughout.
spliced=""
if [ "$topology" = veth ]; then
  spliced=$(zcproxy_metrics "zcproxy (default: adaptive)" | awk '
    $1 ~ /^zcproxy_listener_relayed_bytes_total[{]/ { t += $2; if ($1 ~ /engine="splice"/) s += $2 }
    END { if (t > 0) printf "%.1f", 100 * s / t }')
fi

# --- report ----------------------------------------------------------------------------------
# median (min–max) of column COL over rounds, for name and case
stat() {
  awk -v n="$1" -v c="$2" -v col="$3" '
    { name = $0; sub(/ (up|down|p4|bidir|rps[0-9]+|cps[0-9]+|idle[0-9]+|sysrps|syscps) [0-9]+ .*/, "", name)
      rest = substr($0, length(name) + 2); split(rest, f, " ")
      if (name == n && f[1] == c && f[col] != "fail" && f[col] != "-") v[++k] = f[col] + 0 }
    END { if (!k) { print "–"; exit }
      for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      m = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
      if (k == 1) printf "%g", m; else printf "%g (%g–%g)", m, v[1], v[k] }' "$results"
}
versions() {
  echo "- zcproxy: $("$ZCPROXY_BIN" --version | awk '{print $2}'), $threads threads, engine per row"
  [ -z "$baseline" ] || echo "- zcproxy before: $baseline, $("$baseline" --version | awk '{print $2}')"
  echo "- HAProxy: $(haproxy -v | head -1 | awk '{print $3}'), nbthread $threads"
  echo "- nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///'), worker_processes $threads"
  echo "- socat: $(socat -V | awk '/socat version/ {print $3}'), a process per connection"
  echo "- iperf3: $(iperf3 --version | head -1 | awk '{print $2}'); wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
}
md=$out/$report.md
where=loopback
[ "$topology" = veth ] && where="veth: client, proxy and server in three network namespaces joined by two veth pairs (MTU 1500)"
{
  echo "# zcproxy benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, $where."
  echo "$rounds round(s), iperf3 and wrk for $secs s per figure; each cell is the median (min–max) over rounds."
  [ $quick = 1 ] && echo "**Quick mode: a smoke check, not a measurement.**"
  [ -n "$spliced" ] && echo "zcproxy (default: adaptive) moved $spliced% of its bytes by splice (its /metrics): its peers are not on this host."
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
  echo "## Small messages (wrk, 1 thread, 100-byte file from nginx)"
  echo
  echo "Keep-alive: requests per second over 32 or 512 open connections. New connection per request:"
  echo "the same with \`Connection: close\` (a new connection through the proxy, and from it to nginx,"
  echo "for each request). CPU: the proxy's user+sys time per request (or connection), from /proc."
  echo
  for c in rps32 rps512 cps32 cps512; do
    case $c in
      rps*) what="keep-alive, ${c#rps} connections"; unit="req/s"; per="request" ;;
      cps*) what="new connection per request, ${c#cps} at once"; unit="conn/s"; per="connection" ;;
    esac
    echo "| $what | $unit | p50 ms | p99 ms | p99.9 ms | CPU µs per $per |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for n in "${names[@]}"; do
      echo "| $n | $(stat "$n" $c 3) | $(stat "$n" $c 4) | $(stat "$n" $c 5) | $(stat "$n" $c 6) | $(stat "$n" $c 7) |"
    done
    echo
  done
  echo "## System calls per request and per connection"
  echo
  echo "A separate pass (\`strace -c -f\` on every process and thread of the proxy, 2 s of wrk with 32"
  echo "connections; tracing slows a proxy down, so no figure above is taken with it): calls per"
  echo "keep-alive request and per new connection, and the most frequent of them."
  echo
  echo "| proxy | per request | most frequent, per request | per connection | most frequent, per connection |"
  echo "| --- | ---: | --- | ---: | --- |"
  for n in "${names[@]}"; do
    [ "$n" = direct ] && continue
    awk -v n="$n" '
      { name = $0; sub(/ (sysrps|syscps) 1 .*/, "", name); if (name != n || name == $0) next
        split(substr($0, length(name) + 2), f, " "); gsub(/,/, ", ", f[4]); gsub(/:/, " ", f[4])
        v[f[1]] = f[3]; top[f[1]] = f[4] }
      END { printf "| %s | %s | %s | %s | %s |\n", n, v["sysrps"] ? v["sysrps"] : "–", top["sysrps"],
                   v["syscps"] ? v["syscps"] : "–", top["syscps"] }' "$results"
  done
  echo
  for idle in "${idle_counts[@]}"; do
    echo "## Memory with $idle idle connections (through the http listener)"
    echo
    echo "| proxy | RSS idle KiB | RSS with $idle KiB | KiB per connection | fds idle | fds with $idle | fds per connection |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -v c="idle$idle" '$0 ~ " " c " 1 " { n = $0; sub(" " c " 1 .*", "", n); split(substr($0, length(n) + 2), f, " ");
          printf "| %s | %s | %s | %.2f | %s | %s | %.2f |\n", n, f[3], f[4], (f[4] - f[3]) / '"$idle"', f[5], f[6], (f[6] - f[5]) / '"$idle"' }' "$results"
    echo
  done
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
set output "$out/$report.png"
set multiplot layout 2,1 title "zcproxy and peers on $topology ($(nproc) cores, $(date -u +%Y-%m-%d))"
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
log "wrote $md and $out/$report.png"
cat "$md"
# The quick mode is a test of this script and of zcproxy under it: a failed zcproxy or direct case
# fails the run, and so does a run where most cases failed (a tool's output not understood). A
# peer's odd failure is reported and shows as "–" in the table.
status=0
# Every figure the table shows for zcproxy and direct must be there: a "–" in their rows is a
# failure however it came about (a case failed every round, or was never run).
missing=()
# (and with --topology veth, zcproxy's default engine must have spliced most of its bytes)
[ "$topology" = loopback ] || awk -v s="${spliced:-0}" 'BEGIN { exit !(s > 50) }' ||
  missing+=("zcproxy (default: adaptive): spliced ${spliced:-no}% of its bytes, not most")
for n in "${names[@]}"; do
  [ "$n" = direct ] || [ "$n" != "${n#zcproxy}" ] || continue
  for c in "${iperf_cases[@]}"; do
    [ "$(stat "$n" "$c" 3)" != – ] || missing+=("$n: $c Gbit/s")
    [ "$n" = direct ] || [ "$(stat "$n" "$c" 4)" != – ] || missing+=("$n: $c CPU s/GiB")
  done
  for c in "${wrk_cases[@]}"; do
    for spec in "3 per second" "4 p50" "5 p99" "6 p99.9" "7 CPU"; do
      read -r col what <<<"$spec"
      [ "$n" = direct ] && [ "$col" = 7 ] && continue
      [ "$(stat "$n" "$c" "$col")" != – ] || missing+=("$n: $c $what")
    done
  done
  if [ "$n" != direct ]; then
    for c in sysrps syscps; do
      grep -Eq "^$(sed 's/[()]/\\&/g' <<<"$n") $c 1 [0-9.]+ " "$results" || missing+=("$n: $c system calls")
    done
  fi
done
for idle in "${idle_counts[@]}"; do
  grep -Eq "^zcproxy \(default: adaptive\) idle$idle 1 [0-9]+ [0-9]+ [0-9]+ [0-9]+ " "$results" ||
    missing+=("zcproxy (default: adaptive): RSS and fds with $idle idle connections")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "${#missing[@]} figure(s) missing for zcproxy or direct:"
  printf '  %s\n' "${missing[@]}" >&2
  status=1
fi
failed=$(grep -c " fail" "$results" || true)
if [ "$failed" -gt 0 ]; then
  log "$failed case(s) failed:"; grep " fail" "$results" >&2
  if grep -E "^(zcproxy|direct)" "$results" | grep -q " fail" ||
     [ $((2 * failed)) -gt "$(wc -l <"$results")" ]; then
    status=1
  fi
fi
exit $status
