#!/usr/bin/env bash
# Every C++ file of the tree is formatted as .clang-format says: any difference fails the test and
# is printed. Fix with `clang-format -i FILE` (or `git clang-format` on changed lines).
#   bash tests/format_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
mapfile -t files < <(find src include tests bench -name '*.cpp' -o -name '*.hpp' | grep -v '/corpus/' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no C++ files found under $1"; exit 1; }
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files, no difference"
