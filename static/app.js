// The robocast robot console: connect on load, show the robot's video and sound, say what
// is wrong when the picture is not live (the connection, or the robot's own health), drive
// the robot (the driver seat; keyboard, gamepad or touch joystick), the robot's messages
// in a console, talk through the robot (your microphone on its speaker, your camera on its
// display), a clock, live stats, help, shortcuts and fullscreen. All WebRTC, driving and
// talking work lives in robocast.js; this file only wires the client to the DOM.

import {
  RobocastClient, gamepad, isTypingOrShortcut, joystick, keyboard, levelMeter, pushToTalk,
} from './robocast.js';

const $ = (id) => document.getElementById(id);
const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const video = $('video');
const stage = $('stage');
const statusLine = $('status');
const overlay = $('overlay');
const soundButton = $('sound');
const statsPanel = $('stats');
const driveButton = $('drive');
const consolePanel = $('console');
const joystickPad = $('joystick');
const help = $('help');

// The token comes once in the address (#token=...), is kept by this browser for this
// robot and leaves the address bar at once, so it is not bookmarked or shared by mistake.
const TOKEN_KEY = 'robocast-token';
function takeToken() {
  const given = new URLSearchParams(location.hash.slice(1)).get('token');
  if (given !== null) {
    try { if (given) localStorage.setItem(TOKEN_KEY, given); else localStorage.removeItem(TOKEN_KEY); } catch {}
    history.replaceState(null, '', location.pathname + location.search);
    return given;
  }
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}
const token = takeToken();
// Only an operator's token drives and talks; say so instead of offering buttons that fail.
const OPERATOR_ONLY = 'Needs the operator token: open this page with #token=<operator token> '
  + '(robocast logs the link on its first start; the token is in operator-token in its state directory)';
const isViewer = () => client.access === 'viewer';

// sendrecv from the start, so that talking later only swaps what the senders send.
const client = new RobocastClient({ video: 'sendrecv', audio: 'sendrecv', token });
// For automated tests and the console. client.pc is replaced on each reconnect, so
// window.robocast.pc is always the current peer connection.
window.robocast = client;

// --- media -----------------------------------------------------------------------------

client.addEventListener('track', () => {
  // Each connection brings a new MediaStream; re-attach once, then keep playing.
  if (video.srcObject !== client.remoteStream) video.srcObject = client.remoteStream;
  // Muted autoplay is normally allowed, but power-saving modes can still refuse it;
  // the sound button calls play() again from a user gesture.
  video.play().catch(() => {});
});

// --- sound: browsers only autoplay muted, so the first tap unlocks audio ---------------
// The button lives in the controls, never over the picture: it can neither hide a black
// screen's explanation nor catch the double-click that toggles fullscreen.

let soundUnlocked = false;

soundButton.addEventListener('click', () => {
  if (soundUnlocked && !video.muted) {
    video.muted = true;
    return renderSound();
  }
  // play() runs inside the click, which is what lets the browser play sound. Its promise
  // only settles once media flows, so the button flips at once and reverts on refusal.
  soundUnlocked = true;
  video.muted = false;
  video.play().catch((err) => {
    // AbortError only means a reconnect swapped the stream mid-play: not a refusal.
    if (err.name !== 'NotAllowedError') return;
    soundUnlocked = false;
    video.muted = true;
    renderSound();
  });
  renderSound();
});

// Media keys and the native controls in fullscreen can change muting too.
video.addEventListener('volumechange', () => renderSound());

function renderSound() {
  const audible = soundUnlocked && !video.muted;
  soundButton.classList.toggle('locked', !soundUnlocked);
  soundButton.querySelector('.label').textContent = audible ? 'Mute' : 'Unmute';
  soundButton.querySelector('use').setAttribute('href', audible ? '#i-sound-on' : '#i-sound-off');
  soundButton.setAttribute('aria-pressed', String(audible));
  soundButton.title = audible ? 'Mute the robot' : 'Hear the robot';
}

// --- what the page says: the connection, then whether media really arrives -----------

const STATE_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  failed: 'Connection failed',
  closed: 'Disconnected',
};

client.addEventListener('statechange', render);
// A kept token the robot no longer takes (it was changed): forget it, so that reloading
// the page watches again when viewing is open; the error on the page says what to do.
client.addEventListener('statechange', () => {
  if (token && / 401\)$/.test(client.lastError)) {
    try { localStorage.removeItem(TOKEN_KEY); } catch {}
  }
});
client.addEventListener('health', render);
client.addEventListener('statechange', () => {
  if (client.state !== 'connected') heardHello = false;
  renderSeat();
  renderTalk();
  logState();
});

/** The status line's words and the card over the picture: {status, title, error, hint}. */
function describe() {
  const { state, lastError, lastHint, retryInMs, health } = client;
  if (state !== 'connected') {
    let title = STATE_TEXT[state] || state;
    if (state === 'reconnecting' && retryInMs) title = `Reconnecting in ${Math.round(retryInMs / 1000)} s…`;
    const error = lastError ? capitalise(lastError) : '';
    const status = lastError ? `${title.replace(/…$/, '')}: ${lastError}` : title;
    return { status, title, error, hint: capitalise(lastHint) };
  }
  const media = health.media === 'audio' ? 'sound' : 'picture';
  switch (health.cause) {
    case 'ok':
      if (health.media === 'video') return { status: 'Live' };
      if (health.media === 'audio') {
        return { status: 'Live, sound only', title: 'Sound only', error: 'This robot sends no picture.' };
      }
      return { status: 'Connected' }; // nothing to watch: a data-only connection
    case 'starting':
      return { status: `Connected, waiting for the ${media}…`, title: `Waiting for the ${media}…` };
    default: { // 'stalled', 'source', 'network'
      const nothing = `No ${media}`;
      return { status: `${nothing}: ${health.problem}`, title: nothing,
        error: capitalise(health.problem), hint: capitalise(health.hint) };
    }
  }
}

function render() {
  const { state, health } = client;
  const text = describe();
  for (const el of [statusLine, stage]) {
    el.dataset.state = state;
    el.dataset.health = health.cause;
    el.dataset.media = health.media || '';
  }
  $('state-text').textContent = text.status;
  statusLine.title = [text.status, text.hint].filter(Boolean).join('\n');

  // The card over the (frozen, black or absent) picture says why it is not live.
  overlay.hidden = !text.title;
  $('overlay-title').textContent = text.title || '';
  $('error').textContent = text.error || '';
  $('hint').textContent = text.hint || '';

  $('retry').hidden = !(state === 'reconnecting' || state === 'failed' || state === 'closed');
  if (state !== 'connected') renderStats(null); // so a new connection never shows old numbers
}

$('retry').addEventListener('click', () => client.connect().catch(() => {}));

// --- stats -----------------------------------------------------------------------------

client.addEventListener('stats', (e) => renderStats(e.detail));

function renderStats(s) {
  const dash = '–';
  $('stat-res').textContent = s && s.width ? `${s.width}×${s.height}` : dash;
  $('stat-fps').textContent = `${s ? Math.round(s.fps) : dash} fps`;
  $('stat-kbps').textContent = `${s ? s.bitrateKbps : dash} kbps`;
  $('stat-rtt').textContent = `RTT ${s && s.rttMs !== null ? s.rttMs : dash} ms`;
  $('stat-loss').textContent = `loss ${s ? s.lossPercent.toFixed(1) : dash} %`;
  // The robot's side: what it estimates this link takes, and the picture it sends for it.
  $('stat-estimate').textContent = `link ${s && s.estimateKbps !== null ? s.estimateKbps : dash} kbps`;
  const tier = s ? s.tier : null;
  $('stat-tier').textContent = tier === null || tier === undefined ? `${dash} tier` : tier === 0 ? 'top tier' : 'lower tier';
  $('stat-tier').title = tier === 1
    ? 'Your link takes less than the others: the robot sends you a smaller picture of its own'
    : 'The picture as configured';
}

$('stats-toggle').addEventListener('click', (e) => {
  statsPanel.hidden = !statsPanel.hidden;
  e.currentTarget.setAttribute('aria-pressed', String(!statsPanel.hidden));
});

// --- fullscreen ------------------------------------------------------------------------

const fullscreenButton = $('fullscreen');
const fullscreenElement = () => document.fullscreenElement || document.webkitFullscreenElement;
// The stage goes fullscreen so the status, the card and the controls come along; iPhone
// Safari can only put a <video> itself in fullscreen, with its native controls.
const canFullscreen = !!(stage.requestFullscreen || stage.webkitRequestFullscreen || video.webkitEnterFullscreen);
fullscreenButton.hidden = !canFullscreen;

function toggleFullscreen() {
  if (fullscreenElement()) {
    const exit = document.exitFullscreen || document.webkitExitFullscreen;
    Promise.resolve(exit.call(document)).catch(() => {});
  } else if (stage.requestFullscreen) {
    Promise.resolve(stage.requestFullscreen({ navigationUI: 'hide' })).catch(() => {});
  } else if (stage.webkitRequestFullscreen) {
    stage.webkitRequestFullscreen();
  } else if (video.webkitEnterFullscreen) {
    video.webkitEnterFullscreen();
  }
}

function renderFullscreen() {
  const on = !!fullscreenElement();
  fullscreenButton.querySelector('.label').textContent = on ? 'Exit fullscreen' : 'Fullscreen';
  fullscreenButton.querySelector('use').setAttribute('href', on ? '#i-exit' : '#i-enter');
  fullscreenButton.setAttribute('aria-label', on ? 'Exit fullscreen' : 'Fullscreen');
}

fullscreenButton.addEventListener('click', toggleFullscreen);
// Anywhere on the picture, problems included: the card lets clicks through.
$('screen').addEventListener('dblclick', toggleFullscreen);
for (const name of ['fullscreenchange', 'webkitfullscreenchange']) {
  document.addEventListener(name, () => {
    renderFullscreen();
    // The stage went to the top layer over the open help: show the help over it again.
    if (help.open) {
      help.close();
      help.showModal();
    }
  });
}

// --- the driver seat: one session drives, everyone sees who ---------------------------

let heardHello = false; // until robocast's hello, who drives is unknown
let seatBusy = false; // a take or release is under way
const idPrefix = (id) => String(id).slice(0, 6);

function seatState() {
  if (client.state !== 'connected' || !heardHello) return 'unknown';
  if (client.driving) return 'you';
  return client.driver ? 'other' : 'nobody';
}

function renderSeat() {
  const seat = seatState();
  const connected = client.state === 'connected';
  $('seat').dataset.seat = seat;
  stage.dataset.seat = seat;
  $('seat-text').textContent = {
    unknown: connected ? 'Asking who drives…' : 'Not connected',
    you: 'You drive',
    other: `${idPrefix(client.driver)} drives`,
    nobody: 'Nobody drives',
  }[seat];
  $('seat').title = seat === 'other' ? `Session ${client.driver} drives the robot` : 'Who drives the robot';
  driveButton.disabled = !connected || seatBusy || isViewer();
  driveButton.setAttribute('aria-pressed', String(client.driving));
  driveButton.querySelector('.label').textContent = client.driving ? 'Release' : 'Take control';
  driveButton.querySelector('use').setAttribute('href', client.driving ? '#i-release' : '#i-wheel');
  driveButton.title = client.driving ? 'Stop driving and let someone else (c)' : 'Take control of the robot (c)';
  if (isViewer()) driveButton.title = `Driving: ${OPERATOR_ONLY}`;
  renderDeck();
}

async function toggleSeat() {
  if (seatBusy || client.state !== 'connected') return;
  seatBusy = true;
  renderSeat();
  try {
    await (client.driving ? client.releaseControl() : client.takeControl());
  } catch (err) {
    const who = err.driver ? ` (${idPrefix(err.driver)} drives)` : '';
    showNotice(`${capitalise(err.message)}${who}`, err.hint);
    log('error', 'robocast', `${err.message}${who}${err.hint ? `. ${err.hint}` : ''}`);
  } finally {
    seatBusy = false;
    renderSeat();
  }
}

driveButton.addEventListener('click', toggleSeat);

client.addEventListener('hello', (e) => {
  heardHello = true;
  const { session, deadmanMs } = e.detail;
  if (deadmanMs) $('help-deadman').textContent = `${deadmanMs} ms`;
  log('notice', 'robocast', `connected as ${idPrefix(session)}; ${whoDrives()}; ${whoTalks()}`
    + (deadmanMs ? `; the robot stops after ${deadmanMs} ms without a word from its driver` : ''));
  renderSeat();
  renderTalk();
});

client.addEventListener('driver', () => {
  renderSeat();
  // Not when the connection ends: the status says that.
  if (heardHello && client.session) log(client.driving ? 'you' : 'notice', 'robocast', whoDrives());
});

function whoDrives() {
  if (client.driving) return 'you drive';
  return client.driver ? `${idPrefix(client.driver)} drives` : 'nobody drives';
}

const DEADMAN_WHY = {
  silence: (ms) => `nothing heard for ${ms} ms`,
  hidden: () => 'the tab was hidden',
  'channel closed': () => 'the control channel closed',
  link: () => 'the link dropped',
  ended: () => 'the session ended',
  released: () => 'the seat was released',
};

client.addEventListener('deadman', (e) => {
  const { session, silentMs, reason, you } = e.detail;
  const why = DEADMAN_WHY[reason]?.(silentMs) ?? reason;
  log('deadman', 'robocast', `dead-man stop: ${why} (${you ? 'you' : idPrefix(session)})`);
});

client.addEventListener('robotError', (e) => {
  const { error, hint, channel, seat } = e.detail;
  if (seat === 'talker') return; // what we sent was not played: talkchange says so
  log('error', 'robocast', `refused on ${channel || 'a channel'}: ${error}${hint ? `. ${hint}` : ''}`);
});

// --- talk-back: your voice on the robot's speaker, your camera on its display ----------
// Talk is hold-to-talk (the button or t held down) and tap-to-talk (pushToTalk). Only the
// client's senders change, never the connection: the robot's picture plays undisturbed.

const talkButton = $('talk');
const cameraButton = $('camera');
const selfView = $('self-view');
const TITLES = { audio: talkButton.title, video: cameraButton.title };
const failed = { audio: null, video: null }; // the last failure of each, until the next try
let sending = { audio: false, video: false, starting: { audio: false, video: false } };
let stopMeter = null;

async function turn(kind, on) {
  if (on) failed[kind] = null;
  renderTalk();
  try {
    await (kind === 'audio' ? client.talk(on) : client.showCamera(on));
  } catch (err) {
    failed[kind] = err;
    showNotice(capitalise(err.message), err.hint, 8000);
    log('error', 'page', `${err.message}${err.hint ? `. ${err.hint}` : ''}`);
  }
  renderTalk();
}

const isOn = (kind) => (kind === 'audio' ? client.talking : client.showingCamera) || sending.starting[kind];
const toggleCamera = () => cameraButton.disabled || turn('video', !isOn('video'));
pushToTalk(talkButton, { talk: (on) => turn('audio', on), isOn: () => isOn('audio') });
cameraButton.addEventListener('click', toggleCamera);

client.addEventListener('talkchange', (e) => {
  const { talking, camera, starting, stream, reason } = e.detail;
  const video = stream?.getVideoTracks()[0] || null;
  if (selfView.srcObject?.getVideoTracks()[0] !== video) {
    selfView.srcObject = video && new MediaStream([video]);
    if (video) selfView.play().catch(() => {});
  }
  selfView.hidden = !video;
  if (talking && !stopMeter) stopMeter = levelMeter(stream, showLevel);
  if (!talking && stopMeter) {
    stopMeter();
    stopMeter = null;
    showLevel(0);
  }
  // Stopped unasked: another session talks, the device went away. (A lost connection is
  // the status line's to say.)
  if (reason && client.state === 'connected') {
    const status = client.talker && client.talker !== client.session ? 409 : 0;
    if (sending.audio && !talking) failed.audio = { message: reason, status };
    if (sending.video && !camera) failed.video = { message: reason, status };
    showNotice(capitalise(reason), '', 8000);
    log('error', 'robocast', `stopped sending: ${reason}`);
  }
  sending = { audio: talking, video: camera, starting };
  renderTalk();
  renderDeck();
});

client.addEventListener('talker', () => {
  renderTalk();
  if (heardHello && client.session) log(client.talker === client.session ? 'you' : 'notice', 'robocast', whoTalks());
});

/** The meter under Talk: the voice's level from -50 dBFS (empty) to -6 dBFS (full). */
function showLevel(rms) {
  const fill = rms > 0 ? Math.max(0, Math.min(1, (20 * Math.log10(rms) + 50) / 44)) : 0;
  $('talk-level').style.transform = `scaleX(${fill.toFixed(3)})`;
}

function whoTalks() {
  if (client.talker === client.session) return 'you talk';
  return client.talker ? `${idPrefix(client.talker)} talks` : 'nobody talks';
}

/** off, starting, on, refused (another talks) or error: the microphone's or the camera's. */
function sendState(kind) {
  if (kind === 'audio' ? client.talking : client.showingCamera) return 'on';
  if (sending.starting[kind]) return 'starting';
  if (failed[kind]) return failed[kind].status === 409 ? 'refused' : 'error';
  return 'off';
}

const LABELS = {
  audio: { off: 'Talk', on: 'Talking', starting: 'Talk…', refused: 'Refused', error: "Can't talk" },
  video: { off: 'Show my camera', on: 'Hide my camera', starting: 'Show my camera…', refused: 'Refused',
    error: 'No camera' },
};

function renderTalk() {
  const connected = client.state === 'connected';
  for (const [kind, button] of [['audio', talkButton], ['video', cameraButton]]) {
    const state = sendState(kind);
    const err = failed[kind];
    button.disabled = !connected || isViewer();
    button.dataset.send = state;
    button.setAttribute('aria-pressed', String(state === 'on'));
    button.querySelector('.label').textContent = LABELS[kind][state];
    button.title = err ? [capitalise(err.message), err.hint].filter(Boolean).join('. ') : TITLES[kind];
    if (isViewer()) button.title = `${kind === 'audio' ? 'Talking' : 'Showing your camera'}: ${OPERATOR_ONLY}`;
  }
  let seat = 'unknown';
  if (connected && heardHello) seat = client.talker === client.session ? 'you' : client.talker ? 'other' : 'nobody';
  $('talker').dataset.seat = seat;
  $('talker-text').textContent = {
    unknown: connected ? 'Asking who talks…' : 'Not connected',
    you: 'You talk',
    other: `${idPrefix(client.talker)} talks`,
    nobody: 'Nobody talks',
  }[seat];
}

// --- driving: keyboard, gamepad or joystick, sent at 20 Hz by the client ---------------

const touchScreen = matchMedia('(any-pointer: coarse)');
// What each input wants, newest last: the newest that wants to move drives.
const wishes = new Map();
let nudgedAt = -Infinity;

function onWish(source, wish) {
  wishes.delete(source);
  if (wish.stop) wishes.clear();
  else if (wish.linear || wish.angular) wishes.set(source, wish);
  const { linear = 0, angular = 0 } = [...wishes.values()].at(-1) || {};
  client.drive(linear, angular);
  if ((linear || angular) && !client.driving && performance.now() - nudgedAt > 3000) {
    nudgedAt = performance.now();
    showNotice('You are not driving', 'Take control first (c).');
  }
}

keyboard(window, (wish) => onWish('keyboard', wish));
gamepad((wish) => onWish('gamepad', wish));
joystick(joystickPad, (wish) => onWish('joystick', wish));
touchScreen.addEventListener('change', renderDeck);

// --- the console: the robot's messages and robocast's notices, newest last ------------

const MAX_LINES = 200;
const MAX_TEXT = 500; // a 16 KiB message would fill the panel
// The same query as style.css's: until the user chooses, the console shows where the
// screen has room for it under the picture.
const roomBelowPicture = matchMedia('(max-aspect-ratio: 3/4)');
let consoleChoice = null; // the user's, once they toggle
let unread = 0;

const consoleShown = () => consoleChoice ?? roomBelowPicture.matches;

function log(kind, from, text) {
  const list = $('log');
  const atBottom = consolePanel.scrollHeight - consolePanel.scrollTop - consolePanel.clientHeight < 8;
  const at = client.robotTime() || new Date();
  const line = document.createElement('li');
  line.dataset.kind = kind;
  const time = document.createElement('time');
  time.dateTime = at.toISOString();
  time.textContent = clockTime(at);
  const source = document.createElement('span');
  source.className = 'from';
  source.textContent = from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
  line.append(time, source, body);
  list.append(line);
  while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
  if (atBottom) consolePanel.scrollTop = consolePanel.scrollHeight;
  if (!consoleShown()) {
    unread++;
    renderUnread();
  }
}

client.addEventListener('message', (e) => {
  const { channel, data } = e.detail;
  log('message', channel, typeof data === 'string' ? data : JSON.stringify(data));
});
client.addEventListener('notice', (e) => log('notice', 'robocast', JSON.stringify(e.detail)));

let loggedState = 'connecting';
function logState() {
  const { state, lastError } = client;
  if (state === loggedState) return;
  loggedState = state;
  log(state === 'connected' ? 'notice' : 'error', 'page',
    lastError ? `${STATE_TEXT[state].replace(/…$/, '')}: ${lastError}` : STATE_TEXT[state]);
}

/** The console and the joystick. style.css shows the console by data-console alone, so
 * the layout never waits for this script after the screen turns. */
function renderDeck() {
  const shown = consoleShown();
  const was = $('console-toggle').getAttribute('aria-pressed') === 'true';
  stage.dataset.console = consoleChoice === null ? 'auto' : consoleChoice ? 'shown' : 'hidden';
  $('console-toggle').setAttribute('aria-pressed', String(shown));
  if (shown) {
    if (!was) consolePanel.scrollTop = consolePanel.scrollHeight;
    unread = 0;
    renderUnread();
  }
  joystickPad.hidden = !(client.driving && touchScreen.matches);
  stage.dataset.joystick = joystickPad.hidden ? 'hidden' : 'shown';
  stage.dataset.selfView = selfView.hidden ? 'hidden' : 'shown';
}

function renderUnread() {
  const badge = $('unread');
  badge.hidden = unread === 0;
  badge.textContent = unread > 99 ? '99+' : String(unread);
}

function toggleConsole() {
  consoleChoice = !consoleShown();
  renderDeck();
}

$('console-toggle').addEventListener('click', toggleConsole);
roomBelowPicture.addEventListener('change', renderDeck);

// --- the clock: the robot's time, and how long this session has run -------------------

const pad2 = (n) => String(n).padStart(2, '0');
const clockTime = (d) => `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;

function renderClock() {
  const robot = client.robotTime();
  $('robot-time').textContent = robot ? clockTime(robot) : '--:--:--';
  const skew = robot ? Math.round((robot - Date.now()) / 1000) : 0;
  $('robot-time').title = Math.abs(skew) >= 2
    ? `The robot's clock, ${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} yours`
    : "The robot's clock";
  if (!client.connectedAt) {
    $('session-time').textContent = '-:--';
    return;
  }
  const seconds = Math.floor((Date.now() - client.connectedAt) / 1000);
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  $('session-time').textContent = h ? `${h}:${pad2(m)}:${pad2(s)}` : `${m}:${pad2(s)}`;
}

setInterval(renderClock, 500);

// --- help, passing notices and keyboard shortcuts --------------------------------------

function toggleHelp() {
  if (help.open) help.close();
  else help.showModal();
}

$('help-toggle').addEventListener('click', toggleHelp);
// A click on the backdrop (the dialog box itself, outside its form) closes it.
help.addEventListener('click', (e) => {
  if (e.target === help) help.close();
});

let noticeTimer = null;
function showNotice(text, hint = '', ms = 4000) {
  const notice = $('notice');
  notice.textContent = hint ? `${text}. ${hint}` : text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, ms);
}

const SHORTCUTS = {
  c: toggleSeat,
  v: toggleCamera, // t is held to talk: its own listeners, above
  f: toggleFullscreen,
  l: toggleConsole,
  m: () => soundButton.click(),
  i: () => $('stats-toggle').click(),
  h: toggleHelp,
  '?': toggleHelp,
};

window.addEventListener('keydown', (e) => {
  if (e.repeat || isTypingOrShortcut(e)) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  // While the help is open, only its own keys work (and Esc, which the dialog handles).
  if (help.open && key !== 'h' && key !== '?') return;
  const action = SHORTCUTS[key];
  if (!action) return;
  e.preventDefault();
  action();
});

// --- start -----------------------------------------------------------------------------

renderSound();
renderStats(null);
renderSeat();
renderTalk();
renderClock();
// The promise only reports the first outcome; the status line shows every change, and
// the client reconnects by itself (and ends the session on pagehide).
client.connect().catch(() => {});
render();