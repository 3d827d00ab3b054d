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
export function backoffDelay(attempt: number, random?: () => number, options?: BackoffOptions): number;
export type BackoffOptions = {
    /**
     * the first ceiling, 1000 ms by default.
     */
    initialMs?: number | undefined;
    /**
     * the cap, 30000 ms by default.
     */
    maxMs?: number | undefined;
};
