// A talker in plain JavaScript: what the robot page does for talk-back, with nothing but
// RTCPeerConnection (robocast-talk.js is not needed, and its buttons are tested
// elsewhere). Evaluated in a page served by robocast (same origin for fetch).
//
// The connection offers sendrecv audio and video from the start and watches the robot in
// a visible <video>; talking swaps the senders' tracks with replaceTrack(), as the robot
// page does. What it sends is made here, so its timing is known:
//
// * sound: WebAudio, a 1 kHz burst of BURST_MS after silence every BURST_EVERY_MS, into
//   a MediaStreamAudioDestinationNode. Each burst's onset is scheduled on the audio
//   context's clock and put on this page's clock through the moment the render thread
//   produces it: `currentTime` advances in steps as each device period is rendered, and
//   the newest step's context time against `now()` at that step is the offset (what a
//   microphone delivering that period would say was just heard).
// * picture: a 640x480 canvas (captureStream at 30 fps) drawn with a clock stamp: 32
//   black or white blocks, 8 across and 4 down, for the low 24 bits of `now()` in whole
//   ms and an 8-bit check, big enough to survive scaling to 320x180 and lossy coding.
//
// Every time is this page's clock, `performance.timeOrigin + performance.now()` in ms;
// `skewMs()` says how far that clock is from the system's.
// The operator's token, which talking and driving need; the benchmark sets it first.
const AUTH = { Authorization: `Bearer ${window.ROBOCAST_TOKEN}` };

(() => {
  const BURST_MS = 100;
  const BURST_EVERY_MS = 500;
  const AMPLITUDE = 0.5;
  const WIDTH = 640;
  const HEIGHT = 480;
  const FPS = 30;
  const tb = { session: null, frames: 0, bursts: [], drawn: 0, offsets: [] };
  window.__tb = tb;
  const now = () => performance.timeOrigin + performance.now();
  let pc, audioTx, videoTx, sound = null, camera = null;

  const gathered = () => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
    setTimeout(resolve, 2000); // host candidates on loopback come at once
  });

  // POST /api/connect with the offer as application/sdp; resolves with the session id
  // (the end of the Location robocast answers with).
  tb.connect = async () => {
    document.body.replaceChildren();
    const video = document.createElement('video');
    Object.assign(video, { autoplay: true, muted: true, playsInline: true });
    video.style.width = '640px';
    document.body.append(video);
    const onFrame = () => { tb.frames++; video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);

    pc = new RTCPeerConnection();
    audioTx = pc.addTransceiver('audio', { direction: 'sendrecv' });
    videoTx = pc.addTransceiver('video', { direction: 'sendrecv' });
    const stream = new MediaStream();
    pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    const response = await fetch('/api/connect', {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...AUTH },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) throw new Error(`POST /api/connect: ${response.status} ${await response.text()}`);
    const location = response.headers.get('Location') || '';
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    tb.session = location.split('/').pop();
    return { session: tb.session, location };
  };

  const seat = async (method) => {
    const response = await fetch(`/api/sessions/${tb.session}/talker`, { method, headers: AUTH });
    return { status: response.status, body: await response.text() };
  };

  // The talker seat first, as the robot page takes it, then the sound and the picture.
  tb.talk = async () => {
    const taken = await seat('POST');
    if (taken.status !== 200) return taken;
    sound = await startSound();
    camera = startCamera();
    await audioTx.sender.replaceTrack(sound.track);
    await videoTx.sender.replaceTrack(camera.track);
    return taken;
  };

  tb.stopTalking = async () => {
    await audioTx.sender.replaceTrack(null);
    await videoTx.sender.replaceTrack(null);
    sound?.stop();
    camera?.stop();
    sound = camera = null;
    return seat('DELETE');
  };

  // The audio context's clock less this page's, in ms: `currentTime` at the newest step
  // of a device period against `now()` when it is seen (the smallest difference over a
  // few periods; a period seen late only makes it larger).
  const contextOffset = (ctx, forMs = 25) => {
    let best = Infinity;
    let last = ctx.currentTime;
    const until = performance.now() + forMs;
    while (performance.now() < until) {
      const c = ctx.currentTime;
      if (c !== last) {
        best = Math.min(best, now() - c * 1000);
        last = c;
      }
    }
    return best;
  };

  const startSound = async () => {
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.resume();
    const oscillator = ctx.createOscillator();
    oscillator.frequency.value = 1000;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    const destination = ctx.createMediaStreamDestination();
    oscillator.connect(gain).connect(destination);
    oscillator.start();
    let next = ctx.currentTime + 0.3;
    // Bursts are scheduled 150-250 ms ahead, so the render thread never misses one.
    const schedule = () => {
      if (next - ctx.currentTime > 0.25) return;
      const offset = contextOffset(ctx);
      if (!Number.isFinite(offset)) return; // the context did not advance: try again
      gain.gain.setValueAtTime(AMPLITUDE, next);
      gain.gain.setValueAtTime(0, next + BURST_MS / 1000);
      tb.bursts.push(next * 1000 + offset);
      tb.offsets.push(offset);
      next += BURST_EVERY_MS / 1000;
    };
    const timer = setInterval(schedule, 50);
    const track = destination.stream.getAudioTracks()[0];
    return { track, stop: () => { clearInterval(timer); track.stop(); ctx.close(); } };
  };

  // Bit i of the stamp is block (i % 8, i / 8): white for 1.
  const drawStamp = (g, ms) => {
    const low = ms & 0xffffff;
    const check = ((low ^ (low >> 8) ^ (low >> 16)) & 0xff) ^ 0xa5;
    const word = low + check * 0x1000000;
    const w = WIDTH / 8;
    const h = HEIGHT / 4;
    for (let i = 0; i < 32; i++) {
      g.fillStyle = Math.floor(word / 2 ** i) % 2 ? '#fff' : '#000';
      g.fillRect((i % 8) * w, Math.floor(i / 8) * h, w, h);
    }
  };

  // Drawn at each animation frame at most FPS times a second, stamped with the time of
  // drawing; captureStream takes the canvas when it has changed.
  const startCamera = () => {
    const canvas = document.createElement('canvas');
    Object.assign(canvas, { width: WIDTH, height: HEIGHT });
    canvas.style.width = '160px';
    document.body.append(canvas);
    const g = canvas.getContext('2d');
    let last = 0;
    let running = true;
    const draw = () => {
      if (!running) return;
      const t = now();
      if (t - last >= 1000 / FPS - 4) {
        drawStamp(g, Math.round(t));
        tb.drawn++;
        last = t;
      }
      requestAnimationFrame(draw);
    };
    requestAnimationFrame(draw);
    const track = canvas.captureStream(FPS).getVideoTracks()[0];
    return { track, stop: () => { running = false; track.stop(); canvas.remove(); } };
  };

  // The bursts scheduled since the last call (their onsets, page clock) and the offsets
  // they were put on the page clock with.
  tb.take = () => ({ bursts: tb.bursts.splice(0), offsets: tb.offsets.splice(0), drawn: tb.drawn });

  tb.framesDecoded = async () => {
    let decoded = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') decoded = r.framesDecoded;
    });
    return { at: performance.now(), decoded, visibility: document.visibilityState };
  };

  // What this page sends, from its outbound-rtp stats: codecs and frames encoded.
  tb.sending = async () => {
    const report = await pc.getStats();
    const out = {};
    report.forEach((r) => {
      if (r.type !== 'outbound-rtp') return;
      const codec = report.get(r.codecId)?.mimeType ?? null;
      out[r.kind] = { codec, packets: r.packetsSent, frames: r.framesEncoded, width: r.frameWidth,
        height: r.frameHeight, fps: r.framesPerSecond, limitation: r.qualityLimitationReason };
    });
    return out;
  };

  // This page's clock minus the system clock, in ms: Date.now() is the system clock in
  // whole ms, so at the moment it ticks over, `now()` minus it is the offset (within the
  // 0.1 ms grain Chromium gives performance.now()). The median of a few.
  tb.skewMs = () => {
    const offsets = [];
    for (let k = 0; k < 7; k++) {
      const before = Date.now();
      let date, page;
      do { page = now(); date = Date.now(); } while (date === before);
      offsets.push(page - date);
    }
    offsets.sort((a, b) => a - b);
    return offsets[3];
  };
})();
