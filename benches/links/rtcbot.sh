#!/bin/sh
# Makes the virtualenv the thin-link benchmark runs RTCBot from (benches/peers/rtcbot_sender.py):
# RTCBot 0.2.5 from PyPI beside the system's python3-gst-1.0 (hence --system-site-packages).
# Prints the virtualenv's python. Not part of robocast.
set -eu
venv="${1:-$(dirname "$0")/../../target/rtcbot-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import rtcbot, gi' 2>/dev/null; then
    /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
    "$venv/bin/pip" install --quiet rtcbot==0.2.5 >&2
fi
echo "$venv/bin/python"
