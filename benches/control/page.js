// A viewer that can drive, in plain JavaScript: what a robot's own page would write with
// nothing but RTCPeerConnection (the robot page's robocast.js is not needed, and is
// measured elsewhere). Evaluated in a page served by robocast (same origin for fetch).
// Every time is this page's clock as the issue asks, `performance.timeOrigin +
// performance.now()` in ms; `skewMs()` says how far that clock is from the system's.
// The operator's token, which talking and driving need; the benchmark sets it first.
const AUTH = { Authorization: `Bearer ${window.ROBOCAST_TOKEN}` };

(() => {
  const ctl = { session: null, frames: 0, received: [], sent: { control: 0, state: 0 }, driving: false };
  window.__ctl = ctl;
  const now = () => performance.timeOrigin + performance.now();
  let pc, control, state, video;

  const opened = (channel) => new Promise((resolve, reject) => {
    if (channel.readyState === 'open') return resolve();
    channel.addEventListener('open', () => resolve(), { once: true });
    channel.addEventListener('close', () => reject(new Error(`${channel.label} closed`)), { once: true });
  });
  const gathered = () => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
    setTimeout(resolve, 2000); // host candidates on loopback come at once
  });

  // Offers the two channels of the README's "Drive the robot" (and with `withMedia`,
  // video and audio, played in a visible <video>); resolves with the session id once both
  // channels are open.
  ctl.connect = async (withMedia = true) => {
    document.body.replaceChildren();
    video = document.createElement('video');
    Object.assign(video, { autoplay: true, muted: true, playsInline: true });
    video.style.width = '640px';
    document.body.append(video);
    const onFrame = () => { ctl.frames++; video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);

    pc = new RTCPeerConnection();
    if (withMedia) {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
    }
    const stream = new MediaStream();
    pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
    control = pc.createDataChannel('control', { ordered: false, maxRetransmits: 0 });
    state = pc.createDataChannel('state');
    // A program's telemetry carries `t`, its send time; robocast's own notices do not.
    state.onmessage = (e) => {
      const at = now();
      let value;
      try { value = JSON.parse(e.data); } catch { return; }
      if (value && typeof value.t === 'number' && value.from !== 'robocast') ctl.received.push([value.t, at]);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    const response = await fetch('/api/connect', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...AUTH },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }),
    });
    if (!response.ok) throw new Error(`POST /api/connect: ${response.status} ${await response.text()}`);
    const answer = await response.json();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    ctl.session = answer.session;
    await Promise.all([opened(control), opened(state)]);
    return ctl.session;
  };

  ctl.takeSeat = async () => {
    const response = await fetch(`/api/sessions/${ctl.session}/driver`, { method: 'POST', headers: AUTH });
    return { status: response.status, body: await response.text() };
  };

  // `count` commands on `control` at 20 Hz, and with `withState` as many messages on
  // `state`, 25 ms after each command (so the two never queue behind each other).
  // Returns at once; `driving` is false again after the last.
  ctl.drive = (count, withState) => {
    ctl.driving = true;
    let i = 0;
    const tick = () => {
      if (i >= count) {
        clearInterval(timer);
        ctl.driving = false;
        return;
      }
      control.send(JSON.stringify({ type: 'drive', linear: 0.2, angular: 0, i, t: now() }));
      ctl.sent.control++;
      if (withState) {
        const n = i;
        setTimeout(() => {
          state.send(JSON.stringify({ type: 'ping', i: n, t: now() }));
          ctl.sent.state++;
        }, 25);
      }
      i++;
    };
    const timer = setInterval(tick, 50);
    tick();
  };

  // What arrived on `state` since the last call: [program's send time, arrival] pairs.
  ctl.take = () => ctl.received.splice(0);

  ctl.framesDecoded = async () => {
    let decoded = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') decoded = r.framesDecoded;
    });
    return { at: performance.now(), decoded, visibility: document.visibilityState };
  };

  // This page's clock minus the system clock, in ms: Date.now() is the system clock in
  // whole ms, so at the moment it ticks over, `now()` minus it is the offset (within the
  // 0.1 ms grain Chromium gives performance.now()). The median of a few.
  ctl.skewMs = () => {
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
