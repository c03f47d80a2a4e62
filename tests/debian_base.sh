#!/usr/bin/env bash
# Prints the path of a Debian bookworm base (debootstrap --variant=minbase, from the mirror apt
# uses here) as a tarball, making it first when the cache has none: the package and container
# tests' clean Debian. Needs root. ZCPROXY_TEST_CACHE: the cache (default /var/cache/zcproxy-test).
#   base=$(bash tests/debian_base.sh)
set -euo pipefail
cache=${ZCPROXY_TEST_CACHE:-/var/cache/zcproxy-test}
base=$cache/bookworm-minbase.tar
if [ ! -s "$base" ]; then
  mkdir -p "$cache"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
    true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
  tmp=$(mktemp -d "$cache/.base.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" >"$tmp/log" 2>&1 || {
    tail -20 "$tmp/log" >&2
    exit 1
  }
  # What an image need not carry (as Debian's slim images): apt's lists and caches, which an
  # apt-get update brings back.
  rm -rf "$tmp"/root/var/lib/apt/lists/* "$tmp"/root/var/cache/apt/*.bin \
    "$tmp"/root/var/cache/apt/archives/*.deb
  tar -C "$tmp/root" -cf "$tmp/base.tar" . && mv "$tmp/base.tar" "$base"
fi
echo "$base"
