#!/bin/sh
# Runs a command in a private network namespace whose only interface is loopback, so
# WebRTC tests (and the browser) can reach 127.0.0.1 and nothing else.
set -eu
exec unshare --map-root-user --net sh -c 'ip link set lo up && exec "$@"' isolated "$@"
