#!/usr/bin/env bash
# The Debian package, made and used as an operator would:
#  1. built: a build folder configured for prefix /usr, then `cpack -G DEB`;
#  2. lintian: no error and no warning (packaging/README.md says what lintian still notes);
#  3. `apt-get install ./zcproxy_*.deb` into a fresh Debian bookworm (debootstrap
#     --variant=minbase from the mirror apt uses here, cached as a tarball, plus systemd), so its
#     dependencies resolve from Debian alone; the user and group zcproxy are made and the service
#     is enabled;
#  4. `zcproxy --check` on the installed config; the installed man pages render;
#  5. the installed binary, run as user zcproxy, passes 64 MiB byte-exact to a backend on loopback
#     and drains on SIGTERM with exit 0;
#  6. `systemd-analyze verify` on the installed units (the image as the root);
#  7. `dpkg --purge`: no file of the package is left (folders other packages share aside); the
#     user and group stay.
#   bash tests/package_test.sh SOURCE_DIR WORK_DIR    (WORK_DIR: the package's build folder too)
# Needs root (debootstrap, chroot, mounts); the base image is cached (tests/debian_base.sh).
set -euo pipefail
src=$(cd "$1" && pwd)
work=$2
[ "$(id -u)" = 0 ] || { echo "SKIPPED: the package test needs root (debootstrap, chroot)"; exit 0; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$work/test-root
step() { echo "== $* ($(date -u +%H:%M:%S))"; }
. "$src/tests/support/through_proxy.sh"

cleanup() {
  [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
  for m in "$root/proc" "$root/dev"; do
    mountpoint -q "$m" && umount -l "$m" || true
  done
  rm -rf "$root"
}
trap cleanup EXIT

step "build the package"
export CCACHE_BASEDIR=$src CCACHE_NOHASHDIR=true
cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DZCPROXY_TESTS=OFF >/dev/null
cmake --build "$work" -j"$(nproc)" >/dev/null
rm -f "$work"/zcproxy_*.deb
(cd "$work" && cpack -G DEB >/dev/null)
deb=$(ls "$work"/zcproxy_*_*.deb)
echo "$(basename "$deb"): $(du -k "$deb" | cut -f1) KiB"

step "lintian"
findings=$(lintian "$deb" 2>&1 | grep -v 'running with root privileges' || true)
if [ -n "$findings" ]; then
  echo "lintian: $findings"
  exit 1
fi

step "a fresh Debian bookworm (minbase)"
base=$(bash "$src/tests/debian_base.sh")
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

step "apt-get install systemd (as on a server), then ./$(basename "$deb")"
cp "$deb" "$root/tmp/"
in_root apt-get update -qq
# systemd's units and deb-systemd-helper: the postinst enables the service (it starts it only where
# systemd runs, which a chroot is not), and systemd-analyze verifies against them.
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd \
  >"$work/systemd.log" 2>&1 || { tail -30 "$work/systemd.log"; exit 1; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$deb")" >"$work/install.log" 2>&1 || { tail -30 "$work/install.log"; exit 1; }
in_root getent passwd zcproxy | grep -q ':/nonexistent:/usr/sbin/nologin$'
in_root getent group zcproxy >/dev/null
in_root dpkg -L zcproxy >"$work/files"
for f in /usr/sbin/zcproxy /etc/zcproxy/zcproxy.yaml /etc/zcproxy/503.http /etc/logrotate.d/zcproxy \
  /usr/share/man/man8/zcproxy.8.gz /usr/share/man/man5/zcproxy.yaml.5.gz; do
  grep -qx "$f" "$work/files" || { echo "the package lacks $f"; exit 1; }
done
unit_dir=$(grep -m1 '/systemd/system/zcproxy.service$' "$work/files" | xargs dirname)
in_root dpkg-query -W -f='${Conffiles}\n' zcproxy | grep -q '/etc/zcproxy/zcproxy.yaml'
wants=/etc/systemd/system/multi-user.target.wants/zcproxy.service
[ -L "$root$wants" ] || { echo "the postinst did not enable zcproxy.service"; exit 1; }
# The admin enables socket activation: the purge must take that link away too.
in_root systemctl enable zcproxy.socket >/dev/null 2>&1
socket_wants=/etc/systemd/system/sockets.target.wants/zcproxy.socket
[ -L "$root$socket_wants" ] || { echo "systemctl enable zcproxy.socket made no link"; exit 1; }

step "zcproxy --check, the man pages"
in_root zcproxy --check -c /etc/zcproxy/zcproxy.yaml
for page in man8/zcproxy.8.gz man5/zcproxy.yaml.5.gz; do
  MANWIDTH=80 man -l "$root/usr/share/man/$page" >/dev/null
done

step "the installed binary, as user zcproxy: 64 MiB through, then a drain"
uid=$(in_root id -u zcproxy)
gid=$(in_root id -g zcproxy)
through_proxy_setup "$src" "$work"
cp "$work/zcproxy.yaml" "$root/tmp/transfer.yaml"
chroot --userspec="$uid:$gid" --groups="$gid" "$root" /usr/sbin/zcproxy -c /tmp/transfer.yaml \
  >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
through_proxy_check "$src" "$work" "$proxy_pid" "$proxy_pid" "$uid"
proxy_pid=

step "systemd-analyze verify on the installed units"
out=$(systemd-analyze verify --man=no --root="$root" "$unit_dir/zcproxy.service" \
  "$unit_dir/zcproxy.socket" 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "$out"; exit 1; }
grep -q '^ExecStart=/usr/sbin/zcproxy -c /etc/zcproxy/zcproxy.yaml$' "$root$unit_dir/zcproxy.service"
grep -q '^User=zcproxy$' "$root$unit_dir/zcproxy.service"

step "dpkg --purge"
mkdir -p "$root/var/log/zcproxy"  # as systemd's LogsDirectory= would have made it
in_root dpkg --purge zcproxy >/dev/null
left=()
while read -r f; do
  [ -e "$root$f" ] || [ -L "$root$f" ] || continue
  # A folder another package (or the base system) owns too stays.
  [ -d "$root$f" ] && in_root dpkg -S "$f" >/dev/null 2>&1 && continue
  [ "$f" = "/." ] && continue
  left+=("$f")
done <"$work/files"
for f in /etc/zcproxy /var/log/zcproxy "$wants" "$socket_wants"; do
  [ -e "$root$f" ] || [ -L "$root$f" ] && left+=("$f")
done
if [ ${#left[@]} -gt 0 ]; then
  echo "left behind by dpkg --purge: ${left[*]}"
  exit 1
fi
in_root getent passwd zcproxy >/dev/null
echo "package: built, lintian-clean, installed from Debian alone, served 64 MiB as zcproxy, units verified, purged clean"
