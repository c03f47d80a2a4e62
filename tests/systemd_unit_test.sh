#!/usr/bin/env bash
# conf/zcproxy.service passes `systemd-analyze verify` (pointed at the built binary and the example
# config): any warning or error fails the test.
#   bash tests/systemd_unit_test.sh ZCPROXY_BINARY SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/zcproxy|$bin|g; s|/etc/zcproxy/zcproxy.yaml|$src/conf/zcproxy.yaml|g" \
  "$src/conf/zcproxy.service" >"$tmp/zcproxy.service"
out=$(systemd-analyze verify "$tmp/zcproxy.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi
echo "systemd-analyze verify: no findings"
