#!/usr/bin/env python3
"""A robot program for robocast: drives (simulated) motors from the browser's commands,
stops them on robocast's dead-man stop, and sends telemetry back to the browsers.

    python3 examples/robot.py [SOCKET]

SOCKET is robocast's control socket: the first argument, else $ROBOCAST_CONTROL_SOCKET,
else the first that exists of /run/robocast/control.sock (robocast as a service),
$XDG_RUNTIME_DIR/robocast.sock and ./robocast.sock (robocast started by hand).
The protocol is in the README, "The control socket". Standard library only.

Every line it prints is one event, `word key=value ...`, easy to grep:

    hello version=1 sessions=0 driver=none
    drive linear=0.50 angular=0.00 from=<session>
    STOP reason=silence session=<session> silent_ms=301

Replace the Motors class with your motor controller.
"""

import json
import math
import os
import selectors
import socket
import sys
import time

TELEMETRY_EVERY = 0.2  # seconds: 5 Hz
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 5.0  # seconds between attempts to reach robocast


class Motors:
    """Simulated motors. A real program talks to its motor controller here."""

    def __init__(self):
        self.linear = 0.0
        self.angular = 0.0
        self.started = time.monotonic()

    def drive(self, linear, angular):
        self.linear, self.angular = linear, angular

    def stop(self, reason, details=""):
        self.linear = self.angular = 0.0
        print(f"STOP reason={reason}{details}")

    def telemetry(self):
        uptime = time.monotonic() - self.started
        return {
            "type": "telemetry",
            "speed": round(self.linear, 2),
            "battery": round(max(0.0, 100.0 - uptime / 36), 1),  # percent, 1% every 36 s
            "uptime_s": round(uptime, 1),
        }


def speed(value):
    """A speed from -1 to 1, or None if `value` is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return max(-1.0, min(1.0, float(value)))


def on_message(msg, motors):
    """A browser's message: `drive` and `stop` on `control`, anything else printed."""
    session, channel, data = msg.get("session"), msg.get("channel"), msg.get("data")
    kind = data.get("type") if isinstance(data, dict) else None
    if channel == "control" and kind == "drive":
        linear, angular = speed(data.get("linear")), speed(data.get("angular"))
        if linear is None or angular is None:
            print(f"ignored from={session} data={json.dumps(data)}: linear and angular must be numbers")
            return
        motors.drive(linear, angular)
        print(f"drive linear={linear:.2f} angular={angular:.2f} from={session}")
    elif channel == "control" and kind == "stop":
        motors.stop("command", f" from={session}")
    else:
        print(f"message from={session} channel={channel} data={json.dumps(data)}")


def on_line(line, motors):
    """One line from robocast."""
    try:
        msg = json.loads(line)
    except ValueError:
        print(f"robocast sent a line that is not JSON: {line!r}", file=sys.stderr)
        return
    kind = msg.get("type")
    if kind == "hello":
        driver = msg.get("driver") or "none"
        print(f"hello version={msg.get('version')} sessions={len(msg.get('sessions', []))} driver={driver}")
        if msg.get("version") != 1:
            print("this program speaks protocol version 1; robocast may send lines it does not know",
                  file=sys.stderr)
    elif kind == "message":
        on_message(msg, motors)
    elif kind == "connected":
        print(f"connected session={msg.get('session')}")
    elif kind == "disconnected":
        print(f"disconnected session={msg.get('session')} reason={msg.get('reason')}")
    elif kind == "driver":
        print(f"driver session={msg.get('session') or 'none'}")
        if msg.get("session") is None:
            motors.stop("no_driver")
    elif kind == "deadman":
        reason = str(msg.get("reason")).replace(" ", "_")
        motors.stop(reason, f" session={msg.get('session')} silent_ms={msg.get('silent_ms')}")
    elif kind == "dropped":
        print(f"dropped count={msg.get('count')}")
    elif kind == "error":
        print(f"robocast refused a line: {msg.get('error')} ({msg.get('hint')})", file=sys.stderr)


def send(sock, data):
    line = json.dumps({"to": "all", "channel": "state", "data": data}) + "\n"
    sock.sendall(line.encode())


def serve(sock, motors):
    """Reads robocast's lines and sends telemetry until robocast closes the socket."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        buffer = b""
        next_telemetry = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_telemetry:
                send(sock, motors.telemetry())
                next_telemetry = max(next_telemetry + TELEMETRY_EVERY, now + TELEMETRY_EVERY / 2)
            if not selector.select(timeout=next_telemetry - now):
                continue
            chunk = sock.recv(65536)
            if not chunk:
                return
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    on_line(line, motors)


def socket_path():
    """The socket to connect to, and the places looked at (for the error message)."""
    if len(sys.argv) > 1:
        return sys.argv[1], [sys.argv[1]]
    if os.environ.get("ROBOCAST_CONTROL_SOCKET"):
        path = os.environ["ROBOCAST_CONTROL_SOCKET"]
        return path, [path]
    places = ["/run/robocast/control.sock"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        places.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "robocast.sock"))
    places.append("robocast.sock")
    return next((p for p in places if os.path.exists(p)), places[0]), places


def main():
    sys.stdout.reconfigure(line_buffering=True)
    motors = Motors()
    try:
        return run(motors)
    except KeyboardInterrupt:
        motors.stop("exit")
        return 0


def run(motors):
    """Connects, serves, and connects again whenever robocast goes away."""
    backoff, last_problem = BACKOFF_FIRST, None
    while True:
        path, places = socket_path()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                print(f"connected path={path}")
                backoff, last_problem = BACKOFF_FIRST, None
                serve(sock, motors)
            problem = "robocast closed the control socket"
        except PermissionError:
            print(f"permission denied on {path}: join robocast's group "
                  "(sudo usermod -aG robocast $USER, then log in again)", file=sys.stderr)
            return 1
        except (FileNotFoundError, ConnectionRefusedError):
            problem = (f"no robocast listening at {' or '.join(places)}: robocast is not running, "
                       "or the path is wrong (robocast logs its control socket at start; "
                       "give that path as the first argument)")
        except OSError as e:
            problem = f"lost robocast at {path}: {e}"
        if motors.linear or motors.angular:
            motors.stop("robocast_gone")
        if problem != last_problem:
            print(f"{problem}; trying again, waiting up to {BACKOFF_MAX:g} s between attempts",
                  file=sys.stderr)
            last_problem = problem
        time.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)


if __name__ == "__main__":
    sys.exit(main())
