/**
 * A `ticket` option that asks dagstream's endpoint (`POST /dags/<dag_id>/ticket/`).
 * A 401, 403 or 404 answer stops the client (a retry would not help); anything
 * else is retried with backoff.
 * @param {string} url the endpoint, e.g. `https://dags.example.com/dags/etl-42/ticket/`,
 *   or your own backend's route that asks it with a bearer token.
 * @param {RequestInit} [init] e.g. `{credentials: "include", headers: {...}}`.
 * @returns {() => Promise<string>}
 */
export function ticketFetcher(url: string, init?: RequestInit): () => Promise<string>;
/**
 * Whether a `ticket` option's failure is a refusal that a retry would not change.
 * @param {unknown} error what the option threw: a terminal one carries an HTTP `status`.
 * @returns {boolean}
 */
export function isTicketRefused(error: unknown): boolean;
/**
 * The path and query of a DAG's socket.
 * @param {string} dagId
 * @param {ClientOptions} options
 * @param {number | null} lastSeq the seq to resume after, null before any state.
 * @param {string | null} ticket
 * @returns {string}
 */
export function socketPath(dagId: string, options: ClientOptions, lastSeq: number | null, ticket: string | null): string;
/**
 * @param {string | undefined} baseUrl
 * @returns {string} the ws(s) origin and path prefix, without a trailing slash.
 */
export function socketBase(baseUrl: string | undefined): string;
export type BackoffOptions = import("./backoff.js").BackoffOptions;
export type ClientOptions = {
    /**
     * the dagstream server, e.g. `https://dags.example.com` (http(s)
     * or ws(s)); by default the page's own origin.
     */
    baseUrl?: string | undefined;
    /**
     * called before every connection attempt
     * for a fresh single-use ticket (apps on another origin); see `ticketFetcher`.
     */
    ticket?: (() => string | Promise<string>) | undefined;
    /**
     * the server's `KEEPALIVE_SECONDS` (20 by default):
     * the client reconnects after 2.5 times it without any message.
     */
    keepaliveSeconds?: number | undefined;
    /**
     * how long a handshake may take (10 by default) before
     * the client says nobody answers and tries again.
     */
    handshakeSeconds?: number | undefined;
    /**
     * ask for batched frames (`?batch=1`), true by default.
     */
    batch?: boolean | undefined;
    backoff?: import("./backoff.js").BackoffOptions | undefined;
    /**
     * a source in [0, 1) for the backoff's jitter.
     */
    random?: (() => number) | undefined;
    /**
     * the WebSocket class (Node < 22: `ws`'s).
     */
    WebSocket?: {
        new (url: string | URL, protocols?: string | string[]): WebSocket;
        prototype: WebSocket;
        readonly CONNECTING: 0;
        readonly OPEN: 1;
        readonly CLOSING: 2;
        readonly CLOSED: 3;
    } | undefined;
};
