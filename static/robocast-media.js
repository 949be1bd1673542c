/**
 * robocast-media.js — what the client knows of the robot's media: `stats` once a second,
 * and `health`, which says whether media really arrives and, when it does not, asks the
 * robot why (robocast.js documents both at its top). Part of robocast.js; users read them
 * as `client.stats` and `client.health` and never import this module.
 */

import { NOT_ANSWERING_HINT, RobocastError } from './robocast-http.js';

const STATS_INTERVAL_MS = 1000;
const HEALTH_INTERVAL_MS = 250; // how often inbound media is counted (getStats is cheap)
const STALL_MS = 1000; // nothing new for this long while 'connected': ask the robot why
const STATUS_TIMEOUT_MS = 2000; // /api/status unanswered for this long: the robot is gone
const STATUS_RECHECK_MS = 2000; // while media stays away, ask again this often
const LINK_INTERVAL_MS = 2000; // how often the robot is asked what it makes of this link

/**
 * Polls the client's current peer connection while the client runs. It reads the client's
 * `pc`, `state`, `base`, `options.headers` and connection generation (`_gen`, which moves
 * on when a connection is torn down), and uses the client to emit `stats` and `health` and
 * to give up on a robot that no longer answers (`_retry`).
 */
export class MediaWatch {
  constructor(client) {
    this._client = client;
    this.stats = null; // the last sample's rates, of the current connection only
    this.health = { ok: false, cause: 'connection', problem: '', hint: '', media: null };
    this._timers = { stats: null, health: null };
    this._prevSample = null;
    // Inbound media seen on the current connection: a count and when it last grew.
    this._progress = { count: 0, at: 0 };
    this._statusAskedAt = -Infinity;
    this._asking = false;
    // What the robot estimates this session's link takes and which tier it sends
    // (GET /api/sessions/<id>); `unsupported` once a robocast without it answered 405.
    this._link = { estimateKbps: null, tier: null, askedAt: -Infinity, asking: false, unsupported: false };
  }

  /** Poll from now on (connect()). */
  start() {
    this.stop();
    this._timers.stats = setInterval(() => this.sample(), STATS_INTERVAL_MS);
    this._timers.health = setInterval(() => this._pollHealth(), HEALTH_INTERVAL_MS);
  }

  /** Stop polling (close()). */
  stop() {
    clearInterval(this._timers.stats);
    clearInterval(this._timers.health);
    this._timers.stats = this._timers.health = null;
  }

  /** The client's state changed to `state`; health follows it. */
  stateChanged(state, wasConnected, error, hint) {
    if (state !== 'connected') {
      this._setHealth('connection', error, hint, null);
    } else if (!wasConnected) {
      // Media counts start over with each connection; the first arrives within moments.
      this._progress = { count: 0, at: performance.now() };
      this._statusAskedAt = -Infinity;
      const pc = this._client.pc;
      this._setHealth('starting', '', '', pc ? watchedMedia(pc) : null);
    }
  }

  /** The connection is gone: its samples and its question to the robot with it. */
  forget() {
    this._prevSample = this.stats = null;
    this._asking = false;
    Object.assign(this._link, { estimateKbps: null, tier: null, askedAt: -Infinity });
  }

  /** Take a stats sample now; from the second one on, emit `stats` with the rates. */
  async sample() {
    const client = this._client;
    const pc = client.pc;
    const report = pc && client.state === 'connected' && await pc.getStats().catch(() => null);
    if (!report || pc !== client.pc || client.state !== 'connected') return;
    const now = readSample(report);
    const prev = this._prevSample;
    this._prevSample = now;
    if (!prev) return; // rates need two samples
    const dt = (now.t - prev.t) / 1000 || 1;
    const dRecv = Math.max(0, now.received - prev.received);
    const dLost = Math.max(0, now.lost - prev.lost); // late packets can make the total shrink
    const stats = {
      width: now.width,
      height: now.height,
      // framesPerSecond is missing in some browsers; the framesDecoded delta works everywhere.
      fps: round1(now.fps ?? Math.max(0, now.frames - prev.frames) / dt),
      bitrateKbps: Math.round((Math.max(0, now.bytes - prev.bytes) * 8) / 1000 / dt),
      rttMs: typeof now.rtt === 'number' ? Math.round(now.rtt * 1000) : null,
      packetsLost: now.lost,
      lossPercent: dLost + dRecv ? round1((dLost / (dLost + dRecv)) * 100) : 0,
      framesDecoded: now.frames,
    };
    if (now.audioLevel !== undefined) stats.audioLevel = now.audioLevel;
    stats.estimateKbps = this._link.estimateKbps;
    stats.tier = this._link.tier;
    this.stats = stats;
    this._client._emit('stats', stats);
    this._askLink();
  }

  /** Asks the robot, every LINK_INTERVAL_MS, what it estimates this link takes and which
   * video tier it sends this session; the next stats sample carries the answer. */
  _askLink() {
    const client = this._client;
    const link = this._link;
    const now = performance.now();
    if (link.unsupported || link.asking || !client.session || now - link.askedAt < LINK_INTERVAL_MS) return;
    Object.assign(link, { asking: true, askedAt: now });
    const gen = client._gen;
    fetch(`${client.base}/api/sessions/${encodeURIComponent(client.session)}`, { headers: { ...client.options.headers } })
      .then(async (res) => {
        if (res.status === 405) link.unsupported = true;
        if (!res.ok || gen !== client._gen) return;
        const body = await res.json();
        if (gen !== client._gen) return;
        const bps = body?.link?.target_bps;
        link.estimateKbps = typeof bps === 'number' ? Math.round(bps / 1000) : null;
        link.tier = typeof body?.tier === 'number' ? body.tier : null;
      })
      .catch(() => {})
      .finally(() => { link.asking = false; });
  }

  /** Counts inbound media; after STALL_MS without anything new, asks the robot why. */
  async _pollHealth() {
    const client = this._client;
    const pc = client.pc;
    const gen = client._gen;
    const report = pc && client.state === 'connected' && await pc.getStats().catch(() => null);
    if (!report || gen !== client._gen || client.state !== 'connected') return;
    const media = watchedMedia(pc);
    if (!media) return this._setHealth('ok', '', '', null);
    const count = countInbound(report, media);
    const now = performance.now();
    if (count > this._progress.count) {
      this._progress = { count, at: now };
      return this._setHealth('ok', '', '', media);
    }
    if (now - this._progress.at < STALL_MS) return;
    // Say so at once; what the robot answers refines it.
    if (!['stalled', 'source', 'network'].includes(this.health.cause)) {
      this._setHealth('stalled', `no new ${noun(media)} for over a second`, 'Asking the robot why…', media);
    }
    if (!this._asking && now - this._statusAskedAt >= STATUS_RECHECK_MS) this._askRobot(gen, media);
  }

  /** GET /api/status: no answer is a lost connection; a source not running is the reason. */
  async _askRobot(gen, media) {
    const client = this._client;
    this._asking = true;
    this._statusAskedAt = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), STATUS_TIMEOUT_MS);
    let res;
    let body = {};
    try {
      res = await fetch(`${client.base}/api/status`, {
        headers: { ...client.options.headers }, signal: abort.signal, cache: 'no-store',
      });
      body = await res.json().catch(() => ({}));
    } catch (err) {
      if (gen !== client._gen) return;
      const why = err.name === 'AbortError' ? ` (no reply within ${STATUS_TIMEOUT_MS / 1000} s)` : '';
      return client._retry(gen, new RobocastError(`the robot is not answering${why}`, { hint: NOT_ANSWERING_HINT }));
    } finally {
      clearTimeout(timer);
      if (gen === client._gen) this._asking = false;
    }
    // Media may have come back while we asked.
    if (gen !== client._gen || client.state !== 'connected' || this.health.ok) return;
    const pipelines = res.ok && Array.isArray(body?.pipelines) ? body.pipelines : [];
    const down = pipelines.find((p) => p && p.kind === media && p.state !== 'running');
    if (down) {
      const what = `the robot's ${media} source is ${down.state === 'retrying' ? 'down' : down.state}`;
      this._setHealth('source', down.error ? `${what}: ${down.error}` : what, down.hint || '', media);
    } else {
      this._setHealth('network', `no ${noun(media)} is arriving (the network may be dropping it)`,
        'The robot is answering and its source is running. A weak Wi-Fi link or a firewall '
        + 'that blocks UDP can do this; the picture resumes by itself when packets get through.',
        media);
    }
  }

  _setHealth(cause, problem, hint, media = this.health.media) {
    const health = { ok: cause === 'ok', cause, problem, hint, media };
    const h = this.health;
    if (h.cause === cause && h.problem === problem && h.hint === hint && h.media === media) return;
    this.health = health;
    this._client._emit('health', { ...health });
  }
}

/** Totals from one getStats() report: inbound RTP (video + audio) and the ICE pair in use. */
function readSample(report) {
  const s = { t: performance.now(), bytes: 0, received: 0, lost: 0, frames: 0, width: 0, height: 0 };
  let pairId = null;
  let pair = null;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp') {
      s.bytes += r.bytesReceived || 0;
      s.received += r.packetsReceived || 0;
      s.lost += r.packetsLost || 0;
      if ((r.kind || r.mediaType) === 'video') {
        s.frames = r.framesDecoded || 0;
        s.width = r.frameWidth || 0;
        s.height = r.frameHeight || 0;
        s.fps = r.framesPerSecond;
      } else if (typeof r.audioLevel === 'number') {
        s.audioLevel = r.audioLevel;
      }
    } else if (r.type === 'transport' && r.selectedCandidatePairId) {
      pairId = r.selectedCandidatePairId;
    } else if (r.type === 'candidate-pair' && (r.selected || (r.nominated && r.state === 'succeeded'))) {
      pair ??= r; // for browsers whose transport stats do not name the selected pair
    }
  });
  s.rtt = ((pairId && report.get(pairId)) || pair)?.currentRoundTripTime;
  return s;
}

/**
 * What shows that the robot's media arrives: video frames decoded, or audio packets when
 * the robot sends no video (its answer leaves video out or inactive), or null.
 */
function watchedMedia(pc) {
  const receives = (kind) => pc.getTransceivers().some((t) => t.receiver?.track?.kind === kind
    && (t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv'));
  if (receives('video')) return 'video';
  return receives('audio') ? 'audio' : null;
}

/** Video frames decoded, or audio packets received, so far on this connection. */
function countInbound(report, media) {
  let count = 0;
  report.forEach((r) => {
    if (r.type !== 'inbound-rtp' || (r.kind || r.mediaType) !== media) return;
    count += media === 'video' ? r.framesDecoded || 0 : r.packetsReceived || 0;
  });
  return count;
}

const noun = (media) => (media === 'video' ? 'picture' : 'sound');

const round1 = (x) => Math.round(x * 10) / 10;
