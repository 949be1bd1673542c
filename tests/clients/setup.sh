#!/bin/sh
# Prepares the browser clients that robocast did not write, for tests/rtcbot_client.rs,
# tests/whep_player.rs and tests/whip_client.rs, in tests/clients/build/:
#   whep-player.js  the npm WHEP player (package-lock.json), bundled with esbuild;
#   whip-client.js  the same package's WHIP client, bundled the same way;
#   rtcbot.js       RTCBot's own browser client, from its PyPI wheel (requirements.txt).
# Safe to run again: it reinstalls only what changed. Quiet unless something fails.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "$0: '$1' not found: install $2 (Debian: apt-get install $3), then run this again" >&2
    exit 1
}

# Runs a step with its output kept aside, shown only if the step fails.
quietly() {
    what=$1
    shift
    if ! "$@" >"$scratch/log" 2>&1; then
        cat "$scratch/log" >&2
        echo "$0: $what failed: $*" >&2
        exit 1
    fi
}

need node "Node.js" "nodejs npm"
need npm "npm" "npm"
need python3 "Python 3" "python3 python3-pip"
python3 -m pip --version >/dev/null 2>&1 || {
    echo "$0: pip not found for python3: install it (Debian: apt-get install python3-pip), then run this again" >&2
    exit 1
}
mkdir -p "$build"

# npm ci wipes and reinstalls node_modules: only when the lock file changed since the last one.
installed="$here/node_modules/.robocast-installed-lock"
if ! cmp -s "$here/package-lock.json" "$installed" 2>/dev/null; then
    quietly "npm ci" npm ci --prefix "$here" --no-audit --no-fund
    cp "$here/package-lock.json" "$installed"
fi
quietly "bundling the WHEP player" "$here/node_modules/.bin/esbuild" "$here/whep-player.js" \
    --bundle --format=iife --target=chrome100 --log-level=warning --outfile="$build/whep-player.js"
quietly "bundling the WHIP client" "$here/node_modules/.bin/esbuild" "$here/whip-client.js" \
    --bundle --format=iife --target=chrome100 --log-level=warning --outfile="$build/whip-client.js"

# pip checks the wheel's hash; only the one file the browser loads is kept.
if ! cmp -s "$here/requirements.txt" "$build/.rtcbot-requirements" 2>/dev/null || [ ! -s "$build/rtcbot.js" ]; then
    quietly "pip download of rtcbot" python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --require-hashes -r "$here/requirements.txt" -d "$scratch/wheel"
    quietly "unpacking rtcbot.js" python3 -c '
import glob, sys, zipfile
wheel, = glob.glob(sys.argv[1] + "/rtcbot-*.whl")
with open(sys.argv[2], "wb") as out:
    out.write(zipfile.ZipFile(wheel).read("rtcbot/rtcbot.js"))
' "$scratch/wheel" "$build/rtcbot.js"
    cp "$here/requirements.txt" "$build/.rtcbot-requirements"
fi
