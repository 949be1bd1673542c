/**
 * robocast-talk.js — talk-back: your microphone on the robot's speaker and your camera on
 * its display (README "Talk to the robot"; robocast.js documents talk(), showCamera() and
 * their events at its top). Part of robocast.js, which re-exports `levelMeter` and
 * `pushToTalk`: import them from '/robocast.js'.
 *
 * Every connection carries sendrecv audio and video from the start (robocast.js makes its
 * transceivers so). Talking only changes what their senders send, with replaceTrack():
 * nothing is renegotiated, so the robot's picture and sound never blink. One session talks
 * at a time: the talker seat is taken before anything is sent, and given back once
 * neither the microphone nor the camera is on.
 */

import { fetchJson, RobocastError } from './robocast-http.js';
import { isTypingOrShortcut, pageHidden } from './robocast-input.js';

const DEVICES = {
  audio: {
    noun: 'microphone',
    // What a voice on a robot's loudspeaker needs: no echo of the robot's own sound
    // (which this page may be playing), no room hiss, an even level.
    constraints: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  },
  video: {
    noun: 'camera',
    // `ideal`, so a camera that cannot do exactly this is still used; on a phone, the one
    // that faces you.
    constraints: {
      width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: { ideal: 'user' },
    },
  },
};

const INSECURE_HINT = 'Open the robot\'s page on https, or as http://localhost (for example through '
  + 'an SSH tunnel: ssh -L 8080:localhost:8080 <robot>), then try again.';

/**
 * What this client sends and who holds the talker seat. It reads the client's `pc`,
 * `session`, `state`, `base`, `options.headers` and connection generation (`_gen`), and
 * emits `talker` and `talkchange` through the client.
 */
export class TalkBack {
  constructor(client) {
    this._client = client;
    this.talker = null; // the session that holds the talker seat, or null
    this.tracks = { audio: null, video: null }; // the device track each sender sends, or null
    this.localStream = null; // a MediaStream of those tracks, new on every change; null: none
    this._queue = Promise.resolve(); // turns run one after the other, in the order asked
    this._starting = { audio: false, video: false }; // being switched on: seat, device, permission
  }

  /** True while this session holds the talker seat. */
  get you() {
    const { session } = this._client;
    return !!session && this.talker === session;
  }

  /** talk(on) for 'audio', showCamera(on) for 'video': one at a time, in order. */
  turn(kind, on) {
    const run = () => (on ? this._start(kind) : this._stop(kind, ''));
    const done = this._queue.then(run);
    this._queue = done.catch(() => {});
    return done.then(() => this._state());
  }

  /** robocast says `talker` (a session id or null) holds the seat now. */
  set(talker) {
    if (talker === this.talker) return;
    this.talker = talker;
    this._client._emit('talker', { session: talker, you: this.you });
    // robocast plays only the holder: what we send while another holds it is not heard.
    if (talker && !this.you && this._sending()) {
      this._stopAll(`${talker.slice(0, 6)} talks now`);
    }
  }

  /** robocast did not play what we sent (its `error` notice with `"seat":"talker"`). */
  refused(notice) {
    const holder = typeof notice.talker === 'string' ? notice.talker : null;
    if (holder) this.set(holder);
    const why = namingHolder(notice.error || 'robocast did not play what you sent', holder);
    if (this._sending()) this._stopAll(why);
  }

  /** The connection is gone, and with it the session and its seat: the devices go too. */
  lost() {
    if (this._sending()) {
      for (const kind of Object.keys(this.tracks)) {
        this.tracks[kind]?.stop();
        this.tracks[kind] = null;
      }
      this._changed('the connection was lost');
    }
    this.set(null);
  }

  async _start(kind) {
    if (this.tracks[kind]) return;
    const client = this._client;
    const { noun, constraints } = DEVICES[kind];
    const gen = client._gen;
    this._sender(kind); // not connected, or no way to send: say so before asking for anything
    if (!globalThis.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      throw new RobocastError(`the browser allows the ${noun} only on https pages or localhost`,
        { hint: INSECURE_HINT, retry: false });
    }
    this._starting[kind] = true;
    this._changed('');
    let track = null;
    try {
      await this._takeSeat();
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
      } catch (err) {
        throw deviceError(err, noun);
      }
      track = stream.getTracks()[0];
      if (gen !== client._gen) throw lostError();
      await this._sender(kind).replaceTrack(track);
      if (gen !== client._gen) throw lostError();
    } catch (err) {
      track?.stop();
      this._starting[kind] = false;
      if (gen === client._gen) await this._releaseIfIdle();
      this._changed('');
      throw err;
    }
    this._starting[kind] = false;
    this.tracks[kind] = track;
    // Unplugged, or its permission taken back: stop sending it, and say why.
    track.addEventListener('ended', () => {
      if (this.tracks[kind] !== track) return;
      const why = `the ${noun} stopped (unplugged, or its permission was withdrawn)`;
      this._queue = this._queue.then(() => this._stop(kind, why)).catch(() => {});
    });
    this._changed('');
  }

  async _stop(kind, reason) {
    const track = this.tracks[kind];
    if (!track) return;
    this.tracks[kind] = null;
    // Nothing more is sent from here on: the robot's speaker or display falls quiet.
    await this._findSender(kind)?.replaceTrack(null).catch(() => {});
    track.stop();
    this._changed(reason);
    await this._releaseIfIdle();
  }

  /** Stop everything at once (the seat is another's): the queue is not waited for. */
  _stopAll(reason) {
    for (const kind of Object.keys(this.tracks)) {
      const track = this.tracks[kind];
      if (!track) continue;
      this.tracks[kind] = null;
      this._findSender(kind)?.replaceTrack(null).catch(() => {});
      track.stop();
    }
    this._changed(reason);
  }

  async _takeSeat() {
    const { res, body } = await this._request('POST');
    if ('talker' in body) this.set(body.talker ?? null);
    if (res.ok) return;
    const holder = typeof body.talker === 'string' ? body.talker : null;
    const why = namingHolder(body.error || `taking the talker seat failed (HTTP ${res.status})`, holder);
    const err = new RobocastError(why, {
      hint: body.hint || (holder ? 'One person talks at a time; try again when they stop.' : ''), retry: false,
    });
    err.status = res.status;
    err.talker = holder;
    throw err;
  }

  /** Give the seat back once nothing is sent. A failure does not matter: robocast frees
   * the seat by itself about a second after the media stops. */
  async _releaseIfIdle() {
    if (this._sending() || this._starting.audio || this._starting.video || !this.you) return;
    try {
      const { body } = await this._request('DELETE');
      if ('talker' in body) this.set(body.talker ?? null);
    } catch {
      // not connected any more: the seat went with the session
    }
  }

  async _request(method) {
    const { session, state, base, options } = this._client;
    if (!session || state !== 'connected') throw notConnected();
    const path = `/api/sessions/${encodeURIComponent(session)}/talker`;
    return fetchJson(base + path, { method, headers: { ...options.headers } });
  }

  /** The current connection's sender for `kind`, if that connection can send it. */
  _sender(kind) {
    const { pc, state } = this._client;
    if (!pc || state !== 'connected') throw notConnected();
    const t = this._transceiver(kind);
    if (!t) {
      throw new RobocastError(`this client sends no ${kind}`, {
        hint: `Create it with new RobocastClient({ ${kind}: 'sendrecv' }).`, retry: false,
      });
    }
    if (t.currentDirection !== 'sendrecv' && t.currentDirection !== 'sendonly') {
      throw new RobocastError(`the robot does not take your ${DEVICES[kind].noun}`, {
        hint: `Its answer refused ${kind} from the browser: it may have no `
          + `${kind === 'audio' ? 'speaker' : 'display'}, or be an older robocast.`,
        retry: false,
      });
    }
    return t.sender;
  }

  _findSender(kind) {
    return this._transceiver(kind)?.sender ?? null;
  }

  _transceiver(kind) {
    const pc = this._client.pc;
    if (!pc || pc.signalingState === 'closed') return null;
    return pc.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === kind
      && t.direction !== 'recvonly' && t.direction !== 'inactive') ?? null;
  }

  _sending() {
    return !!(this.tracks.audio || this.tracks.video);
  }

  _state() {
    return { talking: !!this.tracks.audio, camera: !!this.tracks.video, talker: this.talker };
  }

  /** Emit `talkchange` with a new localStream; `reason` says why it stopped, if it did. */
  _changed(reason) {
    const tracks = Object.values(this.tracks).filter(Boolean);
    this.localStream = tracks.length && typeof MediaStream !== 'undefined' ? new MediaStream(tracks) : null;
    this._client._emit('talkchange', {
      ...this._state(), starting: { ...this._starting }, stream: this.localStream, reason,
    });
  }
}

/**
 * The level of the audio in `source` (a MediaStream or an audio MediaStreamTrack), as
 * onLevel(rms) every `intervalMs`: the root mean square of the samples, 0 (silence) to 1
 * (full scale); speech is around 0.01 to 0.3. Returns a function that stops it.
 */
export function levelMeter(source, onLevel, { intervalMs = 50 } = {}) {
  const Context = globalThis.AudioContext || globalThis.webkitAudioContext;
  const stream = source instanceof MediaStream ? source : new MediaStream([source]);
  if (!Context || !stream.getAudioTracks().length) return () => {};
  const context = new Context();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024; // about 21 ms at 48 kHz
  // An analyser with no output is still pulled, so nothing is played back.
  context.createMediaStreamSource(stream).connect(analyser);
  context.resume?.().catch(() => {}); // created outside a user gesture, it may start suspended
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    onLevel(Math.sqrt(sum / samples.length));
  }, intervalMs);
  return () => {
    clearInterval(timer);
    context.close().catch(() => {});
  };
}

/**
 * Hold-to-talk and tap-to-talk on `element` (a button) and on `key` held down: a press
 * calls talk(true); its release calls talk(false) if it came `tapMs` or more later (held),
 * and leaves talking on otherwise (tapped). A press while isOn() is true calls talk(false).
 * Enter on the focused button toggles. Keys in text fields, with Ctrl, Alt or Meta, or
 * while a dialog is open are left alone; what is held counts as released when the page
 * loses focus or is hidden. Returns a function that stops listening.
 */
export function pushToTalk(element, { talk, isOn, key = 't', tapMs = 300 }) {
  let pressedAt = null; // the press that switched talking on, until it is released
  const press = () => {
    if (element.disabled) return;
    if (isOn()) {
      pressedAt = null; // this press switches it off, and its release does nothing
      talk(false);
    } else {
      pressedAt = performance.now();
      talk(true);
    }
  };
  const release = () => {
    if (pressedAt === null) return;
    const held = performance.now() - pressedAt >= tapMs;
    pressedAt = null;
    if (held) talk(false);
  };
  const isKey = (e) => e.key?.toLowerCase() === key;
  const listeners = [
    [element, 'pointerdown', (e) => {
      if (e.button !== 0) return;
      element.setPointerCapture?.(e.pointerId); // the release comes here, even off the button
      press();
    }],
    [element, 'pointerup', release],
    [element, 'pointercancel', release],
    // Enter, or a screen reader's activation (no pointer: detail 0): a toggle.
    [element, 'click', (e) => e.detail === 0 && !element.disabled && talk(!isOn())],
    [element, 'contextmenu', (e) => e.preventDefault()], // a long press on a phone
    [window, 'keydown', (e) => {
      if (!isKey(e) || e.repeat || isTypingOrShortcut(e) || document.querySelector('dialog[open]')) return;
      e.preventDefault();
      press();
    }],
    [window, 'keyup', (e) => isKey(e) && release()],
    [window, 'blur', release],
    [document, 'visibilitychange', () => pageHidden() && release()],
  ];
  for (const [target, name, handler] of listeners) target.addEventListener(name, handler);
  return () => {
    for (const [target, name, handler] of listeners) target.removeEventListener(name, handler);
  };
}

/** A getUserMedia failure in plain words, with what to do. */
function deviceError(err, noun) {
  const say = (message, hint) => {
    const e = new RobocastError(message, { hint, retry: false });
    e.cause = err; // the browser's own error; its name (NotAllowedError, ...) says which case
    return e;
  };
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return say(`permission to use the ${noun} was denied`,
        `Allow the ${noun} for this site (the icon at the left of the address bar, or the site's `
        + 'settings), then try again. If it is allowed there, your system may keep the browser from it.');
    case 'NotFoundError':
    case 'OverconstrainedError':
      return say(`no ${noun} was found`, `Plug a ${noun} in, or check that your system sees it, then try again.`);
    case 'NotReadableError':
    case 'AbortError':
      return say(`the ${noun} is in use by another program`,
        `Close the program (or the other tab) that uses it, then try again.`);
    default:
      return say(`the ${noun} could not be opened: ${err?.message || err}`, 'Try again, or try another browser.');
  }
}

/** `message`, saying who talks if it does not already. */
function namingHolder(message, holder) {
  return holder && !message.includes(holder) ? `${message} (${holder.slice(0, 6)} talks)` : message;
}

const notConnected = () => new RobocastError('not connected',
  { hint: 'Wait until the robot is connected.', retry: false });

const lostError = () => new RobocastError('the connection was lost',
  { hint: 'Try again once it is back.', retry: false });
