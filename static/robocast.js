/**
 * robocast.js — browser client for a robocast robot (ES module, no dependencies).
 *
 * Usage in your own page (served by robocast at `/robocast.js`):
 *
 *   <video id="v" autoplay playsinline muted></video> <button>Take control</button>
 *   <script type="module">
 *     import { RobocastClient, keyboard } from '/robocast.js';
 *     const robot = new RobocastClient();     // or { base: 'http://robot.local:8080' }
 *     robot.addEventListener('track', () => { v.srcObject = robot.remoteStream; });
 *     robot.addEventListener('statechange', () => console.log(robot.state, robot.lastError));
 *     robot.addEventListener('health', (e) => console.log(e.detail.ok ? 'live' : e.detail.problem));
 *     robot.addEventListener('stats', (e) => console.log(e.detail.fps, 'fps'));
 *     robot.addEventListener('message', (e) => console.log(e.detail.channel, e.detail.data));
 *     robot.addEventListener('driver', (e) => console.log(e.detail.you ? 'you drive' : e.detail.session));
 *     robot.connect().catch(() => {});        // reconnects by itself
 *     keyboard(window, ({ linear, angular }) => robot.drive(linear, angular));
 *     document.querySelector('button').onclick = () => robot.takeControl().catch((err) => alert(`${err.message}\n${err.hint}`));
 *   </script>
 *
 * On a page of another origin, import `http://<robot>:8080/robocast.js` and pass `base`.
 * This file loads its parts from beside it (robocast-channels.js: data channels and
 * send(); robocast-drive.js: the seat and the drive loop; robocast-media.js: stats and
 * health; robocast-talk.js: talk-back; robocast-input.js: the input helpers;
 * robocast-http.js: requests and RobocastError), so import it from the robot rather than
 * copying it alone.
 *
 * Options: `base` (server origin, default same origin), `video` / `audio` ('sendrecv', the
 * default, which talk() and showCamera() need; 'recvonly', 'sendonly' or false to leave
 * the kind out), `localStream` (a MediaStream whose tracks are sent from the start when a
 * direction sends; talk() and showCamera() replace them), `headers` (extra HTTP headers),
 * `token` (the viewer's or the operator's token, sent as `Authorization: Bearer`; the
 * operator's drives and talks), `closeOnPageHide` (default true: end the server session
 * when the tab goes away),
 * `channels` (data channels to open besides `control` and `state`: an object of label →
 * RTCDataChannelInit, e.g. `{ default: {} }` for RTCBot's).
 *
 * Properties: `pc` (the current RTCPeerConnection, replaced on every reconnect),
 * `state` ('connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed'; 'closed'
 * also before connect()), `lastError` / `lastHint` (why we are not connected, '' once
 * connected), `retryInMs`, `remoteStream` (MediaStream of the robot's tracks, a new one
 * per connection), `session` (server session id), `access` ('viewer' or 'operator': what
 * this session's token allows; null before the first answer), `stats` (last stats sample), `canSend`,
 * `health` (below), `connectedAt` (Date this connection came up, or null), `driver` (the
 * session that drives, or null), `driving` (true while that is this session), `deadmanMs`
 * (the robot's dead-man delay, from its hello), `robotTime()` (the robot's clock now, as a
 * Date; null before its hello), `talker` (the session that talks, or null), `talking` /
 * `showingCamera` (this client sends its microphone / camera), `localStream` (a
 * MediaStream of what talk() and showCamera() send, for a self-view; null when nothing).
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
 * packetsLost, lossPercent, framesDecoded, audioLevel?, estimateKbps, tier} (the last two
 * are the robot's: what it estimates this link takes, and the video tier it sends, 0 the
 * configured picture, 1 the half-size one for a thin link; null until it said),
 * `channel` {label, open},
 * `message` {channel, data} for every message from the robot's programs on any channel
 * (data is the parsed JSON, or the text if it is not JSON).
 * robocast's own notices (`"from":"robocast"` on `state`) are events of their own:
 * `hello` {session, driver, talker, deadmanMs, timeMs, version} when `state` opens;
 * `driver` {session, you} when the seat changes hands (session null: nobody drives);
 * `deadman` {session, silentMs, reason, you} when the robot was told to stop;
 * `talker` {session, you} when the talker seat changes hands (session null: nobody talks);
 * `talkchange` {talking, camera, starting: {audio, video}, stream, reason} when this client
 * starts or stops sending (stream: the new localStream; reason: why it stopped, when it was
 * not asked to: the connection was lost, another session talks, the device was unplugged);
 * `robotError` {error, hint, channel, seat, talker} when robocast refused a message we sent
 * or, with seat 'talker', what we sent while another session talks;
 * `notice` (the notice itself) for a kind this client does not know.
 *
 * connect() resolves on 'connected' and rejects with a RobocastError {message, hint} on
 * 'failed' or 'closed'; the client keeps reconnecting whatever happened to that promise.
 *
 * Retry policy: a lost connection or an unreachable / overloaded server (network error,
 * 5xx, 503 viewer limit) is retried forever with backoff 1 s → 10 s. A request the server
 * rejects as wrong (other 4xx) ends in 'failed': the same offer would be rejected again.
 *
 * Sending: `send(channel, data)` returns a promise that resolves once the message is
 * handed to the channel, waiting for the channel to open (across reconnects, except on
 * `control`). A string is sent as it is (it must be JSON text already); anything else is
 * JSON-encoded. It rejects with a RobocastError saying why: not connected (closed or
 * failed), closed while waiting, a channel that was never opened, a message over 16 KiB, a
 * `control` command replaced by a newer one before it left, or the connection lost before
 * a `control` command left. `control` is unreliable and only the newest command matters,
 * so at most one waits. `send(obj)` with one object still means `send('control', obj)`.
 *
 * Driving (README "Drive the robot"): `takeControl()` asks for the driver seat (resolves
 * {driver}; rejects with a RobocastError whose `driver` names who drives, and `status`);
 * `releaseControl()` gives it back. While this session drives and the tab is visible, a
 * 20 Hz loop sends the active command on `control`, or `{"type":"heartbeat"}` when there is
 * none, so robocast's dead-man knows the link is alive. `drive(linear, angular)` (-1..1,
 * forward and left positive) makes `{"type":"drive",...}` the active command;
 * `drive(0, 0)` or `stop()` sends `{"type":"stop"}` a few times, then heartbeats;
 * `command(obj)` makes any command the active one. A tab that is hidden while driving
 * sends `{"type":"hidden"}` at once (the robot stops), forgets the active command, and
 * resumes heartbeats when it is shown again.
 *
 * Talking (README "Talk to the robot"): `talk(on = true)` sends your microphone to the
 * robot's speaker, `showCamera(on = true)` your camera to its display. Switching on takes
 * the talker seat (one session talks at a time), asks for the device and sends it; it
 * resolves {talking, camera, talker} and rejects with a RobocastError in plain words: the
 * seat is taken (`status` 409, `talker` names who talks), the page is not on https or
 * localhost, permission denied, no such device, the device in use by another program
 * (`cause` is the browser's own error). Switching off stops sending and the device, and
 * gives the seat back once neither is on. Only the senders' tracks change, never the
 * connection: the robot's picture does not blink. `levelMeter(stream, onLevel)` reports
 * the level of a stream's audio (the localStream while talking, say); `pushToTalk(button,
 * {talk, isOn})` makes a button and the t key hold-to-talk and tap-to-talk.
 *
 * Input helpers, each calling onChange({linear, angular}) when the wish changes and
 * returning a function that stops it: `keyboard(target, onChange)` (WASD and arrows;
 * space stops, with `stop: true`), `gamepad(onChange, {deadzone})` (left stick and d-pad),
 * `joystick(element, onChange, {deadzone})` (a touch joystick drawn in `element`); and
 * `isTypingOrShortcut(event)`, true for a key event your own shortcuts should leave alone.
 */

import { fetchJson, RobocastError } from './robocast-http.js';
import { Channels } from './robocast-channels.js';
import { DriverSeat } from './robocast-drive.js';
import { MediaWatch } from './robocast-media.js';
import { TalkBack } from './robocast-talk.js';

export { RobocastError } from './robocast-http.js';
export { gamepad, isTypingOrShortcut, joystick, keyboard } from './robocast-input.js';
export { levelMeter, pushToTalk } from './robocast-talk.js';

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;
const ICE_GATHER_MS = 300; // host candidates are instant; a dead STUN server must not delay us
const ICE_GATHER_HARD_MS = 2000; // ...but an offer without any candidate cannot connect
const DISCONNECT_GRACE_MS = 3000; // 'disconnected' often heals (Wi-Fi roaming); 'failed' does not
const CONNECT_TIMEOUT_MS = 15000; // answer applied but ICE never connected (UDP blocked)
// Only a connection that lived this long resets the backoff to 1 s, so a server that
// accepts and then drops us at once is not hammered every second.
const STABLE_MS = 10000;

export class RobocastClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = {
      base: '', video: 'sendrecv', audio: 'sendrecv', localStream: null,
      headers: {}, closeOnPageHide: true, channels: {}, token: '', ...options,
    };
    // Every request carries the token: the operator's drives and talks, a viewer's watches.
    if (this.options.token) {
      this.options.headers = { ...this.options.headers, Authorization: `Bearer ${this.options.token}` };
    }
    this.access = null;
    this.base = String(this.options.base || '').replace(/\/+$/, '');
    this.pc = this.session = null;
    this.state = 'closed';
    this.lastError = this.lastHint = '';
    this.retryInMs = 0;
    this.remoteStream = typeof MediaStream === 'undefined' ? null : new MediaStream();
    this.connectedAt = this.deadmanMs = null;
    // The parts of the client that live in files of their own (see the top).
    this._channels = new Channels(this);
    this._seat = new DriverSeat(this, this._channels);
    this._media = new MediaWatch(this);
    this._talk = new TalkBack(this);

    // Every await in a connection attempt is followed by a check of this counter:
    // _teardown() bumps it, which cancels whatever was still in flight.
    this._gen = 0;
    this._backoff = BACKOFF_MIN_MS;
    this._connectedAt = 0;
    this._clockOffsetMs = null; // the robot's clock minus ours
    this._timers = { retry: null, disconnect: null, connect: null };
    this._abort = null;

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
      this._media.start();
      this._attempt();
    }
    return this._settled();
  }

  /** End the session and stop reconnecting. */
  close() {
    this._channels.rejectQueued(() => true, 'closed before it was sent', 'close() was called.');
    this._teardown();
    this._media.stop();
    this._setState('closed', '', '');
  }

  /** True when the `control` channel is open. */
  get canSend() {
    return this._channels.isOpen('control');
  }

  /** The session that drives, or null. */
  get driver() {
    return this._seat.driver;
  }

  /** True while this session holds the driver seat. */
  get driving() {
    return this._seat.driving;
  }

  /** Whether the robot's media really arrives (see `health` above). */
  get health() {
    return this._media.health;
  }

  /** The last stats sample of this connection, or null. */
  get stats() {
    return this._media.stats;
  }

  /** The robot's clock now (a Date), from the offset its hello gave; null before it. */
  robotTime() {
    return this._clockOffsetMs === null ? null : new Date(Date.now() + this._clockOffsetMs);
  }

  /**
   * Send `data` on the data channel `channel`, once it is open (see "Sending" above).
   * Resolves when the message is handed to the channel; rejects with a RobocastError.
   */
  send(channel, data) {
    if (arguments.length === 1 && typeof channel !== 'string') [channel, data] = ['control', channel];
    return this._channels.send(channel, data);
  }

  // --- the driver seat (robocast-drive.js) ---------------------------------------------

  /** Ask for the driver seat. Resolves {driver}; rejects with err.driver = who drives. */
  takeControl() {
    return this._seat.take();
  }

  /** Give the driver seat back. Resolves {driver} (whoever drives now). */
  releaseControl() {
    return this._seat.release();
  }

  /** Make `{"type":"drive",linear,angular}` the active command (both -1..1); 0, 0 stops. */
  drive(linear, angular) {
    return this._seat.drive(linear, angular);
  }

  /** Send `{"type":"stop"}` now and for the next few ticks, then heartbeats. */
  stop() {
    return this._seat.stop();
  }

  /** Make `cmd` the command the drive loop repeats (null: none, heartbeats only). */
  command(cmd) {
    return this._seat.command(cmd);
  }

  // --- talk-back (robocast-talk.js) ---------------------------------------------------

  /** Send the microphone (on) or stop (off). Resolves {talking, camera, talker}. */
  talk(on = true) {
    return this._talk.turn('audio', !!on);
  }

  /** Send the camera (on) or stop (off). Resolves {talking, camera, talker}. */
  showCamera(on = true) {
    return this._talk.turn('video', !!on);
  }

  /** The session that talks, or null. */
  get talker() {
    return this._talk.talker;
  }

  get talking() {
    return !!this._talk.tracks.audio;
  }

  get showingCamera() {
    return !!this._talk.tracks.video;
  }

  /** A MediaStream of what talk() and showCamera() send now, or null. */
  get localStream() {
    return this._talk.localStream;
  }

  // --- what the robot says (robocast-channels.js hands it over) -----------------------

  _onMessage(label, raw) {
    const data = parseMessage(raw);
    if (label === 'state' && data && typeof data === 'object' && data.from === 'robocast') {
      this._onNotice(data);
    } else {
      this._emit('message', { channel: label, data });
    }
  }

  /** robocast's own notices on `state` (README "Drive the robot"). */
  _onNotice(n) {
    switch (n.type) {
      case 'hello':
        if (typeof n.session === 'string') this.session ??= n.session;
        if (Number.isFinite(n.deadman_ms)) this.deadmanMs = n.deadman_ms;
        // Off by the one-way delay of this message: fine for a clock on the page.
        if (Number.isFinite(n.time_ms)) this._clockOffsetMs = n.time_ms - Date.now();
        this._seat.set(n.driver ?? null);
        if ('talker' in n) this._talk.set(n.talker ?? null);
        this._emit('hello', { session: this.session, driver: this.driver, talker: this.talker,
          deadmanMs: this.deadmanMs, timeMs: n.time_ms ?? null, version: n.version ?? null });
        break;
      case 'driver':
        this._seat.set(n.session ?? null);
        break;
      case 'talker':
        this._talk.set(n.session ?? null);
        break;
      case 'deadman':
        this._emit('deadman', { session: n.session ?? null, silentMs: n.silent_ms ?? null,
          reason: n.reason ?? '', you: !!this.session && n.session === this.session });
        break;
      case 'error':
        if (n.seat === 'talker') this._talk.refused(n);
        this._emit('robotError', { error: n.error || '', hint: n.hint || '', channel: n.channel ?? null,
          seat: n.seat ?? null, talker: n.talker ?? null });
        break;
      default:
        this._emit('notice', n);
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
      this.access = answer.access || null;
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
    this._channels.lost();
    this.session = this.connectedAt = null;
    this._seat.set(null); // the seat is freed with the session; this stops the drive loop
    this._talk.lost(); // so is the talker seat: the microphone and camera stop
    this._media.forget();
  }

  _createPeer(iceServers, gen) {
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    const stream = new MediaStream();
    this.remoteStream = stream;

    this._addTransceiver(pc, 'video', this.options.video);
    this._addTransceiver(pc, 'audio', this.options.audio);
    this._channels.open(pc, gen);

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
        this.connectedAt = new Date();
        this._setState('connected', '', '');
        this._media.sample(); // first sample, so the first 'stats' event already has rates
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

  /** fetchJson that teardown can also cancel. */
  _request(path, init = {}) {
    const abort = new AbortController();
    this._abort = abort;
    return fetchJson(this.base + path, { ...init, headers: { ...this.options.headers, ...init.headers } }, abort);
  }

  _deleteSession(id) {
    if (!id) return;
    // keepalive lets the request outlive the page during pagehide.
    fetch(`${this.base}/api/sessions/${encodeURIComponent(id)}`, {
      method: 'DELETE', keepalive: true, headers: { ...this.options.headers },
    }).catch(() => {});
  }

  // --- helpers -------------------------------------------------------------------------

  _setState(state, error = this.lastError, hint = this.lastHint, retryInMs = 0) {
    const key = `${state}\n${error}\n${hint}\n${retryInMs}`;
    if (key === this._stateKey) return; // both ICE and connection events report 'connected'
    this._stateKey = key;
    const wasConnected = this.state === 'connected';
    Object.assign(this, { state, lastError: error, lastHint: hint, retryInMs });
    if (state === 'failed') this._channels.rejectQueued(() => true, `not connected: ${error}`, hint);
    this._emit('statechange', { state, error, hint, retryInMs });
    this._media.stateChanged(state, wasConnected, error, hint);
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

/** JSON messages become objects; anything else (text, binary) is passed through. */
function parseMessage(data) {
  try {
    return typeof data === 'string' ? JSON.parse(data) : data;
  } catch {
    return data;
  }
}
