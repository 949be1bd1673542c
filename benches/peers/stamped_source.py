#!/usr/bin/python3
"""A camera in another process: the benchmark's external source.

It makes the test pattern at the given size and rate, paints the Unix time in ms into
each picture as it is made (the stamp layout of robocast's `media::clockstamp`, through
`webrtcbin.py`'s `paint_stamp`), and hands the raw I420 pictures over shared memory
(`shmsink`), the way a camera process or another program's pipeline would. robocast
reads them with `--video 'gst:shmsrc socket-path=... ...'`, the webrtcbin peer with
`--source 'shmsrc ...'`, so both are measured on the very same pictures.

Needs python3-gst-1.0 (`make bench` installs it). Not part of robocast.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

from webrtcbin import BITS, BLOCK, log, paint_stamp  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the shmsink socket path")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument(
        "--noise",
        action="store_true",
        help="a camera-like picture: the pattern under 15 %% snow, as a sensor in dim light "
        "(hard to compress: it takes whatever bitrate it is given)",
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    frame = width * height * 3 // 2
    raw = f"video/x-raw,format=I420,width={width},height={height},framerate={args.fps}/1"
    pattern = f"videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! {raw}"
    if args.noise:
        pattern = (
            f"videotestsrc is-live=true pattern=snow ! {raw} ! m.sink_1 {pattern} ! m.sink_0 "
            f"compositor name=m sink_1::alpha=0.15 ! {raw}"
        )
    pipeline = Gst.parse_launch(
        f"{pattern} ! identity name=src "
        f"! shmsink socket-path={args.socket} shm-size={frame * 30} wait-for-connection=false sync=false"
    )
    if width >= BLOCK * (BITS + 2) and height >= BLOCK:
        pad = pipeline.get_by_name("src").get_static_pad("src")
        pad.add_probe(Gst.PadProbeType.BUFFER, paint_stamp, width)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        sys.exit("stamped source: the pipeline does not start")
    log(f"stamped source on {args.socket}")
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
