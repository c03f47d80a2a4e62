#!/usr/bin/env bash
# deploy/kubernetes/*.yaml are valid Kubernetes objects and the config they carry is valid:
#  - every document is validated offline against Kubernetes' OpenAPI schemas (the npm package
#    kubernetes-models), unknown fields and kinds included, by tests/k8s_manifests/validate.cjs,
#    which also checks the zcproxy objects against each other and against their config;
#  - the zcproxy.yaml the pods read (from the ConfigMap) passes `zcproxy --check` (a backend name
#    that does not resolve here only warns).
# The npm packages (pinned by tests/k8s_manifests/package-lock.json) are installed once into
# ${XDG_CACHE_HOME:-~/.cache}/zcproxy-k8s-validate/<hash of the lock file>, from the npm registry.
#   bash tests/k8s_manifests_test.sh ZCPROXY_BINARY SOURCE_DIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ZCPROXY_BINARY SOURCE_DIR" >&2; exit 2; }
bin=$1
src=$2
here=$src/tests/k8s_manifests

for tool in node npm; do
  command -v "$tool" >/dev/null ||
    { echo "SKIPPED: $tool not found (Node.js 18+ and npm are needed)"; exit 0; }
done
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)' ||
  { echo "SKIPPED: Node.js $(node --version) is older than 18"; exit 0; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Install once per lock file: into a folder of its own, renamed into place when complete, so a
# run that was cut short (or one running at the same time) never leaves a half-installed cache.
cache_root=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zcproxy-k8s-validate
key=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)
modules=$cache_root/$key
if [ ! -f "$modules/node_modules/kubernetes-models/package.json" ]; then
  mkdir -p "$cache_root"
  staging=$(mktemp -d "$cache_root/.install.XXXXXX")
  cp "$here/package.json" "$here/package-lock.json" "$staging/"
  # Bounded: 4 minutes in all, a minute per request, retries within 20 s.
  if ! (cd "$staging" && timeout 240 npm ci --no-audit --no-fund --ignore-scripts \
          --no-update-notifier --fetch-timeout=60000 --fetch-retry-maxtimeout=20000 \
          >"$tmp/npm.log" 2>&1); then
    rm -rf "$staging"
    tail -n 30 "$tmp/npm.log"
    echo "FAILED: npm ci of tests/k8s_manifests/package-lock.json (log above;" \
         "is $(npm config get registry) reachable?)"
    exit 1
  fi
  # Unless another run got there first: an incomplete folder from before makes way.
  if [ ! -f "$modules/node_modules/kubernetes-models/package.json" ]; then
    rm -rf "$modules"
    mv -T "$staging" "$modules" 2>/dev/null || true
  fi
  rm -rf "$staging"
fi

mapfile -t manifests < <(find "$src/deploy/kubernetes" -maxdepth 1 -name '*.yaml' | sort)
[ ${#manifests[@]} -gt 0 ] || { echo "FAILED: no manifests in $src/deploy/kubernetes"; exit 1; }

# 1. Every document against the schemas, and the zcproxy objects together; writes the config.
config=$tmp/zcproxy.yaml
if ! timeout 60 node "$here/validate.cjs" --modules "$modules" --config-out "$config" \
       "${manifests[@]}" >"$tmp/validate.out" 2>&1; then
  cat "$tmp/validate.out"
  exit 1
fi
validated=$(tail -n 1 "$tmp/validate.out")

# 2. The config the pods read passes --check. Its backend is a cluster DNS name: here it does
# not resolve, which --check reports as a warning, not an error.
if ! timeout 30 "$bin" --check -c "$config" >"$tmp/check.out" 2>&1; then
  cat "$tmp/check.out"
  echo "FAILED: zcproxy --check refused the ConfigMap's zcproxy.yaml" \
       "(its lines count from the first line of data.zcproxy.yaml)"
  exit 1
fi
if grep -q '^warning: name .* does not resolve now' "$tmp/check.out"; then
  resolved="its backend name does not resolve here (a warning only)"
else
  resolved="its backend name resolves here"
fi
sed -n 's/^warning/zcproxy --check: warning/p' "$tmp/check.out"

echo "k8s manifests: ${validated#valid: }: valid against Kubernetes' schemas;" \
     "the ConfigMap's zcproxy.yaml passes zcproxy --check, $resolved"
