#!/usr/bin/env bash
# The layers of src/ (README: Layout): data flows down, and nothing low includes something high.
# The build enforces it (one library per layer, each seeing only its own and lower layers'
# include/<layer>/ folders); this is the second line, for a header that no file of its own layer
# includes yet. A header's layer is its folder: include/<layer>/zcproxy/ or, private, src/<layer>/.
#   bash tests/layers_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
order=(core proto config upstream dataplane runtime control)
declare -A rank layer
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done
for d in "${order[@]}"; do
  for h in include/$d/zcproxy/*.hpp; do
    [ -e "$h" ] || continue
    n=$(basename "${h%.hpp}")
    [ -z "${layer[$n]:-}" ] || { echo "zcproxy/$n.hpp: in two layers"; exit 1; }
    layer[$n]=$d
  done
done
[ ! -e include/zcproxy ] || { echo "include/zcproxy/: headers go in include/<layer>/zcproxy/"; exit 1; }
bad=0 checked=0
check() {  # file its-layer
  local inc l
  for inc in $(sed -n 's/^#include "zcproxy\/\([a-z_]*\)\.hpp"/\1/p' "$1"); do
    l=${layer[$inc]:-}
    if [ -z "$l" ]; then echo "$1: zcproxy/$inc.hpp is in no layer"; bad=1; continue; fi
    if [ "${rank[$l]}" -gt "${rank[$2]}" ]; then
      echo "$1 ($2) includes zcproxy/$inc.hpp ($l)"; bad=1
    fi
    checked=$((checked + 1))
  done
}
for d in "${order[@]}"; do
  for f in include/$d/zcproxy/*.hpp src/$d/*.cpp src/$d/*.hpp; do [ -e "$f" ] && check "$f" "$d"; done
done
[ "$bad" = 0 ] || exit 1
echo "layers: $checked includes checked, none goes up"
