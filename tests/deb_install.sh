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

# The daemon as the service user, with the control socket where robot programs look for
# it: mode 0660, owned by robocast, answering with a hello line.
dir=$(mktemp -d)
chmod 0755 "$dir"
$SUDO chown robocast "$dir"
sock="$dir/control.sock"
as_robocast robocast --config /etc/robocast/robocast.toml --video test --audio none --size 320x240 \
    --listen 127.0.0.1:0 --control-socket "$sock" --state-dir "$dir/state" >"$dir/log" 2>&1 &
daemon=$!
tries=0
until [ -S "$sock" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { cat "$dir/log" >&2; fail "no control socket after 10 s"; }
    sleep 0.1
done
[ "$($SUDO stat -c '%a %U' "$sock")" = "660 robocast" ] || fail "socket is $($SUDO stat -c '%a %U' "$sock"), want 660 robocast"
# The operator token it generated on this first start: readable by robocast alone.
token="$dir/state/operator-token"
[ "$($SUDO stat -c '%a %U' "$token")" = "600 robocast" ] || fail "operator token is $($SUDO stat -c '%a %U' "$token" 2>&1), want 600 robocast"
# The packaged example robot program, as the service user, reads the hello.
example=/usr/share/doc/robocast/examples/robot.py
[ -x "$example" ] || fail "no $example"
hello=$(as_robocast timeout 3 python3 "$example" "$sock" || true)
echo "$hello" | grep -q '^hello version=1' || fail "the packaged example did not read a hello: $hello"
# runuser does not pass SIGTERM on: stop robocast itself, by its unique socket path.
$SUDO pkill -TERM -u robocast -f -- "--control-socket $sock" || fail "robocast was not running"
wait "$daemon" 2>/dev/null || true
[ ! -e "$sock" ] || fail "robocast left its socket behind at SIGTERM"
$SUDO rm -rf "$dir"
echo "deb install: 3 passed, 0 failed"
