#!/bin/sh
# Installs the .deb that `make deb` built on this machine with apt, then checks what a
# user gets: the service user, the unit, the configuration, and a working robocast run
# as that user. Needs root (or sudo).
set -eu
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
deb=target/debian/robocast_${version}-1_$(dpkg --print-architecture).deb
echo "installing $deb"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb"

fail() { echo "deb install: $*" >&2; exit 1; }
getent passwd robocast >/dev/null || fail "no robocast user"
for group in video audio; do
    id -nG robocast | grep -qw "$group" || fail "robocast is not in group $group"
done
[ -f /etc/robocast/robocast.toml ] || fail "no /etc/robocast/robocast.toml"
dpkg-query -W -f='${Conffiles}\n' robocast | grep -q /etc/robocast/robocast.toml || fail "config is not a conffile"
systemctl cat robocast.service >/dev/null 2>&1 || [ -f /lib/systemd/system/robocast.service ] || fail "no unit"
# Enabled by the package (a symlink in multi-user.target.wants).
[ -L /etc/systemd/system/multi-user.target.wants/robocast.service ] || fail "service not enabled"

as_robocast() { $SUDO runuser -u robocast -- env HOME=/tmp "$@"; }
as_robocast robocast --version | grep -q "robocast" || fail "--version"
as_robocast robocast check --config /etc/robocast/robocast.toml --video test --audio test --size 320x240 \
    || fail "robocast check as the robocast user"
echo "deb install: 1 passed, 0 failed"
