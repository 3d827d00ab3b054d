// The one reconnect policy: full jitter, capped. The client (client.js) and the
// dashboard (../dashboard/live.js) both wait `backoffDelay(attempt, ...)` before a
// retry; neither computes a delay of its own.

/**
 * @typedef {object} BackoffOptions
 * @property {number} [initialMs] the first ceiling, 1000 ms by default.
 * @property {number} [maxMs] the cap, 30000 ms by default.
 */

/**
 * The full-jitter backoff: a random delay below `min(maxMs, initialMs * 2^attempt)`.
 * @param {number} attempt 0 for the first retry.
 * @param {() => number} [random]
 * @param {BackoffOptions} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, random = Math.random, options = {}) {
  const { initialMs = 1000, maxMs = 30000 } = options;
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
