#!/usr/bin/env bash
# The man pages: both render without a warning from man/groff, and zcproxy.yaml(5) names every key
# of the config's key tables (the `key_rule` arrays in src/config/, which drive both the parse and
# the unknown-key check): a key the README's reference forgets fails here.
#   bash tests/man_test.sh SOURCE_DIR MAN_DIR
set -euo pipefail
src=$1
man_dir=$2
for page in zcproxy.8 zcproxy.yaml.5; do
  [ -s "$man_dir/$page.gz" ] || { echo "no $man_dir/$page.gz"; exit 1; }
  warnings=$(MANWIDTH=80 man --warnings -l "$man_dir/$page.gz" 2>&1 >/dev/null)
  if [ -n "$warnings" ]; then
    echo "$page: man/groff warnings:"
    echo "$warnings"
    exit 1
  fi
done
# A table's entries stand at four spaces' indent as {"key", ...; values named inside an entry's
# check stand deeper.
keys=$(awk '/key_rule<.*>[ ]+[a-z_]+\[\] = \{/ {on = 1; next}
            on && /^};/ {on = 0}
            on && match($0, /^    \{"[a-z_]+"/) {print substr($0, RSTART + 6, RLENGTH - 7)}' \
         "$src"/src/config/*.cpp | sort -u)
count=$(echo "$keys" | wc -w)
[ "$count" -ge 50 ] || { echo "only $count keys found in the key tables: has their form changed?"; exit 1; }
text=$(MANWIDTH=1000 man -l "$man_dir/zcproxy.yaml.5.gz" 2>/dev/null | col -b)
missing=()
for k in $keys; do
  grep -qw -- "$k" <<<"$text" || missing+=("$k")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "zcproxy.yaml(5) (the README's Configuration section) does not name: ${missing[*]}"
  exit 1
fi
echo "man pages render cleanly; zcproxy.yaml(5) names all $count keys of the key tables"
