#!/usr/bin/env bash
# The container image (Containerfile), built and run here as an operator would elsewhere:
#  1. a base image made from a debootstrapped Debian bookworm (tests/debian_base.sh; no image
#     registry is reachable here), imported with buildah;
#  2. `buildah bud --isolation chroot --build-arg BASE=...` (the ccache of the tests' own builds is
#     mounted at /ccache, so the build stage mostly hits it); its size is reported;
#  3. the image's settings: user 10001:10001, STOPSIGNAL SIGTERM, zcproxy as the entrypoint, the
#     config at /etc/zcproxy/zcproxy.yaml, which passes --check;
#  4. its zcproxy, run inside it as that user (`buildah run`, the host's network), passes 64 MiB
#     byte-exact to a backend on the host's loopback, then drains on SIGTERM and exits 0.
#   bash tests/container_test.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
work=$2
[ "$(id -u)" = 0 ] || { echo "SKIPPED: the container test needs root (buildah, debootstrap)"; exit 0; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
base_image=localhost/zcproxy-test-base:bookworm
image=localhost/zcproxy:test
step() { echo "== $* ($(date -u +%H:%M:%S))"; }
. "$src/tests/support/through_proxy.sh"
ctr=
cleanup() {
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "the base image"
if ! buildah inspect --type image "$base_image" >/dev/null 2>&1; then
  base=$(bash "$src/tests/debian_base.sh")
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$mnt" -xf "$base"
  buildah umount "$ctr" >/dev/null
  buildah config --env LANG=C.UTF-8 --cmd /bin/bash "$ctr"
  buildah commit -q --rm "$ctr" "$base_image" >/dev/null
  ctr=
fi

step "buildah bud"
volumes=()
if command -v ccache >/dev/null; then
  cache_dir=$(ccache -k cache_dir)
  mkdir -p "$cache_dir"
  volumes=(-v "$cache_dir:/ccache")
fi
buildah bud --isolation chroot --layers=false --build-arg BASE="$base_image" "${volumes[@]}" \
  -t "$image" -f "$src/Containerfile" "$src" >"$work/bud.log" 2>&1 || {
  tail -40 "$work/bud.log"
  exit 1
}
size=$(buildah images --format '{{.Size}}' "$image" | head -1)
echo "image $image: $size"

step "the image's settings"
config=$(buildah inspect --type image --format \
  '{{.OCIv1.Config.User}} {{.OCIv1.Config.StopSignal}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' \
  "$image")
echo "$config"
[ "$config" = "10001:10001 SIGTERM [/usr/sbin/zcproxy] [-c /etc/zcproxy/zcproxy.yaml]" ] || {
  echo "unexpected image settings"
  exit 1
}
ctr=$(buildah from "$image")
buildah run --isolation chroot "$ctr" -- /usr/sbin/zcproxy --check -c /etc/zcproxy/zcproxy.yaml

step "its zcproxy, as uid 10001: 64 MiB through, then a drain"
through_proxy_setup "$src" "$work"
# The image's user, the config mounted over the image's, as an orchestrator runs it.
buildah run --isolation chroot --user 10001:10001 -v "$work/zcproxy.yaml:/etc/zcproxy/zcproxy.yaml:ro" \
  "$ctr" -- /usr/sbin/zcproxy -c /etc/zcproxy/zcproxy.yaml >"$work/proxy.out" 2>"$work/proxy.err" &
run_pid=$!
for _ in $(seq 200); do
  proxy_pid=$(pgrep -n -x zcproxy) && break
  sleep 0.1
done
through_proxy_check "$src" "$work" "$proxy_pid" "$run_pid" 10001
proxy_pid=
echo "container: built ($size), runs as 10001, 64 MiB byte-exact, drained on SIGTERM with exit 0"
