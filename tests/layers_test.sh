#!/usr/bin/env bash
# The layers of src/ (README: Layout): data flows down, and nothing low includes something high.
# Each file's layer is its folder under src/; a header's is that of the .cpp of the same name, or,
# for a header without one, the one listed below. Any include of a higher layer fails the test.
#   bash tests/layers_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
order=(core proto config upstream dataplane runtime control)
declare -A rank layer
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done
# Headers with no .cpp of their name.
layer=([use_tuple]=core [sys]=core [log_config]=core [stats]=core [endpoint_mode]=core [asio_socket]=core [edge_wait]=core [deadline]=core [pool]=dataplane
       [buffer_pool]=dataplane [stage]=dataplane [session_state]=runtime [control_api]=runtime)
for d in "${order[@]}"; do
  for f in src/$d/*.cpp src/$d/*.hpp; do
    [ -e "$f" ] || continue
    n=$(basename "${f%.*}")
    [ -z "${layer[$n]:-}" ] || [ "${layer[$n]}" = "$d" ] || { echo "$n: in two layers"; exit 1; }
    layer[$n]=$d
  done
done
bad=0 checked=0
check() {  # file its-layer
  local inc l
  for inc in $(sed -n 's/^#include "zcproxy\/\([a-z_]*\)\.hpp"/\1/p' "$1"); do
    l=${layer[$inc]:-}
    if [ -z "$l" ]; then echo "$1: zcproxy/$inc.hpp has no layer"; bad=1; continue; fi
    if [ "${rank[$l]}" -gt "${rank[$2]}" ]; then
      echo "$1 ($2) includes zcproxy/$inc.hpp ($l)"; bad=1
    fi
    checked=$((checked + 1))
  done
}
for h in include/zcproxy/*.hpp; do
  n=$(basename "${h%.hpp}")
  [ -n "${layer[$n]:-}" ] || { echo "$h: no layer (add it above)"; bad=1; continue; }
  check "$h" "${layer[$n]}"
done
for d in "${order[@]}"; do
  for f in src/$d/*.cpp src/$d/*.hpp; do [ -e "$f" ] && check "$f" "$d"; done
done
[ "$bad" = 0 ] || exit 1
echo "layers: $checked includes checked, none goes up"
