#!/usr/bin/env bash
# Remakes docs/stats-page.png, the README's picture of the stats page: zcproxy in front of two
# iperf3 servers on loopback (one endpoint given by name, one drained and re-weighted through the
# admin API, one down), an upload through `web`, then a download through `api`, and Debian's
# headless Chromium taking the page once the minute's chart has both.
#   bash docs/stats-page.sh [OUT.png]      (ZCPROXY_BIN: the binary, build/zcproxy by default)
# Ports: 18080, 18081, 18443 (listeners), 19901 (admin), 15201-15203 (backends, 15203 unused).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/stats-page.png}
bin=${ZCPROXY_BIN:-build/zcproxy}
bash .ci/deps.sh iperf3 chromium fonts-liberation curl
[ -x "$bin" ] || { echo "no zcproxy binary at $bin (build first, or set ZCPROXY_BIN)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token"
chmod 600 "$work/token"
cat > "$work/zcproxy.yaml" <<EOF
threads: 2
log: { level: warn, access_log: false }
relay: { engine: auto }
listeners:
  - { name: web, bind: "127.0.0.1:18080", upstream: app }
  - { name: api, bind: "127.0.0.1:18081", upstream: api }
  - name: tls
    bind: "127.0.0.1:18443"
    routes: [{ sni: api.example.com, upstream: api }, { default: app }]
upstreams:
  app:
    endpoints: ["127.0.0.1:15201", { address: "127.0.0.1:15203", weight: 2 }]
    health_check: { interval: 1s }
  api:
    endpoints: ["localhost:15202"]
admin: { bind: "127.0.0.1:19901", token_file: "$work/token" }
EOF

iperf3 -s -p 15201 > /dev/null 2>&1 & pids+=($!)
iperf3 -s -p 15202 > /dev/null 2>&1 & pids+=($!)
"$bin" -c "$work/zcproxy.yaml" 2> "$work/zcproxy.log" & pids+=($!)
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:19901/healthz > /dev/null && break
  sleep 0.2
done
# A second endpoint of app at weight 2, taken out by hand (drain).
curl -sf -X POST -H "Authorization: Bearer $(cat "$work/token")" -d '{"state": "drain"}' \
  http://127.0.0.1:19901/upstreams/app/endpoints/127.0.0.1:15203 > /dev/null

iperf3 -c 127.0.0.1 -p 18080 -t 20 > /dev/null
iperf3 -c 127.0.0.1 -p 18081 -t 30 -R -P 2 > /dev/null &
client=$!
sleep 25
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/chromium" --hide-scrollbars --window-size=1280,900 \
  --virtual-time-budget=3000 --screenshot="$out" http://127.0.0.1:19901/stats 2> /dev/null
wait "$client"
echo "wrote $out"
