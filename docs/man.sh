#!/usr/bin/env bash
# Builds the man pages with go-md2man: zcproxy(8) from docs/zcproxy.8.md, and zcproxy.yaml(5)
# from the README's "Configuration" section (up to "Security defaults"), so the page and the
# README cannot drift: the README is the source. Writes OUT/zcproxy.8.gz and OUT/zcproxy.yaml.5.gz
# (gzip -n: no timestamp, so the same input gives the same bytes).
#   bash docs/man.sh SOURCE_DIR OUT_DIR VERSION
set -euo pipefail
src=$1
out=$2
version=$3
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
  echo "% ZCPROXY 8 \"\" \"zcproxy $version\" \"System Administration\""
  echo
  cat "$src/docs/zcproxy.8.md"
} >"$tmp/zcproxy.8.md"

{
  echo "% ZCPROXY.YAML 5 \"\" \"zcproxy $version\" \"File Formats\""
  echo
  echo "# NAME"
  echo
  echo "zcproxy.yaml - the configuration file of zcproxy"
  echo
  echo "# SYNOPSIS"
  echo
  echo "*/etc/zcproxy/zcproxy.yaml*"
  echo
  echo "# DESCRIPTION"
  echo
  # The section's body; its subsections (###) become the page's subsections (##). Links to the
  # README's own headings lose their target, which a man page has not.
  awk '/^## Configuration$/ {on = 1; next} /^## / {on = 0} on' "$src/README.md" |
    sed -e 's/^### /## /' -e 's/\[\([^]]*\)\](#[^)]*)/\1/g'
  echo
  echo "# SEE ALSO"
  echo
  echo "**zcproxy**(8)"
} >"$tmp/zcproxy.yaml.5.md"

if ! grep -q '^## Backends by DNS name' "$tmp/zcproxy.yaml.5.md"; then
  echo "man.sh: the README's Configuration section was not found" >&2
  exit 1
fi
for page in zcproxy.8 zcproxy.yaml.5; do
  go-md2man -in "$tmp/$page.md" -out "$tmp/$page"
  gzip -9 -n -c "$tmp/$page" >"$out/$page.gz"
done
