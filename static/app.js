// The robocast robot page: connect on load, show the robot's video and sound, say what is
// wrong when the picture is not live (the connection, or the robot's own health), live
// stats and fullscreen. All WebRTC work lives in robocast.js; this file only wires the
// client to the DOM.

import { RobocastClient } from './robocast.js';

const $ = (id) => document.getElementById(id);
const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const video = $('video');
const stage = $('stage');
const statusLine = $('status');
const overlay = $('overlay');
const soundButton = $('sound');
const statsPanel = $('stats');

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
document.addEventListener('fullscreenchange', renderFullscreen);
document.addEventListener('webkitfullscreenchange', renderFullscreen);

// --- start -----------------------------------------------------------------------------

renderSound();
renderStats(null);
// The promise only reports the first outcome; the status line shows every change, and
// the client reconnects by itself (and ends the session on pagehide).
client.connect().catch(() => {});
render();