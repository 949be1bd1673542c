/**
 * robocast-input.js — what the driver wants, as {linear, angular} in -1..1: the keyboard,
 * a gamepad and a touch joystick. Part of robocast.js, which re-exports `keyboard`,
 * `gamepad`, `joystick` and `isTypingOrShortcut` (documented at its top): import them
 * from '/robocast.js'. `clampUnit` and `pageHidden` are shared with the client's driving.
 */

/** `x` clamped to -1..1; what is not a number becomes 0. */
export const clampUnit = (x) => Math.max(-1, Math.min(1, Number(x) || 0));

export const pageHidden = () => typeof document !== 'undefined' && document.visibilityState === 'hidden';

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
