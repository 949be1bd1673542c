#!/bin/bash
# Installs an ARM .deb from cross/build.sh the way a Pi would: with apt, in a minimal
# Debian of the target architecture (debootstrap) run under qemu through binfmt_misc, then
# checks what the package made (user, groups, conffile, enabled unit) and runs
# `robocast --version` and `robocast check --video test --audio test` as that user.
#
#   cross/install-test.sh aarch64        # or armv7; after cross/build.sh for that target
#
# Needs root: it registers qemu's binfmt handler for the architecture if the kernel has
# none, and mounts /proc, /sys and /dev into target/cross/root-<arch> while it runs.
# It is slow (everything in the chroot is emulated): about 6 minutes per architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=install-test
# shellcheck source=cross/common.sh
. cross/common.sh
[ "$(id -u)" = 0 ] || die "run as root (binfmt_misc, debootstrap, chroot)"

[ -n "${1:-}" ] || die "usage: cross/install-test.sh aarch64|armv7"
target_info "$1" >/dev/null
read -r triple arch _ qemu <<<"$(target_info "$1")"
deb=$(built_deb "$triple" "$arch")
[ -f "$deb" ] || die "no $deb: run cross/build.sh $1 first"
chroot=$OUT/root-$arch

install_host_packages debootstrap qemu-user-static

# The kernel runs the target's binaries through qemu once its handler is registered
# (the F flag opens the interpreter now, so the chroot needs no copy of it).
binfmt=/proc/sys/fs/binfmt_misc
[ -f "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
if [ ! -f "$binfmt/qemu-$qemu" ]; then
    say "registering qemu-$qemu with binfmt_misc"
    cat "/usr/lib/binfmt.d/qemu-$qemu.conf" >"$binfmt/register"
fi

# The same Debian mirror and release as the host, as cross/build.sh uses.
read -r mirror suite _ <<<"$(debian_repos | grep -v -- '-security\|-updates' | head -n 1)"
[ -n "$suite" ] || die "this host has no Debian apt sources"

unmount() {
    for m in dev/pts dev sys proc; do
        mountpoint -q "$chroot/$m" && umount -l "$chroot/$m"
    done
    return 0
}
trap unmount EXIT

if [ ! -x "$chroot/usr/bin/apt-get" ]; then
    say "debootstrap $suite $arch into target/cross/root-$arch (emulated; several minutes)"
    rm -rf "$chroot"
    debootstrap --arch="$arch" --variant=minbase "$suite" "$chroot" "$mirror" >"$OUT/debootstrap-$arch.log" 2>&1 ||
        { tail -20 "$OUT/debootstrap-$arch.log" >&2; die "debootstrap failed"; }
fi
mount -t proc proc "$chroot/proc"
mount --rbind /sys "$chroot/sys"
mount --rbind /dev "$chroot/dev"
in_root() { chroot "$chroot" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

say "apt install ./$(basename "$deb") in the $arch root (emulated; several minutes)"
cp "$deb" "$chroot/tmp/"
in_root apt-get update -q >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./tmp/$(basename "$deb")" \
    >"$OUT/install-$arch.log" 2>&1 || { tail -20 "$OUT/install-$arch.log" >&2; die "apt install failed"; }

fail() { die "$arch package: $*"; }
in_root getent passwd robocast >/dev/null || fail "no robocast user"
for group in video audio; do
    in_root id -nG robocast | grep -qw "$group" || fail "robocast is not in group $group"
done
[ -f "$chroot/etc/robocast/robocast.toml" ] || fail "no /etc/robocast/robocast.toml"
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
in_root dpkg-query -W -f='${Conffiles}\n' robocast | grep -q /etc/robocast/robocast.toml || fail "config is not a conffile"
[ -L "$chroot/etc/systemd/system/multi-user.target.wants/robocast.service" ] || fail "service not enabled"
in_root runuser -u robocast -- env HOME=/tmp robocast --version | grep -q robocast || fail "--version"
in_root runuser -u robocast -- env HOME=/tmp robocast check --config /etc/robocast/robocast.toml \
    --video test --audio test --size 320x240 || fail "robocast check as the robocast user"
say "$(basename "$deb"): installed with apt in an $arch Debian $suite and checked as the robocast user"
