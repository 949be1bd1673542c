/**
 * robocast-drive.js — the driver seat and the 20 Hz drive loop of one client (README
 * "Drive the robot"; robocast.js documents takeControl(), drive() and the rest at its
 * top). Part of robocast.js: users call these through the client and never import this
 * module.
 */

import { fetchJson, RobocastError } from './robocast-http.js';
import { clampUnit, pageHidden } from './robocast-input.js';

const DRIVE_INTERVAL_MS = 50; // 20 Hz: well inside the robot's dead-man delay (300 ms by default)
const STOP_REPEATS = 3; // `control` has no retransmits: a lost stop is sent again
const HEARTBEAT = JSON.stringify({ type: 'heartbeat' });
const STOP = JSON.stringify({ type: 'stop' });
const HIDDEN = JSON.stringify({ type: 'hidden' });

/**
 * Who drives, and while it is this session and the tab is visible, the loop that sends
 * the active command (or a heartbeat) on `control`. It reads the client's `session`,
 * `state`, `base` and `options.headers`, emits `driver` through the client, and sends on
 * the client's `channels` at once (transmit(), which drops what cannot go).
 */
export class DriverSeat {
  constructor(client, channels) {
    this._client = client;
    this._channels = channels;
    this.driver = null; // the session that drives, or null
    this._command = null; // what the loop repeats (JSON text), null: heartbeats
    this._stopsLeft = 0;
    this._timer = null;
    if (typeof document !== 'undefined') {
      document.addEventListener('visibilitychange', () => this._onVisibility());
    }
  }

  get driving() {
    const { session } = this._client;
    return !!session && this.driver === session;
  }

  /** POST the seat. Resolves {driver}; rejects with err.driver = who drives. */
  async take() {
    const { res, body } = await this._request('POST');
    if ('driver' in body) this.set(body.driver ?? null);
    if (res.ok) return { driver: this.driver };
    const err = new RobocastError(body.error || `taking control failed (HTTP ${res.status})`,
      { hint: body.hint || '', retry: false });
    err.status = res.status;
    err.driver = body.driver ?? null;
    throw err;
  }

  /** DELETE the seat. Resolves {driver} (whoever drives now). */
  async release() {
    if (!this._client.session) return { driver: this.driver };
    // After the release robocast forwards nothing more from us: stop the robot first.
    if (this.driving && (this._command || this._stopsLeft)) this._channels.transmit('control', STOP);
    this._command = null;
    this._stopsLeft = 0;
    // No heartbeats while the DELETE travels: they would arrive after it and be refused.
    if (this._timer) {
      clearInterval(this._timer);
      this._timer = null;
    }
    let res;
    let body;
    try {
      ({ res, body } = await this._request('DELETE'));
    } finally {
      this._updateLoop(); // still driving if the release failed
    }
    if ('driver' in body) this.set(body.driver ?? null);
    if (res.ok) return { driver: this.driver };
    throw new RobocastError(body.error || `releasing control failed (HTTP ${res.status})`,
      { hint: body.hint || '', retry: false });
  }

  drive(linear, angular) {
    const l = clampUnit(linear);
    const a = clampUnit(angular);
    if (!l && !a) return this.stop();
    return this.command({ type: 'drive', linear: l, angular: a });
  }

  stop() {
    this._command = null;
    this._stopsLeft = STOP_REPEATS;
    if (this._timer) this._tick();
  }

  command(cmd) {
    this._command = cmd == null ? null : JSON.stringify(cmd);
    this._stopsLeft = 0;
    if (this._timer) this._tick(); // at once, not up to 50 ms later
  }

  /** robocast says `driver` (a session id or null) drives now. */
  set(driver) {
    if (driver === this.driver) return;
    const wasDriving = this.driving;
    this.driver = driver;
    // A key held down before the seat was granted does not move the robot the moment it
    // is: driving starts with the next key press, stick move or command.
    if (this.driving && !wasDriving) {
      this._command = null;
      this._stopsLeft = 0;
    }
    this._client._emit('driver', { session: driver, you: this.driving });
    this._updateLoop();
  }

  async _request(method) {
    const { session, state, base, options } = this._client;
    if (!session || state !== 'connected') {
      throw new RobocastError('not connected', { hint: 'Wait until the robot is connected.', retry: false });
    }
    const path = `/api/sessions/${encodeURIComponent(session)}/driver`;
    return fetchJson(base + path, { method, headers: { ...options.headers } });
  }

  /** The loop runs while this session drives and the tab is visible. */
  _updateLoop() {
    const run = this.driving && !pageHidden();
    if (run && !this._timer) {
      this._timer = setInterval(() => this._tick(), DRIVE_INTERVAL_MS);
      this._tick();
    } else if (!run && this._timer) {
      clearInterval(this._timer);
      this._timer = null;
    }
  }

  _tick() {
    let text = this._command;
    if (!text && this._stopsLeft > 0) {
      this._stopsLeft--;
      text = STOP;
    }
    this._channels.transmit('control', text || HEARTBEAT);
  }

  _onVisibility() {
    if (pageHidden() && this.driving) {
      // The robot stops at once instead of after the dead-man delay; whatever was held
      // down when the tab went away is not held any more.
      this._channels.transmit('control', HIDDEN);
      this._command = null;
      this._stopsLeft = 0;
    }
    this._updateLoop();
  }
}
