#!/usr/bin/env bash
# conf/zcproxy.service.in (configured as an install does it) and conf/zcproxy.socket pass
# `systemd-analyze verify` (pointed at the built binary and the example config): any warning or
# error fails the test. The service's sandbox keeps `systemd-analyze security` at "OK" or better.
#   bash tests/systemd_unit_test.sh ZCPROXY_BINARY SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The service as CMake configures it for an install, with the built binary and the example config.
sed "s|@ZCPROXY_SBIN@|$bin|g; s|@ZCPROXY_CONFIG@|$src/conf/zcproxy.yaml|g; s|@ZCPROXY_UNIT_DIR@|$tmp|g" \
  "$src/conf/zcproxy.service.in" >"$tmp/zcproxy.service"
cp "$src/conf/zcproxy.socket" "$tmp/zcproxy.socket"
# The socket unit is verified with the service it activates beside it.
# (--man=no: the man pages are checked where they are installed, in the package test.)
out=$(systemd-analyze verify --man=no "$tmp/zcproxy.service" "$tmp/zcproxy.socket" 2>&1) || {
  echo "$out"
  exit 1
}
if [ -n "$out" ]; then echo "$out"; exit 1; fi
exposure=$(systemd-analyze security --offline=true --no-pager "$tmp/zcproxy.service" 2>&1 |
  sed -n 's/.*Overall exposure level for zcproxy.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
case "$exposure" in
  *" OK" | *" SAFE") ;;
  *) echo "systemd-analyze security: exposure '$exposure', expected OK or SAFE"; exit 1 ;;
esac
echo "systemd-analyze verify: no findings (zcproxy.service, zcproxy.socket); security: $exposure"
