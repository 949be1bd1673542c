/**
 * robocast-http.js — the error every failure of robocast.js becomes, and HTTP requests to
 * the robot with a timeout. Part of robocast.js, which re-exports `RobocastError`: import
 * it from '/robocast.js'.
 */

const HTTP_TIMEOUT_MS = 10000;
export const NOT_ANSWERING_HINT = 'It may be restarting, powered off or off the network; reconnecting.';

/** An error with a hint for the user and whether retrying can help. */
export class RobocastError extends Error {
  constructor(message, { hint = '', retry = true } = {}) {
    super(message);
    this.name = 'RobocastError';
    this.hint = hint;
    this.retry = retry;
  }
}

/**
 * fetch with a timeout (or `abort`); parses a JSON body if any. Any failure to get an
 * answer is a RobocastError 'the robot is not answering'.
 */
export async function fetchJson(url, init, abort = new AbortController()) {
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
