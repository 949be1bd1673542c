#!/usr/bin/env python3
"""RTCBot 0.2.5, set up as its documentation shows, as the thin-link benchmark's anchor.

An aiohttp server with RTCBot's `RTCConnection` per viewer (aiortc: one VP8 encoder per
viewer, adapting to the browser's REMB) and RTCBot's own browser client `rtcbot.js`. The
pictures are the benchmark's own: the stamped, noisy frames `stamped_source.py` shares
over shared memory (the same ones robocast reads), converted to BGR for RTCBot by
GStreamer. The page exposes what the benchmark's probe reads (`window.robocast.pc`,
`state`, a `<video id="video">`).

Needs rtcbot (PyPI) next to python3-gst-1.0: a virtualenv made with
`--system-site-packages` (`benches/links/rtcbot.sh` makes one). Not part of robocast.
"""

import argparse
import asyncio
import sys

import gi
import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration
from rtcbot import RTCConnection, getRTCBotJS
from rtcbot.subscriptions import MostRecentSubscription

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>RTCBot</title></head>
<body style="margin:0;background:#000">
<video id="video" autoplay playsinline muted style="width:100vw;height:100vh"></video>
<script src="/rtcbot.js"></script>
<script>
(async () => {
  const conn = new rtcbot.RTCConnection(true, { iceServers: [] });
  window.robocast = { pc: conn._rtc, state: 'connecting', session: null };
  conn._rtc.addEventListener('connectionstatechange', () => {
    window.robocast.state = conn._rtc.connectionState;
  });
  conn.video.subscribe((stream) => { document.getElementById('video').srcObject = stream; });
  const offer = await conn.getLocalDescription();
  const response = await fetch('/connect', { method: 'POST', body: JSON.stringify(offer) });
  await conn.setRemoteDescription(await response.json());
})();
</script>
</body></html>
"""


class Frames:
    """The newest BGR frame from shared memory, for every viewer's subscription."""

    def __init__(self, socket, width, height, fps, loop):
        self.width, self.height, self.loop = width, height, loop
        self.subscriptions = set()
        raw = f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"
        self.pipeline = Gst.parse_launch(
            f"shmsrc socket-path={socket} is-live=true do-timestamp=true ! capsfilter caps={raw} "
            "! queue max-size-buffers=2 leaky=downstream ! videoconvert "
            "! video/x-raw,format=BGR ! appsink name=out emit-signals=true max-buffers=1 drop=true sync=false"
        )
        self.pipeline.get_by_name("out").connect("new-sample", self.on_sample)
        self.pipeline.set_state(Gst.State.PLAYING)

    def on_sample(self, sink):
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        ok, mapped = buf.map(Gst.MapFlags.READ)
        if ok:
            frame = np.frombuffer(mapped.data, np.uint8).reshape(self.height, self.width, 3).copy()
            buf.unmap(mapped)
            self.loop.call_soon_threadsafe(self.publish, frame)
        return Gst.FlowReturn.OK

    def publish(self, frame):
        for subscription in self.subscriptions:
            subscription.put_nowait(frame)

    def subscribe(self):
        subscription = MostRecentSubscription()
        self.subscriptions.add(subscription)
        return subscription


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="stamped_source.py's shared memory socket")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--listen", default="0.0.0.0:8080")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    host, port = args.listen.rsplit(":", 1)
    Gst.init(None)

    async def run():
        frames = Frames(args.socket, width, height, args.fps, asyncio.get_running_loop())
        connections = []

        async def index(_request):
            return web.Response(content_type="text/html", text=PAGE)

        async def rtcbot_js(_request):
            return web.Response(content_type="application/javascript", text=getRTCBotJS())

        async def connect(request):
            # No STUN server: the benchmark's links are private (RTCBot's default is Google's).
            conn = RTCConnection(rtcConfiguration=RTCConfiguration(iceServers=[]))
            conn.video.putSubscription(frames.subscribe())
            connections.append(conn)
            answer = await conn.getLocalDescription(await request.json())
            return web.json_response(answer)

        async def healthz(_request):
            return web.json_response({"status": "ok", "viewers": len(connections)})

        app = web.Application()
        app.add_routes([web.get("/", index), web.get("/rtcbot.js", rtcbot_js), web.post("/connect", connect)])
        app.add_routes([web.get("/healthz", healthz)])
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host, int(port)).start()
        print(f"rtcbot sender on {args.listen}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
