#!/usr/bin/python3
"""GStreamer webrtcbin with one shared x264 encoder: the peer `make bench` compares with.

It is the sender the issue's "GStreamer webrtcbin" row describes, built so the benchmark
can measure it exactly as it measures robocast: the same test pattern at the same size,
rate and bitrate, the same clock stamp painted into each picture as it is captured (the
layout of robocast's `media::clockstamp`), the same encoder settings, and robocast's own
robot page, so Chromium runs the same probe against both. Only the WebRTC side differs:
one `webrtcbin` per viewer behind a `tee`, answered without trickle like robocast does.

It serves just what the page and the benchmark use: `GET /` and the page's files from
`--static`, `GET /api/config`, `POST /api/connect` (JSON offer -> JSON answer),
`DELETE /api/sessions/<id>`, `GET /api/sessions`, `GET /api/status` and `GET /healthz`.

Needs python3-gst-1.0, gir1.2-gst-plugins-bad-1.0 and gstreamer1.0-nice (`make bench`
installs them). Not part of robocast.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstVideo, GstWebRTC  # noqa: E402

BLOCK, BITS = 16, 32
WHITE, BLACK = 235, 16
GATHER_TIMEOUT_S = 2.0
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def log(message):
    print(f"webrtcbin peer: {message}", file=sys.stderr, flush=True)


def paint_stamp(pad, info, width):
    """Paints Unix ms mod 2^32 into the luma plane, as robocast's clockstamp does."""
    buf = info.get_buffer()
    # The buffer is shared with the pad, so map its memory (not the buffer) for writing.
    mem = buf.peek_memory(0)
    ok, mapped = mem.map(Gst.MapFlags.READ | Gst.MapFlags.WRITE)
    if not ok:
        return Gst.PadProbeReturn.OK
    value = int(time.time() * 1000) & 0xFFFFFFFF
    row = bytearray()
    for block in range(BITS + 2):
        on = block == 0 or (block >= 2 and (value >> (BITS - 1 - (block - 2))) & 1)
        row += bytes([WHITE if on else BLACK]) * BLOCK
    for y in range(BLOCK):
        mapped.data[y * width : y * width + len(row)] = bytes(row)
    mem.unmap(mapped)
    return Gst.PadProbeReturn.OK


def offer_payload_types(sdp):
    """The offer's payload types for H.264 (constrained baseline, mode 1) and Opus."""
    rtpmap = dict(re.findall(r"a=rtpmap:(\d+) ([\w-]+)/", sdp))
    fmtp = dict(re.findall(r"a=fmtp:(\d+) (.*)", sdp))
    h264 = [
        pt
        for pt, name in rtpmap.items()
        if name.upper() == "H264"
        and "packetization-mode=1" in fmtp.get(pt, "")
        and re.search(r"profile-level-id=42e0", fmtp.get(pt, ""), re.I)
    ]
    opus = [pt for pt, name in rtpmap.items() if name.lower() == "opus"]
    if not h264 or not opus:
        raise ValueError("the offer has no H.264 constrained-baseline or no Opus")
    return int(h264[0]), int(opus[0])


class Sender:
    """One capture and encode, teed to a webrtcbin per viewer."""

    def __init__(self, width, height, fps, kbps, source=None):
        self.lock = threading.Lock()
        self.viewers = {}
        self.ice_agents = []
        # The test pattern, stamped here; or `source`, raw pictures stamped by their maker.
        video = source or (
            "videotestsrc name=src is-live=true pattern=smpte horizontal-speed=2 "
            f"! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"
        )
        self.pipeline = Gst.parse_launch(
            f"{video} "
            f"! queue max-size-buffers=1 ! x264enc name=enc tune=zerolatency speed-preset=ultrafast "
            f"bitrate={kbps} key-int-max={fps * 10} bframes=0 "
            "! video/x-h264,profile=constrained-baseline,stream-format=byte-stream "
            "! h264parse config-interval=-1 ! tee name=video allow-not-linked=true "
            "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 "
            "! audio/x-raw,rate=48000,channels=2 ! opusenc frame-size=20 "
            "! tee name=audio allow-not-linked=true"
        )
        if source is None and width >= BLOCK * (BITS + 2) and height >= BLOCK:
            src = self.pipeline.get_by_name("src").get_static_pad("src")
            src.add_probe(Gst.PadProbeType.BUFFER, paint_stamp, width)
        self.encoder = self.pipeline.get_by_name("enc")
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError("the pipeline does not start")
        self.pipeline.get_state(Gst.CLOCK_TIME_NONE)

    @staticmethod
    def _on_error(_bus, message):
        # A viewer's own elements (SCTP, DTLS, ICE) complain when its page closes.
        if not message.src.get_name().startswith(("sctp", "dtls", "nice")):
            log(f"error: {message.parse_error()[0].message} ({message.src.get_name()})")

    def running(self):
        return self.pipeline.get_state(0)[1] == Gst.State.PLAYING

    def connect(self, offer_sdp):
        """Adds a viewer for the offer and returns (session id, answer SDP)."""
        video_pt, audio_pt = offer_payload_types(offer_sdp)
        ok, offer = GstSdp.SDPMessage.new_from_text(offer_sdp)
        if ok != GstSdp.SDPResult.OK:
            raise ValueError("the offer is not SDP")
        video_caps = Gst.Caps.from_string(
            f"application/x-rtp,media=video,encoding-name=H264,payload={video_pt},clock-rate=90000")
        audio_caps = Gst.Caps.from_string(
            f"application/x-rtp,media=audio,encoding-name=OPUS,payload={audio_pt},clock-rate=48000")
        bin_ = Gst.parse_bin_from_description(
            "valve name=vv ! queue name=vq leaky=downstream max-size-buffers=30 "
            f"! rtph264pay config-interval=-1 pt={video_pt} aggregate-mode=zero-latency "
            "! capsfilter name=vcaps "
            "valve name=av ! queue name=aq leaky=downstream max-size-buffers=30 "
            f"! rtpopuspay pt={audio_pt} ! capsfilter name=acaps",
            False,
        )
        rtc = Gst.ElementFactory.make("webrtcbin", "rtc")
        rtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        bin_.add(rtc)
        # Pads requested with their caps get a transceiver of the right kind at once, so
        # the offer's media always find them.
        template = rtc.get_pad_template("sink_%u")
        for name, caps in (("vcaps", video_caps), ("acaps", audio_caps)):
            capsfilter = bin_.get_by_name(name)
            capsfilter.set_property("caps", caps)
            capsfilter.get_static_pad("src").link(rtc.request_pad(template, None, caps))
        session = uuid.uuid4().hex
        gathered = threading.Event()
        rtc.connect(
            "notify::ice-gathering-state",
            lambda el, _: el.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE
            and gathered.set(),
        )
        rtc.connect("notify::connection-state", self._on_state, session)
        with self.lock:
            ghosts = []
            for valve in ("vv", "av"):
                ghosts.append(Gst.GhostPad.new(valve, bin_.get_by_name(valve).get_static_pad("sink")))
                bin_.add_pad(ghosts[-1])
            self.pipeline.add(bin_)
            # Playing before it is linked: a tee whose only pad is still flushing returns
            # FLUSHING upstream, and the source's task pauses for good.
            bin_.sync_state_with_parent()
            for tee, ghost in zip(("video", "audio"), ghosts):
                self.pipeline.get_by_name(tee).request_pad_simple("src_%u").link(ghost)
            self.viewers[session] = bin_
            # libnice leaves loopback out, and the benchmark's only interface is loopback.
            # PyGObject releases the agent one reference too many when its wrapper goes,
            # so the wrapper is kept for the life of the process.
            ice = rtc.get_property("ice-agent")
            self.ice_agents.append(ice)
            ice.set_property("ice-tcp", False)
            ice.emit("add-local-ip-address", "127.0.0.1")

        # webrtcbin writes each sender's SSRC into the answer from the caps its pads have
        # received, which come with the next buffer on each branch.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not all(
                rtc.get_static_pad(f"sink_{i}").has_current_caps() for i in (0, 1)):
            time.sleep(0.005)
        self._call(rtc, "set-remote-description",
                   GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, offer))
        reply = self._call(rtc, "create-answer", None)
        answer = reply.get_value("answer")
        self._call(rtc, "set-local-description", answer)
        if not gathered.wait(GATHER_TIMEOUT_S):
            log("ICE gathering did not complete; answering with the candidates so far")
        # A new viewer needs a key frame now, as robocast gives it.
        self.encoder.get_static_pad("src").send_event(
            GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0))
        sdp = rtc.get_property("local-description").sdp.as_text()
        return session, sdp

    @staticmethod
    def _call(rtc, signal, argument):
        promise = Gst.Promise.new()
        rtc.emit(signal, argument, promise)
        promise.wait()
        return promise.get_reply()

    def _on_state(self, rtc, _pspec, session):
        state = rtc.get_property("connection-state")
        if state in (GstWebRTC.WebRTCPeerConnectionState.FAILED, GstWebRTC.WebRTCPeerConnectionState.CLOSED):
            GLib.idle_add(self.remove, session)

    def remove(self, session):
        """Stops feeding a viewer. Its branch stays in the pipeline, idle: taking branches
        off the tees while they stream stalled the video tee now and then."""
        with self.lock:
            bin_ = self.viewers.pop(session, None)
        if bin_ is not None:
            for valve in ("vv", "av"):
                bin_.get_by_name(valve).set_property("drop", True)
        return False


def handler(sender, static, size, kbps):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/healthz":
                return self.reply(200, {"ok": True})
            if path == "/api/config":
                return self.reply(200, {"ice_servers": []})
            if path == "/api/sessions":
                return self.reply(200, {"sessions": [{"id": s} for s in list(sender.viewers)]})
            if path == "/api/status":
                state = "running" if sender.running() else "starting"
                return self.reply(200, {
                    "pipelines": [{"kind": "video", "state": state, "encoder": "x264enc"}],
                    "video": {"target_bitrate_kbps": kbps, "size": size},
                })
            name = "index.html" if path == "/" else path.lstrip("/")
            file = os.path.join(static, name)
            if "/" in name or not os.path.isfile(file):
                return self.reply(404, {"error": "not found"})
            with open(file, "rb") as f:
                self.reply(200, f.read(), CONTENT_TYPES.get(os.path.splitext(name)[1], "text/plain"))

        def do_POST(self):
            if self.path != "/api/connect":
                return self.reply(404, {"error": "not found"})
            length = int(self.headers.get("Content-Length", 0))
            try:
                offer = json.loads(self.rfile.read(length))
                session, sdp = sender.connect(offer["sdp"])
            except (ValueError, KeyError, TypeError) as error:
                return self.reply(400, {"error": str(error), "hint": ""})
            self.reply(200, {"sdp": sdp, "type": "answer", "session": session})

        def do_DELETE(self):
            session = self.path.rsplit("/", 1)[-1]
            GLib.idle_add(sender.remove, session)
            self.reply(204, b"")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8090")
    parser.add_argument("--static", required=True, help="robocast's static/ directory")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2500, help="kbit/s")
    parser.add_argument("--source", help="a GStreamer description of raw pictures instead of the test pattern")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    host, port = args.listen.rsplit(":", 1)

    Gst.init(None)
    sender = Sender(width, height, args.fps, args.bitrate, args.source)
    server = ThreadingHTTPServer((host, int(port)), handler(sender, args.static, args.size, args.bitrate))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(f"serving on http://{args.listen}/")
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
