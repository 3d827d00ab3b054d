// What a DagStreamClient is told (`ClientOptions`) and what it makes of it: the
// ticket that authenticates each connection attempt (`ticketFetcher`, and which
// refusals stop the client), and the WebSocket address it connects to.

/** @typedef {import("./backoff.js").BackoffOptions} BackoffOptions */

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] the dagstream server, e.g. `https://dags.example.com` (http(s)
 *   or ws(s)); by default the page's own origin.
 * @property {() => string | Promise<string>} [ticket] called before every connection attempt
 *   for a fresh single-use ticket (apps on another origin); see `ticketFetcher`.
 * @property {number} [keepaliveSeconds] the server's `KEEPALIVE_SECONDS` (20 by default):
 *   the client reconnects after 2.5 times it without any message.
 * @property {number} [handshakeSeconds] how long a handshake may take (10 by default) before
 *   the client says nobody answers and tries again.
 * @property {boolean} [batch] ask for batched frames (`?batch=1`), true by default.
 * @property {BackoffOptions} [backoff]
 * @property {() => number} [random] a source in [0, 1) for the backoff's jitter.
 * @property {typeof WebSocket} [WebSocket] the WebSocket class (Node < 22: `ws`'s).
 */

/** HTTP statuses of a ticket request after which the client gives up. */
const TERMINAL_HTTP_STATUSES = [401, 403, 404];

/**
 * A `ticket` option that asks dagstream's endpoint (`POST /dags/<dag_id>/ticket/`).
 * A 401, 403 or 404 answer stops the client (a retry would not help); anything
 * else is retried with backoff.
 * @param {string} url the endpoint, e.g. `https://dags.example.com/dags/etl-42/ticket/`,
 *   or your own backend's route that asks it with a bearer token.
 * @param {RequestInit} [init] e.g. `{credentials: "include", headers: {...}}`.
 * @returns {() => Promise<string>}
 */
export function ticketFetcher(url, init = {}) {
  return async () => {
    const response = await fetch(url, { method: "POST", ...init });
    if (!response.ok) {
      throw Object.assign(new Error(`Ticket request failed: HTTP ${response.status}.`), {
        status: response.status,
      });
    }
    const body = await response.json();
    return body.ticket;
  };
}

/**
 * Whether a `ticket` option's failure is a refusal that a retry would not change.
 * @param {unknown} error what the option threw: a terminal one carries an HTTP `status`.
 * @returns {boolean}
 */
export function isTicketRefused(error) {
  const status = /** @type {{status?: unknown}} */ (error)?.status;
  return typeof status === "number" && TERMINAL_HTTP_STATUSES.includes(status);
}

/**
 * The path and query of a DAG's socket.
 * @param {string} dagId
 * @param {ClientOptions} options
 * @param {number | null} lastSeq the seq to resume after, null before any state.
 * @param {string | null} ticket
 * @returns {string}
 */
export function socketPath(dagId, options, lastSeq, ticket) {
  const params = new URLSearchParams();
  if (options.batch ?? true) params.set("batch", "1");
  if (lastSeq !== null) params.set("last_seq", String(lastSeq));
  if (ticket !== null) params.set("ticket", ticket);
  return `/ws/dags/${encodeURIComponent(dagId)}/?${params}`;
}

/**
 * @param {string | undefined} baseUrl
 * @returns {string} the ws(s) origin and path prefix, without a trailing slash.
 */
export function socketBase(baseUrl) {
  const base = baseUrl ?? globalThis.location?.origin;
  if (!base) throw new TypeError("DagStreamClient needs baseUrl outside a browser page.");
  const url = new URL(base);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.href.replace(/\/$/, "");
}
