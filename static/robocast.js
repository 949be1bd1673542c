/**
 * robocast.js — browser client for a robocast robot (ES module, no dependencies).
 *
 * Usage in your own page (served by robocast at `/robocast.js`):
 *
 *   <video id="v" autoplay playsinline muted></video>
 *   <script type="module">
 *     import { RobocastClient, keyboard } from '/robocast.js';
 *     const robot = new RobocastClient();     // or { base: 'https://robot.local:8443' }
 *     robot.addEventListener('track', () => { v.srcObject = robot.remoteStream; });
 *     robot.addEventListener('statechange', () => console.log(robot.state, robot.lastError));
 *     robot.addEventListener('health', (e) => console.log(e.detail.ok ? 'live' : e.detail.problem));
 *     robot.addEventListener('stats', (e) => console.log(e.detail.fps, 'fps'));
 *     robot.addEventListener('message', (e) => console.log(e.detail.channel, e.detail.data));
 *     robot.addEventListener('driver', (e) => console.log(e.detail.you ? 'you drive' : e.detail.session));
 *     robot.connect().catch(() => {});        // reconnects by itself
 *     keyboard(window, ({ linear, angular }) => robot.drive(linear, angular));
 *     button.onclick = () => robot.takeControl().catch((err) => alert(`${err.message}\n${err.hint}`));
 *   </script>
 *
 * Options: `base` (server origin, default same origin), `video` / `audio` ('recvonly',
 * 'sendrecv', 'sendonly' or false to leave the kind out), `localStream` (the MediaStream
 * whose tracks are sent when a direction sends), `headers` (extra HTTP headers),
 * `closeOnPageHide` (default true: end the server session when the tab goes away),
 * `channels` (data channels to open besides `control` and `state`: an object of label →
 * RTCDataChannelInit, e.g. `{ default: {} }` for RTCBot's).
 *
 * Properties: `pc` (the current RTCPeerConnection, replaced on every reconnect),
 * `state` ('connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed'; 'closed'
 * also before connect()), `lastError` / `lastHint` (why we are not connected, '' once
 * connected), `retryInMs`, `remoteStream` (MediaStream of the robot's tracks, a new one
 * per connection), `session` (server session id), `stats` (last stats sample), `canSend`,
 * `health` (below), `connectedAt` (Date this connection came up, or null), `driver` (the
 * session that drives, or null), `driving` (true while that is this session), `deadmanMs`
 * (the robot's dead-man delay, from its hello), `robotTime()` (the robot's clock now, as a
 * Date; null before its hello).
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
 * packetsLost, lossPercent, framesDecoded, audioLevel?}, `channel` {label, open},
 * `message` {channel, data} for every message from the robot's programs on any channel
 * (data is the parsed JSON, or the text if it is not JSON).
 * robocast's own notices (`"from":"robocast"` on `state`) are events of their own:
 * `hello` {session, driver, deadmanMs, timeMs, version} when the `state` channel opens;
 * `driver` {session, you} when the seat changes hands (session null: nobody drives);
 * `deadman` {session, silentMs, reason, you} when the robot was told to stop;
 * `robotError` {error, hint, channel} when robocast refused a message we sent;
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
 * Input helpers, each calling onChange({linear, angular}) when the wish changes and
 * returning a function that stops it: `keyboard(target, onChange)` (WASD and arrows;
 * space stops, with `stop: true`), `gamepad(onChange, {deadzone})` (left stick and d-pad),
 * `joystick(element, onChange, {deadzone})` (a touch joystick drawn in `element`); and
 * `isTypingOrShortcut(event)`, true for a key event your own shortcuts should leave alone.
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
const MAX_MESSAGE_BYTES = 16 * 1024; // robocast refuses larger data channel messages
const DRIVE_INTERVAL_MS = 50; // 20 Hz: well inside the robot's dead-man delay (300 ms by default)
const STOP_REPEATS = 3; // `control` has no retransmits: a lost stop is sent again
// A `control` command waits while more than this is unsent: piling up old commands would
// only delay the newest.
const CONTROL_BACKLOG_BYTES = 1024;
const HEARTBEAT = JSON.stringify({ type: 'heartbeat' });
const STOP = JSON.stringify({ type: 'stop' });
const HIDDEN = JSON.stringify({ type: 'hidden' });

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
      headers: {}, closeOnPageHide: true, channels: {}, ...options,
    };
    this.base = String(this.options.base || '').replace(/\/+$/, '');
    this.pc = this.session = this.stats = null;
    this.state = 'closed';
    this.lastError = this.lastHint = '';
    this.retryInMs = 0;
    this.health = { ok: false, cause: 'connection', problem: '', hint: '', media: null };
    this.remoteStream = typeof MediaStream === 'undefined' ? null : new MediaStream();
    this.connectedAt = this.driver = this.deadmanMs = null;

    // Every await in a connection attempt is followed by a check of this counter:
    // _teardown() bumps it, which cancels whatever was still in flight.
    this._gen = 0;
    this._backoff = BACKOFF_MIN_MS;
    this._connectedAt = 0;
    this._channels = Object.create(null); // label → RTCDataChannel, of the current connection
    // label → messages waiting for their channel: [{text, resolve, reject}]
    this._queues = new Map();
    this._command = null; // what the drive loop repeats (JSON text), null: heartbeats
    this._stopsLeft = 0;
    this._clockOffsetMs = null; // the robot's clock minus ours
    this._timers = { retry: null, disconnect: null, connect: null, stats: null, health: null, drive: null };
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
    if (typeof document !== 'undefined') {
      document.addEventListener('visibilitychange', () => this._onVisibility());
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
    this._rejectQueued(() => true, 'closed before it was sent', 'close() was called.');
    this._teardown();
    clearInterval(this._timers.stats);
    clearInterval(this._timers.health);
    this._timers.stats = this._timers.health = null;
    this._setState('closed', '', '');
  }

  /** True when the `control` channel is open. */
  get canSend() {
    return this._isOpen('control');
  }

  /** True while this session holds the driver seat. */
  get driving() {
    return !!this.session && this.driver === this.session;
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
    return new Promise((resolve, reject) => {
      const refuse = (why, hint = '') => reject(new RobocastError(why, { hint, retry: false }));
      if (this.state === 'closed' || this.state === 'failed'
        || (channel === 'control' && this.state === 'reconnecting')) {
        return refuse('not connected', this.lastError || 'Call connect() first.');
      }
      if (!this._labels().has(channel)) {
        return refuse(`the channel '${channel}' was never opened`,
          `Ask for it when creating the client: new RobocastClient({ channels: { '${channel}': {} } }).`);
      }
      let text;
      try {
        text = typeof data === 'string' ? data : JSON.stringify(data);
      } catch (err) {
        return refuse(`the message cannot be sent as JSON: ${err.message}`);
      }
      if (text === undefined) return refuse('there is nothing to send');
      const bytes = new TextEncoder().encode(text).length;
      if (bytes > MAX_MESSAGE_BYTES) {
        return refuse(`the message is ${bytes} bytes, over the 16 KiB robocast allows`,
          'Split it, or send a reference to the data instead.');
      }
      let queue = this._queues.get(channel);
      if (!queue) this._queues.set(channel, (queue = []));
      if (channel === 'control') {
        for (const old of queue.splice(0)) {
          old.reject(new RobocastError('replaced by a newer command before it was sent', { retry: false }));
        }
      }
      queue.push({ text, resolve, reject });
      this._flush(channel);
    });
  }

  // --- the driver seat ----------------------------------------------------------------

  /** Ask for the driver seat. Resolves {driver}; rejects with err.driver = who drives. */
  async takeControl() {
    const { res, body } = await this._seat('POST');
    if ('driver' in body) this._setDriver(body.driver ?? null);
    if (res.ok) return { driver: this.driver };
    const err = new RobocastError(body.error || `taking control failed (HTTP ${res.status})`,
      { hint: body.hint || '', retry: false });
    err.status = res.status;
    err.driver = body.driver ?? null;
    throw err;
  }

  /** Give the driver seat back. Resolves {driver} (whoever drives now). */
  async releaseControl() {
    if (!this.session) return { driver: this.driver };
    // After the release robocast forwards nothing more from us: stop the robot first.
    if (this.driving && (this._command || this._stopsLeft)) this._transmit('control', STOP);
    this._command = null;
    this._stopsLeft = 0;
    const { res, body } = await this._seat('DELETE');
    if ('driver' in body) this._setDriver(body.driver ?? null);
    if (res.ok) return { driver: this.driver };
    throw new RobocastError(body.error || `releasing control failed (HTTP ${res.status})`,
      { hint: body.hint || '', retry: false });
  }

  /** Make `{"type":"drive",linear,angular}` the active command (both -1..1); 0, 0 stops. */
  drive(linear, angular) {
    const l = clampUnit(linear);
    const a = clampUnit(angular);
    if (!l && !a) return this.stop();
    return this.command({ type: 'drive', linear: l, angular: a });
  }

  /** Send `{"type":"stop"}` now and for the next few ticks, then heartbeats. */
  stop() {
    this._command = null;
    this._stopsLeft = STOP_REPEATS;
    if (this._timers.drive) this._driveTick();
  }

  /** Make `cmd` the command the drive loop repeats (null: none, heartbeats only). */
  command(cmd) {
    this._command = cmd == null ? null : JSON.stringify(cmd);
    this._stopsLeft = 0;
    if (this._timers.drive) this._driveTick(); // at once, not up to 50 ms later
  }

  async _seat(method) {
    if (!this.session || this.state !== 'connected') {
      throw new RobocastError('not connected', { hint: 'Wait until the robot is connected.', retry: false });
    }
    const path = `/api/sessions/${encodeURIComponent(this.session)}/driver`;
    return fetchJson(this.base + path, { method, headers: { ...this.options.headers } });
  }

  _setDriver(driver) {
    if (driver === this.driver) return;
    this.driver = driver;
    this._emit('driver', { session: driver, you: this.driving });
    this._updateDriveLoop();
  }

  /** The 20 Hz loop runs while this session drives and the tab is visible. */
  _updateDriveLoop() {
    const run = this.driving && !pageHidden();
    if (run && !this._timers.drive) {
      this._timers.drive = setInterval(() => this._driveTick(), DRIVE_INTERVAL_MS);
      this._driveTick();
    } else if (!run && this._timers.drive) {
      clearInterval(this._timers.drive);
      this._timers.drive = null;
    }
  }

  _driveTick() {
    let text = this._command;
    if (!text && this._stopsLeft > 0) {
      this._stopsLeft--;
      text = STOP;
    }
    this._transmit('control', text || HEARTBEAT);
  }

  _onVisibility() {
    if (pageHidden() && this.driving) {
      // The robot stops at once instead of after the dead-man delay; whatever was held
      // down when the tab went away is not held any more.
      this._transmit('control', HIDDEN);
      this._command = null;
      this._stopsLeft = 0;
    }
    this._updateDriveLoop();
  }

  // --- data channels ------------------------------------------------------------------

  /** Every label send() accepts now: ours, the options', and any the robot opened. */
  _labels() {
    return new Set(['control', 'state', ...Object.keys(this.options.channels || {}),
      ...Object.keys(this._channels)]);
  }

  _isOpen(label) {
    return this._channels[label]?.readyState === 'open';
  }

  /** Hand what waits for `label` to its channel, if it is open. */
  _flush(label) {
    const queue = this._queues.get(label);
    const ch = this._channels[label];
    while (queue?.length && this._isOpen(label)) {
      if (label === 'control' && ch.bufferedAmount > CONTROL_BACKLOG_BYTES) return; // bufferedamountlow
      const { text, resolve, reject } = queue.shift();
      try {
        ch.send(text);
        resolve();
      } catch (err) {
        reject(new RobocastError(`the '${label}' channel refused the message: ${err.message}`));
      }
    }
  }

  /** Send now if the channel is open; the drive loop's way (nothing of it is worth a wait). */
  _transmit(label, text) {
    const ch = this._channels[label];
    if (!this._isOpen(label) || (label === 'control' && ch.bufferedAmount > CONTROL_BACKLOG_BYTES)) return;
    try {
      ch.send(text);
    } catch {
      // closing under our feet: the next tick or the next connection carries on
    }
  }

  _rejectQueued(which, why, hint = '') {
    for (const [label, queue] of this._queues) {
      if (!which(label)) continue;
      for (const { reject } of queue.splice(0)) reject(new RobocastError(why, { hint, retry: false }));
    }
  }

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
        this._setDriver(n.driver ?? null);
        this._emit('hello', { session: this.session, driver: this.driver, deadmanMs: this.deadmanMs,
          timeMs: n.time_ms ?? null, version: n.version ?? null });
        break;
      case 'driver':
        this._setDriver(n.session ?? null);
        break;
      case 'deadman':
        this._emit('deadman', { session: n.session ?? null, silentMs: n.silent_ms ?? null,
          reason: n.reason ?? '', you: !!this.session && n.session === this.session });
        break;
      case 'error':
        this._emit('robotError', { error: n.error || '', hint: n.hint || '', channel: n.channel ?? null });
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
    // Those waiting for a channel the next connection will open again keep waiting; a
    // control command is for this connection only.
    const reopened = new Set(['state', ...Object.keys(this.options.channels || {})]);
    this._rejectQueued((label) => !reopened.has(label), 'the connection was lost before it was sent',
      'Send it again once connected.');
    this._channels = Object.create(null);
    this.session = this.connectedAt = null;
    this._setDriver(null); // the seat is freed with the session; this stops the drive loop
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
    for (const [label, init] of Object.entries(this.options.channels || {})) {
      if (label !== 'control' && label !== 'state') this._adoptChannel(pc.createDataChannel(label, init || {}), gen);
    }
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
    // Keep ours unless the server opens its own with the same label: the open one wins.
    if (!this._channels[label]) this._channels[label] = ch;
    if (label === 'control') {
      ch.bufferedAmountLowThreshold = CONTROL_BACKLOG_BYTES;
      ch.addEventListener('bufferedamountlow', () => {
        if (gen === this._gen && this._channels[label] === ch) this._flush(label);
      });
    }
    ch.addEventListener('open', () => {
      if (gen !== this._gen) return;
      this._channels[label] = ch;
      this._emit('channel', { label, open: true });
      this._flush(label);
    });
    ch.addEventListener('close', () => {
      if (gen === this._gen && this._channels[label] === ch) this._emit('channel', { label, open: false });
    });
    ch.addEventListener('message', (e) => {
      if (gen === this._gen) this._onMessage(label, e.data);
    });
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
    if (state === 'failed') this._rejectQueued(() => true, `not connected: ${error}`, hint);
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

/**
 * fetch with a timeout (or `abort`); parses a JSON body if any. Any failure to get an
 * answer is a RobocastError 'the robot is not answering'.
 */
async function fetchJson(url, init, abort = new AbortController()) {
  const timer = setTimeout(() => abort.abort(), HTTP_TIMEOUT_MS);
  try {
    const res = await fetch(url, { ...init, signal: abort.signal });
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

const pageHidden = () => typeof document !== 'undefined' && document.visibilityState === 'hidden';

const clampUnit = (x) => Math.max(-1, Math.min(1, Number(x) || 0));

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

// --- input helpers: what the driver wants, as {linear, angular} in -1..1 ------------------

const KEY_WISH = {
  KeyW: [1, 0], ArrowUp: [1, 0], KeyS: [-1, 0], ArrowDown: [-1, 0],
  KeyA: [0, 1], ArrowLeft: [0, 1], KeyD: [0, -1], ArrowRight: [0, -1],
};
// For keyboards that report no `code` (some on-screen ones).
const KEY_CODE = { w: 'KeyW', a: 'KeyA', s: 'KeyS', d: 'KeyD', ' ': 'Space' };

/** True for a key event that belongs to a text field, or to a browser shortcut. */
export function isTypingOrShortcut(e) {
  const t = e.target;
  return e.ctrlKey || e.altKey || e.metaKey || !!t?.isContentEditable
    || /^(INPUT|TEXTAREA|SELECT)$/.test(t?.tagName || '');
}

/** Calls onChange with a copy of each new {linear, angular}, once per change. */
function reporter(onChange) {
  let last = { linear: 0, angular: 0 };
  return (linear, angular, extra = {}) => {
    const next = { linear: round2(linear), angular: round2(angular) };
    if (next.linear === last.linear && next.angular === last.angular && !extra.stop) return;
    last = next;
    onChange({ ...next, ...extra });
  };
}

/**
 * WASD and the arrow keys on `target` (window, say): W/↑ forward, S/↓ back, A/← left,
 * D/→ right, space stops (with `stop: true`). Keys in text fields and with Ctrl, Alt or
 * Meta are left alone. Held keys count as released when the tab is hidden or loses focus.
 * Returns a function that stops listening.
 */
export function keyboard(target, onChange) {
  const held = new Set();
  const report = reporter(onChange);
  const update = () => {
    let linear = 0;
    let angular = 0;
    for (const code of held) {
      linear += KEY_WISH[code][0];
      angular += KEY_WISH[code][1];
    }
    report(clampUnit(linear), clampUnit(angular));
  };
  const codeOf = (e) => e.code || KEY_CODE[e.key?.toLowerCase()] || e.key;
  const down = (e) => {
    if (isTypingOrShortcut(e)) return;
    const code = codeOf(e);
    if (code === 'Space') {
      e.preventDefault(); // and no click on a focused button: space is the brake here
      held.clear();
      report(0, 0, { stop: true });
    } else if (KEY_WISH[code]) {
      e.preventDefault(); // arrows would scroll
      held.add(code);
      update();
    }
  };
  const up = (e) => {
    const code = codeOf(e);
    if (code === 'Space' && !isTypingOrShortcut(e)) e.preventDefault();
    if (held.delete(code)) update();
  };
  const release = () => {
    held.clear();
    update();
  };
  const onVisibility = () => {
    if (pageHidden()) release();
  };
  target.addEventListener('keydown', down);
  target.addEventListener('keyup', up);
  window.addEventListener('blur', release);
  document.addEventListener('visibilitychange', onVisibility);
  return () => {
    target.removeEventListener('keydown', down);
    target.removeEventListener('keyup', up);
    window.removeEventListener('blur', release);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}

/**
 * The first connected gamepad's left stick (and d-pad, on the standard mapping), polled
 * each animation frame while a gamepad is connected. Browsers show a gamepad to the page
 * only after one of its buttons is pressed. Returns a function that stops polling.
 */
export function gamepad(onChange, { deadzone = 0.15 } = {}) {
  const report = reporter(onChange);
  let frame = 0;
  const poll = () => {
    frame = 0;
    let pads = [];
    try {
      pads = navigator.getGamepads?.() || [];
    } catch {
      // a SecurityError where the browser keeps gamepads from pages on plain http
    }
    const pad = [...pads].find((p) => p?.connected);
    if (!pad) return report(0, 0); // wait for the next gamepadconnected
    let [x = 0, y = 0] = pad.axes;
    if (pad.mapping === 'standard') {
      const pressed = (i) => (pad.buttons[i]?.pressed ? 1 : 0);
      x += pressed(15) - pressed(14);
      y += pressed(13) - pressed(12);
    }
    const [linear, angular] = deadzoned(-y, -x, deadzone);
    report(linear, angular);
    frame = requestAnimationFrame(poll);
  };
  const start = () => {
    if (!frame) frame = requestAnimationFrame(poll);
  };
  window.addEventListener('gamepadconnected', start);
  window.addEventListener('gamepaddisconnected', start);
  start();
  return () => {
    cancelAnimationFrame(frame);
    frame = 0;
    window.removeEventListener('gamepadconnected', start);
    window.removeEventListener('gamepaddisconnected', start);
  };
}

/**
 * A touch joystick in `element` (pointer events, so a mouse works too): push the knob
 * (the element's `.knob` child, made if missing) up to drive forward, sideways to turn;
 * let go and it returns to the centre, which stops. `data-active` is set while held.
 * Returns a function that stops listening.
 */
export function joystick(element, onChange, { deadzone = 0.1 } = {}) {
  const report = reporter(onChange);
  let knob = element.querySelector('.knob');
  if (!knob) {
    knob = document.createElement('span');
    knob.className = 'knob';
    element.append(knob);
  }
  element.style.touchAction = 'none'; // no scrolling or zooming while driving
  let pointer = null;
  const place = (dx, dy, radius) => {
    knob.style.transform = `translate(${dx * radius * 0.6}px, ${dy * radius * 0.6}px)`;
  };
  const move = (e) => {
    if (e.pointerId !== pointer) return;
    const r = element.getBoundingClientRect();
    const radius = Math.min(r.width, r.height) / 2 || 1;
    let dx = (e.clientX - r.left - r.width / 2) / radius;
    let dy = (e.clientY - r.top - r.height / 2) / radius;
    const length = Math.hypot(dx, dy);
    if (length > 1) [dx, dy] = [dx / length, dy / length];
    place(dx, dy, radius);
    const [linear, angular] = deadzoned(-dy, -dx, deadzone);
    report(linear, angular);
  };
  const down = (e) => {
    if (pointer !== null) return;
    pointer = e.pointerId;
    element.setPointerCapture?.(pointer);
    element.dataset.active = '';
    e.preventDefault();
    move(e);
  };
  const up = (e) => {
    if (e.pointerId !== pointer) return;
    pointer = null;
    delete element.dataset.active;
    place(0, 0, 0);
    report(0, 0);
  };
  const events = { pointerdown: down, pointermove: move, pointerup: up, pointercancel: up, lostpointercapture: up };
  for (const [name, handler] of Object.entries(events)) element.addEventListener(name, handler);
  return () => {
    for (const [name, handler] of Object.entries(events)) element.removeEventListener(name, handler);
  };
}

/** A stick's (a, b) with a round dead zone, rescaled so just outside it is near 0. */
function deadzoned(a, b, deadzone) {
  const length = Math.hypot(a, b);
  if (length <= deadzone) return [0, 0];
  const scale = Math.min(1, (length - deadzone) / (1 - deadzone)) / length;
  return [clampUnit(a * scale), clampUnit(b * scale)];
}

const round2 = (x) => Math.round(x * 100) / 100 || 0; // `|| 0`: no -0 in the JSON
