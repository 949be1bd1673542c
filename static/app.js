// The robocast robot console: connect on load, show the robot's video and sound, say what
// is wrong when the picture is not live (the connection, or the robot's own health), drive
// the robot (the driver seat; keyboard, gamepad or touch joystick), the robot's messages
// in a console, a clock, live stats, help, shortcuts and fullscreen. All WebRTC and
// driving work lives in robocast.js; this file only wires the client to the DOM.

import { RobocastClient, gamepad, isTypingOrShortcut, joystick, keyboard } from './robocast.js';

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

const client = new RobocastClient({ video: 'recvonly', audio: 'recvonly' });
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
client.addEventListener('health', render);
client.addEventListener('statechange', () => {
  if (client.state !== 'connected') heardHello = false;
  renderSeat();
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
  driveButton.disabled = !connected || seatBusy;
  driveButton.setAttribute('aria-pressed', String(client.driving));
  driveButton.querySelector('.label').textContent = client.driving ? 'Release' : 'Take control';
  driveButton.querySelector('use').setAttribute('href', client.driving ? '#i-release' : '#i-wheel');
  driveButton.title = client.driving ? 'Stop driving and let someone else (c)' : 'Take control of the robot (c)';
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
  log('notice', 'robocast', `connected as ${idPrefix(session)}; ${whoDrives()}`
    + (deadmanMs ? `; the robot stops after ${deadmanMs} ms without a word from its driver` : ''));
  renderSeat();
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
  const { error, hint, channel } = e.detail;
  log('error', 'robocast', `refused on ${channel || 'a channel'}: ${error}${hint ? `. ${hint}` : ''}`);
});

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
function showNotice(text, hint = '') {
  const notice = $('notice');
  notice.textContent = hint ? `${text}. ${hint}` : text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, 4000);
}

const SHORTCUTS = {
  c: toggleSeat,
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
renderClock();
// The promise only reports the first outcome; the status line shows every change, and
// the client reconnects by itself (and ends the session on pagehide).
client.connect().catch(() => {});
render();