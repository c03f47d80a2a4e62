#!/usr/bin/env bash
# Bytes per idle connection: builds the allocator counter (bench/alloc_count.c) and a Release
# zcproxy (or takes ZCPROXY_BIN), then holds 1,000 and 8,000 idle connections through it (one
# worker) and prints the allocator's live bytes, blocks and RSS per connection (bench/idle_bytes.py).
#   bash bench/idle_bytes.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
[ $# -gt 0 ] && ZCPROXY_BIN=$(realpath "$1")
install_and_build python3
gcc -O2 -shared -fPIC -o "$work/alloc_count.so" bench/alloc_count.c -lpthread
ulimit -n 20000
for n in 1000 8000; do ALLOC_COUNT_SO=$work/alloc_count.so python3 bench/idle_bytes.py "$ZCPROXY_BIN" "$n"; done
