#!/usr/bin/env bash
# conf/zcproxy.service and conf/zcproxy.socket pass `systemd-analyze verify` (pointed at the built
# binary and the example config): any warning or error fails the test.
#   bash tests/systemd_unit_test.sh ZCPROXY_BINARY SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in zcproxy.service zcproxy.socket; do
  sed "s|/usr/local/bin/zcproxy|$bin|g; s|/etc/zcproxy/zcproxy.yaml|$src/conf/zcproxy.yaml|g" \
    "$src/conf/$unit" >"$tmp/$unit"
done
# The socket unit is verified with the service it activates beside it.
out=$(systemd-analyze verify "$tmp/zcproxy.service" "$tmp/zcproxy.socket" 2>&1) || {
  echo "$out"
  exit 1
}
if [ -n "$out" ]; then echo "$out"; exit 1; fi
echo "systemd-analyze verify: no findings (zcproxy.service, zcproxy.socket)"
