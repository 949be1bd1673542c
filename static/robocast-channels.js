/**
 * robocast-channels.js — the data channels of the client's current connection and the
 * messages waiting for them (robocast.js documents send() at its top, under "Sending").
 * Part of robocast.js: users call client.send() and never import this module.
 */

import { RobocastError } from './robocast-http.js';

const MAX_MESSAGE_BYTES = 16 * 1024; // robocast refuses larger data channel messages
// A `control` command waits while more than this is unsent: piling up old commands would
// only delay the newest.
const CONTROL_BACKLOG_BYTES = 1024;

/**
 * One per client, outliving its connections: messages may wait across a reconnect. It
 * reads the client's `state`, `lastError`, `options.channels` and connection generation
 * (`_gen`, which moves on when a connection is torn down), and hands the client each
 * message (`_onMessage`) and `channel` event (`_emit`).
 */
export class Channels {
  constructor(client) {
    this._client = client;
    this._byLabel = Object.create(null); // label → RTCDataChannel, of the current connection
    // label → messages waiting for their channel: [{text, resolve, reject}]
    this._queues = new Map();
  }

  /** client.send(channel, data): resolves once handed to the channel (see "Sending"). */
  send(channel, data) {
    const client = this._client;
    return new Promise((resolve, reject) => {
      const refuse = (why, hint = '') => reject(new RobocastError(why, { hint, retry: false }));
      if (client.state === 'closed' || client.state === 'failed'
        || (channel === 'control' && client.state === 'reconnecting')) {
        return refuse('not connected', client.lastError || 'Call connect() first.');
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

  isOpen(label) {
    return this._byLabel[label]?.readyState === 'open';
  }

  /** Send now if the channel is open; the drive loop's way (nothing of it is worth a wait). */
  transmit(label, text) {
    const ch = this._byLabel[label];
    if (!this.isOpen(label) || (label === 'control' && ch.bufferedAmount > CONTROL_BACKLOG_BYTES)) return;
    try {
      ch.send(text);
    } catch {
      // closing under our feet: the next tick or the next connection carries on
    }
  }

  /**
   * Open ours on a new connection `pc` (generation `gen`) and take those the robot opens.
   * Created before the offer so that it carries an m=application section the server can
   * use later; if the server's answer leaves it out, the channels simply never open.
   */
  open(pc, gen) {
    this._adopt(pc.createDataChannel('control', { ordered: false, maxRetransmits: 0 }), gen);
    this._adopt(pc.createDataChannel('state'), gen);
    for (const [label, init] of Object.entries(this._client.options.channels || {})) {
      if (label !== 'control' && label !== 'state') this._adopt(pc.createDataChannel(label, init || {}), gen);
    }
    pc.addEventListener('datachannel', (e) => this._adopt(e.channel, gen));
  }

  /** The connection is gone: so are its channels and the messages meant for it alone. */
  lost() {
    // Those waiting for a channel the next connection will open again keep waiting; a
    // control command is for this connection only.
    const reopened = new Set(['state', ...Object.keys(this._client.options.channels || {})]);
    this.rejectQueued((label) => !reopened.has(label), 'the connection was lost before it was sent',
      'Send it again once connected.');
    this._byLabel = Object.create(null);
  }

  /** Reject, saying `why`, every waiting message whose label `which` accepts. */
  rejectQueued(which, why, hint = '') {
    for (const [label, queue] of this._queues) {
      if (!which(label)) continue;
      for (const { reject } of queue.splice(0)) reject(new RobocastError(why, { hint, retry: false }));
    }
  }

  /** Every label send() accepts now: ours, the options', and any the robot opened. */
  _labels() {
    return new Set(['control', 'state', ...Object.keys(this._client.options.channels || {}),
      ...Object.keys(this._byLabel)]);
  }

  /** Hand what waits for `label` to its channel, if it is open. */
  _flush(label) {
    const queue = this._queues.get(label);
    const ch = this._byLabel[label];
    while (queue?.length && this.isOpen(label)) {
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

  _adopt(ch, gen) {
    const client = this._client;
    const label = ch.label;
    // Keep ours unless the server opens its own with the same label: the open one wins.
    if (!this._byLabel[label]) this._byLabel[label] = ch;
    if (label === 'control') {
      ch.bufferedAmountLowThreshold = CONTROL_BACKLOG_BYTES;
      ch.addEventListener('bufferedamountlow', () => {
        if (gen === client._gen && this._byLabel[label] === ch) this._flush(label);
      });
    }
    ch.addEventListener('open', () => {
      if (gen !== client._gen) return;
      this._byLabel[label] = ch;
      client._emit('channel', { label, open: true });
      this._flush(label);
    });
    ch.addEventListener('close', () => {
      if (gen === client._gen && this._byLabel[label] === ch) client._emit('channel', { label, open: false });
    });
    ch.addEventListener('message', (e) => {
      if (gen === client._gen) client._onMessage(label, e.data);
    });
  }
}
