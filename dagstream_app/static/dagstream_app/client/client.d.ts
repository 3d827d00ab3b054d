export { backoffDelay } from "./backoff.js";
export { CommandError } from "./commands.js";
export { ticketFetcher } from "./options.js";
/**
 * @import { Ack, ClientCommand, Decision, ServerEvent, ServerMessage, ServerReply }
 *   from "./protocol.js"
 */
/** @typedef {import("./status.js").ConnectionStatus} ConnectionStatus */
/** @typedef {import("./status.js").ClientState} ClientState */
/** @typedef {import("./backoff.js").BackoffOptions} BackoffOptions */
/** @typedef {import("./options.js").ClientOptions} ClientOptions */
/** @typedef {import("./commands.js").Pending} Pending */
/** The live state of one DAG, kept in step with the server. */
export class DagStreamClient {
    /**
     * @param {string} dagId
     * @param {ClientOptions} [options] read when each connection starts.
     */
    constructor(dagId: string, options?: ClientOptions);
    dagId: string;
    options: import("./options.js").ClientOptions;
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
export type ConnectionStatus = import("./status.js").ConnectionStatus;
export type ClientState = import("./status.js").ClientState;
export type BackoffOptions = import("./backoff.js").BackoffOptions;
export type ClientOptions = import("./options.js").ClientOptions;
export type Pending = import("./commands.js").Pending;
import type { ServerEvent } from "./protocol.js";
import type { ClientCommand } from "./protocol.js";
import type { Ack } from "./protocol.js";
import type { Decision } from "./protocol.js";
export { CLOSE_ABNORMAL, HANDSHAKE_SECONDS, KEEPALIVE_MISSES, TERMINAL_CLOSE_CODES } from "./status.js";
