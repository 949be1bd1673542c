(() => {
  const BLOCK = 16, BITS = 32, WIDTH = BLOCK * (BITS + 2);
  // sourceWidth: the width the stamp was painted at, when pictures may arrive smaller.
  const bench = { firstFrame: null, collecting: false, origin: 0, samples: [], sourceWidth: null };
  window.__bench = bench;
  const canvas = document.createElement('canvas');
  canvas.width = WIDTH;
  canvas.height = BLOCK;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let video = null;

  const readStamp = () => {
    // A picture scaled from the source (robocast's lower tier): the stamp is scaled too.
    const scale = bench.sourceWidth ? video.videoWidth / bench.sourceWidth : 1;
    ctx.drawImage(video, 0, 0, WIDTH * scale, BLOCK * scale, 0, 0, WIDTH, BLOCK);
    const px = ctx.getImageData(0, BLOCK / 2, WIDTH, 1).data;
    const bright = (block) => {
      const i = (block * BLOCK + BLOCK / 2) * 4;
      return 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2] >= 128;
    };
    if (!bright(0) || bright(1)) return null;
    let value = 0;
    for (let bit = 0; bit < BITS; bit++) value = value * 2 + (bright(bit + 2) ? 1 : 0);
    return value;
  };
  // Wall-clock ms at page time t minus the painted ms, modulo 2^32 (signed).
  const age = (t, painted) => {
    if (typeof t !== 'number') return null;
    const wall = bench.origin + t, ms = Math.floor(wall);
    return (((ms >>> 0) - painted) | 0) + (wall - ms);
  };
  const onFrame = (now, meta) => {
    if (bench.firstFrame === null) bench.firstFrame = meta.expectedDisplayTime;
    if (bench.collecting) {
      const painted = readStamp();
      if (painted !== null) bench.samples.push([painted, age(meta.receiveTime, painted),
        age(meta.presentationTime, painted), age(meta.expectedDisplayTime, painted)]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  document.addEventListener('DOMContentLoaded', () => {
    video = document.getElementById('video');
    video.requestVideoFrameCallback(onFrame);
  });

  // Offer (start of the POST) to first shown frame, once the page has both.
  bench.firstFrameAfterOffer = () => {
    const offer = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/api/connect'));
    return bench.firstFrame !== null && offer ? bench.firstFrame - offer.startTime : null;
  };

  const videoStats = async () => {
    let v = null;
    (await window.robocast.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') v = r;
    });
    if (!v) throw new Error('no inbound video');
    return { at: performance.now(), decoded: v.framesDecoded, dropped: v.framesDropped || 0,
      decodeTime: v.totalDecodeTime || 0, jitterDelay: v.jitterBufferDelay || 0,
      jitterCount: v.jitterBufferEmittedCount || 0 };
  };
  // Date.now() - performance.now(), aligned on a millisecond edge: the page clock as
  // wall-clock time now, not as it was at navigation (performance.timeOrigin).
  const clockOrigin = () => {
    const before = Date.now();
    let date, page;
    do { page = performance.now(); date = Date.now(); } while (date === before);
    return date - page;
  };
  bench.start = async () => {
    bench.origin = clockOrigin();
    bench.samples = [];
    bench.stats = await videoStats();
    bench.collecting = true;
  };
  bench.stop = async () => {
    bench.collecting = false;
    const a = bench.stats, b = await videoStats();
    const frames = b.decoded - a.decoded, jitterCount = b.jitterCount - a.jitterCount;
    return {
      samples: bench.samples,
      fps: frames / ((b.at - a.at) / 1000),
      droppedFrames: b.dropped - a.dropped,
      decodeMs: frames > 0 ? (b.decodeTime - a.decodeTime) * 1000 / frames : null,
      jitterBufferMs: jitterCount > 0 ? (b.jitterDelay - a.jitterDelay) * 1000 / jitterCount : null,
      visibility: document.visibilityState,
      clockSkewMs: bench.origin - performance.timeOrigin,
    };
  };
})()
