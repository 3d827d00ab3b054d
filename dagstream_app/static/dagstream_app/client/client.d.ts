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
export { backoffDelay };
/**
 * @import { Ack, ClientCommand, CommandId, DagSnapshot, Decision, ErrorCode, ErrorReply,
 *   ServerEvent, ServerMessage, ServerReply } from "./protocol.js"
 */
/** Close codes after which the client does not reconnect (docs/protocol.md). */
export const TERMINAL_CLOSE_CODES: readonly number[];
/** Reconnect when nothing at all arrived for this many keep-alive intervals. */
export const KEEPALIVE_MISSES: 2.5;
/** Close code the client reports for a connection it gave up on itself (no close frame). */
export const CLOSE_ABNORMAL: 1006;
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
/** @typedef {import("./backoff.js").BackoffOptions} BackoffOptions */
/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] the dagstream server, e.g. `https://dags.example.com` (http(s)
 *   or ws(s)); by default the page's own origin.
 * @property {() => string | Promise<string>} [ticket] called before every connection attempt
 *   for a fresh single-use ticket (apps on another origin); see `ticketFetcher`.
 * @property {number} [keepaliveSeconds] the server's `KEEPALIVE_SECONDS` (20 by default):
 *   the client reconnects after 2.5 times it without any message.
 * @property {boolean} [batch] ask for batched frames (`?batch=1`), true by default.
 * @property {BackoffOptions} [backoff]
 * @property {() => number} [random] a source in [0, 1) for the backoff's jitter.
 * @property {typeof WebSocket} [WebSocket] the WebSocket class (Node < 22: `ws`'s).
 */
/** A command the server refused, or one that could not be sent or answered. */
export class CommandError extends Error {
    /**
     * @param {ErrorCode | "disconnected"} code the protocol's error code, or `disconnected`.
     * @param {string} message
     * @param {CommandId | null} id
     * @param {ErrorReply["decision"]} [decision] who decided first, on a `conflict` at a gate.
     */
    constructor(code: ErrorCode | "disconnected", message: string, id: CommandId | null, decision?: ErrorReply["decision"]);
    code: "disconnected" | "conflict" | "forbidden" | "invalid_json" | "invalid_message" | "invalid_parameter" | "method_not_allowed" | "not_found" | "rate_limited" | "too_large" | "unauthenticated" | "unknown_type";
    id: CommandId | null;
    decision: {
        [k: string]: unknown;
    } | null;
}
/**
 * @typedef {object} Pending
 * @property {(ack: Ack) => void} resolve
 * @property {(error: CommandError) => void} reject
 */
/** The live state of one DAG, kept in step with the server. */
export class DagStreamClient {
    /**
     * @param {string} dagId
     * @param {ClientOptions} [options] read when each connection starts.
     */
    constructor(dagId: string, options?: ClientOptions);
    dagId: string;
    options: ClientOptions;
    /**
     * Call `listener` after every change of `getSnapshot()`.
     * @param {() => void} listener
     * @returns {() => void} unsubscribe
     */
    subscribe: (listener: () => void) => () => void;
    /**
     * The current state: the same object until something changes.
     * @returns {ClientState}
     */
    getSnapshot: () => ClientState;
    /**
     * Call `listener` with each event after it is applied (once each, in seq order).
     * @param {(event: ServerEvent) => void} listener
     * @returns {() => void} unsubscribe
     */
    onEvent(listener: (event: ServerEvent) => void): () => void;
    /** Start (or restart after `close()`); the socket opens on the next microtask. */
    connect(): void;
    /** Stop for good: close the socket, cancel any retry, refuse pending commands. */
    close(): void;
    /**
     * Send a command; resolved by its `ack`, rejected with a `CommandError` carrying the
     * server's error `code`. Without an `id` it gets a fresh one. Never queued: when the
     * socket is not open it rejects at once (`disconnected`), and a disconnect before the
     * reply rejects it too.
     * @param {ClientCommand} command
     * @returns {Promise<Ack>}
     */
    send(command: ClientCommand): Promise<Ack>;
    /**
     * Decide the gate at `nodeId` (`modify` needs feedback).
     * @param {string} nodeId
     * @param {Decision} decision
     * @param {string} [feedback]
     * @returns {Promise<Ack>}
     */
    decide(nodeId: string, decision: Decision, feedback?: string): Promise<Ack>;
    /** @returns {Promise<Ack>} */
    pause(): Promise<Ack>;
    /** Resume a paused run (`resume_execution`; the protocol's `resume` is the client's own). */
    resume(): Promise<Ack>;
    /** @returns {Promise<Ack>} */
    cancel(): Promise<Ack>;
    #private;
}
export type ConnectionStatus = "connecting" | "open" | "reconnecting" | "closed";
/**
 * What `getSnapshot()` returns: a new frozen object whenever anything in it changes.
 */
export type ClientState = {
    /**
     * `connecting` from creation to the first open;
     * `closed` only after a terminal close code, a refused ticket, or `close()`: the client
     * then stays closed until `connect()`.
     */
    status: ConnectionStatus;
    /**
     * the code of the last close (`1006` when the network
     * failed or the client gave up on a silent connection), or null before any.
     */
    closeCode: number | null;
    /**
     * why the last connection ended, for people.
     */
    closeReason: string;
    /**
     * ms until the next attempt while `reconnecting`.
     */
    retryDelay: number | null;
    /**
     * the DAG's state, null until the first snapshot.
     */
    dag: DagSnapshot | null;
    /**
     * the seq of the last event applied (or the snapshot's).
     */
    lastSeq: number | null;
};
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
export type Pending = {
    resolve: (ack: Ack) => void;
    reject: (error: CommandError) => void;
};
import { backoffDelay } from "./backoff.js";
import type { CommandId } from "./protocol.js";
import type { ErrorCode } from "./protocol.js";
import type { ErrorReply } from "./protocol.js";
import type { ServerEvent } from "./protocol.js";
import type { ClientCommand } from "./protocol.js";
import type { Ack } from "./protocol.js";
import type { Decision } from "./protocol.js";
import type { DagSnapshot } from "./protocol.js";
