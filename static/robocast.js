/**
 * robocast.js — browser client for a robocast robot (ES module, no dependencies).
 *
 * Usage in your own page (served by robocast at `/robocast.js`):
 *
 *   <video id="v" autoplay playsinline muted></video>
 *   <script type="module">
 *     import { RobocastClient } from '/robocast.js';
 *     const robot = new RobocastClient();     // or { base: 'https://robot.local:8443' }
 *     robot.addEventListener('track', () => { v.srcObject = robot.remoteStream; });
 *     robot.addEventListener('statechange', () => console.log(robot.state, robot.lastError));
 *     robot.addEventListener('health', (e) => console.log(e.detail.ok ? 'live' : e.detail.problem));
 *     robot.addEventListener('stats', (e) => console.log(e.detail.fps, 'fps'));
 *     robot.addEventListener('message', (e) => console.log('robot says', e.detail));
 *     robot.connect().catch(() => {});        // reconnects by itself; send({...}) drives
 *   </script>
 *
 * Options: `base` (server origin, default same origin), `video` / `audio` ('recvonly',
 * 'sendrecv', 'sendonly' or false to leave the kind out), `localStream` (the MediaStream
 * whose tracks are sent when a direction sends), `headers` (extra HTTP headers),
 * `closeOnPageHide` (default true: end the server session when the tab goes away).
 *
 * Properties: `pc` (the current RTCPeerConnection, replaced on every reconnect),
 * `state` ('connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed'; 'closed'
 * also before connect()), `lastError` / `lastHint` (why we are not connected, '' once
 * connected), `retryInMs`, `remoteStream` (MediaStream of the robot's tracks, a new one
 * per connection), `session` (server session id), `stats` (last stats sample), `canSend`,
 * `health` (below).
 *
 * `health` {ok, cause, problem, hint, media} says whether the robot's media is really
 * arriving, which 'connected' alone does not: a connection can stay up over a frozen or
 * black picture. `media` is what is watched: 'video' (frames decoded), 'audio' (packets,
 * when the robot sends no video: that is not an error) or null (nothing to watch).
 * `ok` is true only while 'connected' and new media arrived within the last second.
 * `cause`: 'ok'; 'connection' (not 'connected': problem and hint are lastError and
 * lastHint); 'starting' (connected, nothing arrived yet); 'stalled' (nothing new for a
 * second, asking the robot's /api/status why); 'source' (the robot says its source is
 * down: problem is its error, hint what the robot's owner can do); 'network' (the robot
 * says its source runs, yet nothing arrives). A robot that does not answer /api/status
 * is a lost connection: the client reconnects, with lastError 'the robot is not
 * answering'. When media comes back, health returns to ok by itself.
 *
 * Events (CustomEvent, payload in `detail`): `statechange` {state, error, hint, retryInMs},
 * `health` (a copy of `health`, on every change),
 * `track` {track, streams, stream}, `stats` {width, height, fps, bitrateKbps, rttMs,
 * packetsLost, lossPercent, framesDecoded, audioLevel?}, `message` (parsed JSON from the
 * robot's `state` channel), `channel` {label, open}.
 *
 * connect() resolves on 'connected' and rejects with a RobocastError {message, hint} on
 * 'failed' or 'closed'; the client keeps reconnecting whatever happened to that promise.
 *
 * Retry policy: a lost connection or an unreachable / overloaded server (network error,
 * 5xx, 503 viewer limit) is retried forever with backoff 1 s → 10 s. A request the server
 * rejects as wrong (other 4xx) ends in 'failed': the same offer would be rejected again.
 */

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;
const ICE_GATHER_MS = 300; // host candidates are instant; a dead STUN server must not delay us
const ICE_GATHER_HARD_MS = 2000; // ...but an offer without any candidate cannot connect
const DISCONNECT_GRACE_MS = 3000; // 'disconnected' often heals (Wi-Fi roaming); 'failed' does not
const CONNECT_TIMEOUT_MS = 15000; // answer applied but ICE never connected (UDP blocked)
const HTTP_TIMEOUT_MS = 10000;
// Only a connection that lived this long resets the backoff to 1 s, so a server that
// accepts and then drops us at once is not hammered every second.
const STABLE_MS = 10000;
const STATS_INTERVAL_MS = 1000;
const HEALTH_INTERVAL_MS = 250; // how often inbound media is counted (getStats is cheap)
const STALL_MS = 1000; // nothing new for this long while 'connected': ask the robot why
const STATUS_TIMEOUT_MS = 2000; // /api/status unanswered for this long: the robot is gone
const STATUS_RECHECK_MS = 2000; // while media stays away, ask again this often
const NOT_ANSWERING_HINT = 'It may be restarting, powered off or off the network; reconnecting.';

/** An error with a hint for the user and whether retrying can help. */
export class RobocastError extends Error {
  constructor(message, { hint = '', retry = true } = {}) {
    super(message);
    this.name = 'RobocastError';
    this.hint = hint;
    this.retry = retry;
  }
}

export class RobocastClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = {
      base: '', video: 'recvonly', audio: 'recvonly', localStream: null,
      headers: {}, closeOnPageHide: true, ...options,
    };
    this.base = String(this.options.base || '').replace(/\/+$/, '');
    this.pc = this.session = this.stats = null;
    this.state = 'closed';
    this.lastError = this.lastHint = '';
    this.retryInMs = 0;
    this.health = { ok: false, cause: 'connection', problem: '', hint: '', media: null };
    this.remoteStream = typeof MediaStream === 'undefined' ? null : new MediaStream();

    // Every await in a connection attempt is followed by a check of this counter:
    // _teardown() bumps it, which cancels whatever was still in flight.
    this._gen = 0;
    this._backoff = BACKOFF_MIN_MS;
    this._connectedAt = 0;
    this._channels = { control: null, state: null };
    this._timers = { retry: null, disconnect: null, connect: null, stats: null, health: null };
    this._abort = this._prevSample = null;
    // Inbound media seen on the current connection: a count and when it last grew.
    this._progress = { count: 0, at: 0 };
    this._statusAskedAt = -Infinity;
    this._asking = false;

    if (this.options.closeOnPageHide && typeof window !== 'undefined') {
      // pagehide fires on tab close, navigation and mobile tab discard, unlike unload.
      window.addEventListener('pagehide', (e) => {
        if (this.state === 'closed') return;
        this._resumeOnShow = e.persisted;
        this.close();
      });
      // Restored from the back/forward cache: the session was ended, start a new one.
      window.addEventListener('pageshow', (e) => {
        if (e.persisted && this._resumeOnShow) {
          this._resumeOnShow = false;
          this.connect().catch(() => {});
        }
      });
    }
  }

  /** Start; while 'reconnecting', retry at once instead of waiting for the backoff. */
  connect() {
    if (this.state === 'reconnecting' && this._timers.retry) {
      this._attempt();
    } else if (this.state === 'closed' || this.state === 'failed') {
      this._backoff = BACKOFF_MIN_MS;
      this._connectedAt = 0;
      this._setState('connecting', '', '');
      clearInterval(this._timers.stats);
      clearInterval(this._timers.health);
      this._timers.stats = setInterval(() => this._pollStats(), STATS_INTERVAL_MS);
      this._timers.health = setInterval(() => this._pollHealth(), HEALTH_INTERVAL_MS);
      this._attempt();
    }
    return this._settled();
  }

  /** End the session and stop reconnecting. */
  close() {
    this._teardown();
    clearInterval(this._timers.stats);
    clearInterval(this._timers.health);
    this._timers.stats = this._timers.health = null;
    this._setState('closed', '', '');
  }

  /** True when the `control` channel is open. */
  get canSend() {
    const ch = this._channels.control;
    return !!ch && ch.readyState === 'open';
  }

  /**
   * Send a command on the `control` channel (unordered, no retransmits: a lost command is
   * replaced by the next one). Returns false, without throwing, if the channel is not open.
   */
  send(obj) {
    if (!this.canSend) return false;
    try {
      this._channels.control.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
      return true;
    } catch {
      return false; // closing under our feet, or the send buffer is full: drop this one
    }
  }

  // --- connection attempts -------------------------------------------------------------

  async _attempt() {
    this._teardown();
    const gen = this._gen;
    const stale = () => gen !== this._gen;
    if (this.state === 'reconnecting') this._setState('reconnecting', undefined, undefined, 0);
    try {
      if (typeof RTCPeerConnection === 'undefined') {
        throw new RobocastError('this browser has no WebRTC support',
          { hint: 'Use a current Chrome, Firefox, Safari or Edge.', retry: false });
      }
      const iceServers = await this._iceServers();
      if (stale()) return;
      const pc = this._createPeer(iceServers, gen);
      await pc.setLocalDescription(await pc.createOffer());
      await gatherCandidates(pc);
      if (stale()) return;
      const answer = await this._postOffer(pc.localDescription);
      if (stale()) {
        this._deleteSession(answer.session);
        return;
      }
      this.session = answer.session || null;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      if (stale()) return;
      this._timers.connect = setTimeout(() => this._retry(gen, new RobocastError(
        `no media connection after ${CONNECT_TIMEOUT_MS / 1000} s`,
        { hint: 'The network between you and the robot may block UDP; a TURN server in ice_servers helps.' },
      )), CONNECT_TIMEOUT_MS);
    } catch (err) {
      if (stale()) return;
      if (err instanceof RobocastError && !err.retry) {
        this._teardown();
        this._setState('failed', err.message, err.hint);
      } else {
        this._retry(gen, err);
      }
    }
  }

  /** Drop the current connection and try again after the backoff delay. */
  _retry(gen, err) {
    if (gen !== this._gen || this.state === 'closed' || this.state === 'failed') return;
    this._teardown();
    if (this._connectedAt && performance.now() - this._connectedAt > STABLE_MS) this._backoff = BACKOFF_MIN_MS;
    this._connectedAt = 0;
    const delay = this._backoff;
    this._backoff = Math.min(delay * 2, BACKOFF_MAX_MS);
    this._setState('reconnecting', err.message || String(err), err.hint || '', delay);
    this._timers.retry = setTimeout(() => this._attempt(), delay);
  }

  /** Close the peer connection, end the server session, cancel timers and requests. */
  _teardown() {
    this._gen++;
    for (const name of ['retry', 'disconnect', 'connect']) {
      clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
    this._abort?.abort();
    this._abort = null;
    // this.pc keeps pointing at the closed connection until the next one replaces it,
    // so code that polls `client.pc` never meets null.
    this.pc?.close();
    this._deleteSession(this.session);
    this.session = null;
    this._channels = { control: null, state: null };
    this._prevSample = this.stats = null; // stats describe the current connection only
    this._asking = false;
  }

  _createPeer(iceServers, gen) {
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    const stream = new MediaStream();
    this.remoteStream = stream;

    this._addTransceiver(pc, 'video', this.options.video);
    this._addTransceiver(pc, 'audio', this.options.audio);
    // Created now so the offer carries an m=application section the server can use later;
    // if the server's answer leaves it out, the channels simply never open.
    this._adoptChannel(pc.createDataChannel('control', { ordered: false, maxRetransmits: 0 }), gen);
    this._adoptChannel(pc.createDataChannel('state'), gen);
    pc.addEventListener('datachannel', (e) => this._adoptChannel(e.channel, gen));

    pc.addEventListener('track', (e) => {
      if (gen !== this._gen) return;
      stream.addTrack(e.track);
      this._emit('track', { track: e.track, streams: e.streams, stream });
    });
    // Both events, because a browser without connectionState only reports ICE state.
    const onState = () => this._onConnectionState(pc, gen);
    pc.addEventListener('connectionstatechange', onState);
    pc.addEventListener('iceconnectionstatechange', onState);
    return pc;
  }

  _addTransceiver(pc, kind, direction) {
    if (!direction) return;
    const local = this.options.localStream;
    const track = local && direction !== 'recvonly' && local.getTracks().find((t) => t.kind === kind);
    if (track) pc.addTransceiver(track, { direction, streams: [local] });
    else pc.addTransceiver(kind, { direction });
  }

  _adoptChannel(ch, gen) {
    const label = ch.label;
    if (label !== 'control' && label !== 'state') return;
    // Keep ours unless the server opens its own with the same label: the open one wins.
    if (!this._channels[label]) this._channels[label] = ch;
    ch.addEventListener('open', () => {
      if (gen !== this._gen) return;
      this._channels[label] = ch;
      this._emit('channel', { label, open: true });
    });
    ch.addEventListener('close', () => {
      if (gen === this._gen && this._channels[label] === ch) this._emit('channel', { label, open: false });
    });
    if (label === 'state') {
      ch.addEventListener('message', (e) => {
        if (gen === this._gen) this._emit('message', parseMessage(e.data));
      });
    }
  }

  _onConnectionState(pc, gen) {
    if (gen !== this._gen) return;
    let s = pc.connectionState || pc.iceConnectionState;
    if (s === 'completed') s = 'connected';
    if (s === 'connected') {
      clearTimeout(this._timers.disconnect);
      clearTimeout(this._timers.connect);
      this._timers.disconnect = this._timers.connect = null;
      if (this.state !== 'connected') {
        this._connectedAt = performance.now();
        this._setState('connected', '', '');
        this._pollStats(); // first sample, so the first 'stats' event already has rates
      }
    } else if (s === 'failed') {
      this._retry(gen, new RobocastError('the connection failed',
        { hint: 'The robot or the network went away; reconnecting.' }));
    } else if (s === 'disconnected' && !this._timers.disconnect) {
      this._timers.disconnect = setTimeout(() => this._retry(gen, new RobocastError(
        `connection lost for more than ${DISCONNECT_GRACE_MS / 1000} s`,
        { hint: 'Check the robot\'s network; reconnecting.' },
      )), DISCONNECT_GRACE_MS);
    }
  }

  // --- HTTP ----------------------------------------------------------------------------

  async _iceServers() {
    const { res, body } = await this._request('/api/config');
    // Without a config (older server) host candidates still connect on a LAN.
    return res.ok && Array.isArray(body.ice_servers) ? body.ice_servers : [];
  }

  async _postOffer(desc) {
    const { res, body } = await this._request('/api/connect', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sdp: desc.sdp, type: desc.type }),
    });
    if (!res.ok) {
      // Busy, restarting or behind a proxy that is: worth retrying. Other 4xx: our fault.
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      throw new RobocastError(`${body.error || res.statusText || 'request failed'} (HTTP ${res.status})`,
        { hint: body.hint || '', retry });
    }
    if (typeof body.sdp !== 'string') {
      throw new RobocastError('the server replied without an SDP answer',
        { hint: 'Is this address a robocast server?', retry: false });
    }
    return body;
  }

  /** fetch with a timeout that teardown can also cancel; parses a JSON body if any. */
  async _request(path, init = {}) {
    const abort = new AbortController();
    this._abort = abort;
    const timer = setTimeout(() => abort.abort(), HTTP_TIMEOUT_MS);
    try {
      const res = await fetch(this.base + path, {
        ...init,
        headers: { ...this.options.headers, ...init.headers },
        signal: abort.signal,
      });
      // Error bodies are JSON {error, hint}; a proxy's HTML error page parses to {}.
      const body = await res.json().catch(() => ({}));
      return { res, body: body && typeof body === 'object' ? body : {} };
    } catch (err) {
      // fetch's own TypeError texts ('Failed to fetch', ...) say nothing more than this.
      const why = err.name === 'AbortError' ? ` (no reply within ${HTTP_TIMEOUT_MS / 1000} s)` : '';
      throw new RobocastError(`the robot is not answering${why}`, { hint: NOT_ANSWERING_HINT });
    } finally {
      clearTimeout(timer);
    }
  }

  _deleteSession(id) {
    if (!id) return;
    // keepalive lets the request outlive the page during pagehide.
    fetch(`${this.base}/api/sessions/${encodeURIComponent(id)}`, {
      method: 'DELETE', keepalive: true, headers: { ...this.options.headers },
    }).catch(() => {});
  }

  // --- stats ---------------------------------------------------------------------------

  async _pollStats() {
    const pc = this.pc;
    const report = pc && this.state === 'connected' && await pc.getStats().catch(() => null);
    if (!report || pc !== this.pc || this.state !== 'connected') return;
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
    this.stats = stats;
    this._emit('stats', stats);
  }

  // --- health: is media really arriving? ----------------------------------------------

  /** Counts inbound media; after STALL_MS without anything new, asks the robot why. */
  async _pollHealth() {
    const pc = this.pc;
    const gen = this._gen;
    const report = pc && this.state === 'connected' && await pc.getStats().catch(() => null);
    if (!report || gen !== this._gen || this.state !== 'connected') return;
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
    this._asking = true;
    this._statusAskedAt = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), STATUS_TIMEOUT_MS);
    let res;
    let body = {};
    try {
      res = await fetch(`${this.base}/api/status`, {
        headers: { ...this.options.headers }, signal: abort.signal, cache: 'no-store',
      });
      body = await res.json().catch(() => ({}));
    } catch (err) {
      if (gen !== this._gen) return;
      const why = err.name === 'AbortError' ? ` (no reply within ${STATUS_TIMEOUT_MS / 1000} s)` : '';
      return this._retry(gen, new RobocastError(`the robot is not answering${why}`, { hint: NOT_ANSWERING_HINT }));
    } finally {
      clearTimeout(timer);
      if (gen === this._gen) this._asking = false;
    }
    // Media may have come back while we asked.
    if (gen !== this._gen || this.state !== 'connected' || this.health.ok) return;
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
    this._emit('health', { ...health });
  }

  // --- helpers -------------------------------------------------------------------------

  _setState(state, error = this.lastError, hint = this.lastHint, retryInMs = 0) {
    const key = `${state}\n${error}\n${hint}\n${retryInMs}`;
    if (key === this._stateKey) return; // both ICE and connection events report 'connected'
    this._stateKey = key;
    const wasConnected = this.state === 'connected';
    Object.assign(this, { state, lastError: error, lastHint: hint, retryInMs });
    this._emit('statechange', { state, error, hint, retryInMs });
    if (state !== 'connected') {
      this._setHealth('connection', error, hint, null);
    } else if (!wasConnected) {
      // Media counts start over with each connection; the first arrives within moments.
      this._progress = { count: 0, at: performance.now() };
      this._statusAskedAt = -Infinity;
      this._setHealth('starting', '', '', this.pc ? watchedMedia(this.pc) : null);
    }
  }

  _settled() {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.state === 'connected') resolve(this);
        else if (this.state === 'failed' || this.state === 'closed') {
          reject(new RobocastError(this.lastError || `robocast ${this.state}`, { hint: this.lastHint }));
        } else return;
        this.removeEventListener('statechange', check);
      };
      this.addEventListener('statechange', check);
      check();
    });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Resolve when ICE gathering is complete, or once ICE_GATHER_MS have passed and the offer
 * holds at least one candidate, or at ICE_GATHER_HARD_MS. The server does not trickle:
 * whatever pc.localDescription holds then is all it gets.
 */
function gatherCandidates(pc) {
  return new Promise((resolve) => {
    const start = performance.now();
    const check = () => {
      const enough = performance.now() - start >= ICE_GATHER_MS
        && /\na=candidate:/.test(pc.localDescription?.sdp || '');
      if (pc.iceGatheringState === 'complete' || enough) finish();
    };
    const finish = () => {
      clearInterval(poll);
      clearTimeout(hard);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const poll = setInterval(check, 50);
    const hard = setTimeout(finish, ICE_GATHER_HARD_MS);
    pc.addEventListener('icegatheringstatechange', check);
    check();
  });
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

/** JSON messages become objects; anything else (text, binary) is passed through. */
function parseMessage(data) {
  try {
    return typeof data === 'string' ? JSON.parse(data) : data;
  } catch {
    return data;
  }
}
