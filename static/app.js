// The robocast robot page: connect on load, show the robot's video and sound, the
// connection state with reasons, live stats and fullscreen. All WebRTC work lives in
// robocast.js; this file only wires the client to the DOM.

import { RobocastClient } from './robocast.js';

const $ = (id) => document.getElementById(id);
const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const video = $('video');
const stage = $('stage');
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

// --- sound: browsers only autoplay muted, so the first click unlocks audio -------------

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
  soundButton.textContent = !soundUnlocked ? 'Click to unmute' : audible ? 'Mute' : 'Unmute';
  soundButton.setAttribute('aria-pressed', String(audible));
  soundButton.title = audible ? 'Mute the robot' : 'Hear the robot';
}

// --- connection state ------------------------------------------------------------------

const STATE_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  failed: 'Connection failed',
  closed: 'Disconnected',
};

client.addEventListener('statechange', renderState);

function renderState() {
  const { state, lastError, lastHint, retryInMs } = client;
  const label = STATE_TEXT[state] || state;
  $('status').dataset.state = state;
  stage.dataset.state = state;
  $('state-text').textContent = label;

  // The overlay over the (possibly frozen) video says why it is not live, where the eye is.
  let overlay = label;
  if (state === 'reconnecting' && retryInMs) overlay = `Reconnecting in ${Math.round(retryInMs / 1000)} s…`;
  if (lastError && state !== 'connected') overlay += `\n${capitalise(lastError)}`;
  $('overlay').textContent = overlay;

  const problem = $('problem');
  const showProblem = (state === 'reconnecting' || state === 'failed') && !!lastError;
  problem.hidden = !showProblem;
  problem.dataset.state = state;
  $('error').textContent = showProblem ? capitalise(lastError) : '';
  $('hint').textContent = showProblem ? lastHint : '';

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
// The stage goes fullscreen so the overlays come along; iPhone Safari can only put a
// <video> itself in fullscreen, with its native controls.
const canFullscreen = !!(stage.requestFullscreen || stage.webkitRequestFullscreen || video.webkitEnterFullscreen);
fullscreenButton.hidden = !canFullscreen;

function toggleFullscreen() {
  if (fullscreenElement()) {
    const exit = document.exitFullscreen || document.webkitExitFullscreen;
    Promise.resolve(exit.call(document)).catch(() => {});
  } else if (stage.requestFullscreen) {
    Promise.resolve(stage.requestFullscreen()).catch(() => {});
  } else if (stage.webkitRequestFullscreen) {
    stage.webkitRequestFullscreen();
  } else if (video.webkitEnterFullscreen) {
    video.webkitEnterFullscreen();
  }
}

function renderFullscreen() {
  fullscreenButton.textContent = fullscreenElement() ? 'Exit fullscreen' : 'Fullscreen';
}

fullscreenButton.addEventListener('click', toggleFullscreen);
video.addEventListener('dblclick', toggleFullscreen);
document.addEventListener('fullscreenchange', renderFullscreen);
document.addEventListener('webkitfullscreenchange', renderFullscreen);

// --- start -----------------------------------------------------------------------------

renderSound();
renderStats(null);
// The promise only reports the first outcome; the status line shows every change, and
// the client reconnects by itself (and ends the session on pagehide).
client.connect().catch(() => {});
renderState();
