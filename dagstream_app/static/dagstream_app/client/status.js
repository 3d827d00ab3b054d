// The client's connection status and why a connection ended: the state an app
// reads (`ClientState`), the close codes that end it for good, and the state
// changes for a closed and a reconnecting client.

/** @import { DagSnapshot } from "./protocol.js" */

/** Close codes after which the client does not reconnect (docs/protocol.md). */
export const TERMINAL_CLOSE_CODES = Object.freeze([4001, 4003, 4004]);
/** Reconnect when nothing at all arrived for this many keep-alive intervals. */
export const KEEPALIVE_MISSES = 2.5;
/** Close code the client reports for a connection it gave up on itself (no close frame). */
export const CLOSE_ABNORMAL = 1006;

/** Seconds a handshake may take (by default) before the client says nobody answers and retries. */
export const HANDSHAKE_SECONDS = 10;
/** Where docs/client.md says how to reach dagstream from a dev server or another origin. */
export const CONNECTING_HELP = "see docs/client.md#authentication";

/**
 * Why a socket to `where` never opened and closed without a code, for people.
 * @param {string} where the socket's address, without its query.
 * @returns {string}
 */
export function neverOpened(where) {
  return (
    `Could not connect to ${where}: the server is down, or refused this page's origin ` +
    `(ALLOWED_HOSTS, DAGSTREAM ALLOWED_ORIGINS; ${CONNECTING_HELP}).`
  );
}

/**
 * Why a handshake with `where` was given up after `seconds`, for people.
 * @param {string} where
 * @param {number} seconds
 * @returns {string}
 */
export function noAnswer(where, seconds) {
  return (
    `No answer from ${where} in ${seconds} s: is dagstream served there? ` +
    `A dev server must proxy /ws/ to Django (${CONNECTING_HELP}).`
  );
}

/** @typedef {"connecting" | "open" | "reconnecting" | "closed"} ConnectionStatus */

/**
 * What `getSnapshot()` returns: a new frozen object whenever anything in it changes.
 * @typedef {object} ClientState
 * @property {ConnectionStatus} status `connecting` from creation to the first open;
 *   `closed` only after a terminal close code, a refused ticket, or `close()`: the client
 *   then stays closed until `connect()`.
 * @property {number | null} closeCode the code of the last close (`1006` when the network
 *   failed or the client gave up on a silent connection), or null before any.
 * @property {string} closeReason why the last connection ended, for people.
 * @property {number | null} retryDelay ms until the next attempt while `reconnecting`.
 * @property {DagSnapshot | null} dag the DAG's state, null until the first snapshot.
 * @property {number | null} lastSeq the seq of the last event applied (or the snapshot's).
 */

/**
 * The change to a client that stopped for good (until `connect()`).
 * @param {number | null} code the close code, or null when no socket closed (a refused
 *   ticket, a server that could not be named).
 * @param {string} reason
 * @returns {Partial<ClientState>}
 */
export function closedState(code, reason) {
  return { status: "closed", closeCode: code, closeReason: reason, retryDelay: null };
}

/**
 * The change to a client that lost its connection and tries again in `delay` ms.
 * @param {number} code
 * @param {string} reason
 * @param {number} delay
 * @returns {Partial<ClientState>}
 */
export function reconnectingState(code, reason, delay) {
  return { status: "reconnecting", closeCode: code, closeReason: reason, retryDelay: delay };
}

/**
 * A thrown value as a close reason, for people.
 * @param {unknown} error
 * @returns {string}
 */
export function reasonOf(error) {
  return error instanceof Error ? error.message : String(error);
}
