/**
 * @import { ClientOptions } from "./options.js"
 * @import { ClientState } from "./status.js"
 */
/**
 * The client a connection serves, read when each connection starts.
 * @typedef {object} ConnectionTarget
 * @property {string} dagId
 * @property {ClientOptions} options
 */
/**
 * What a connection tells the client it serves.
 * @typedef {object} ConnectionHooks
 * @property {() => number | null} lastSeq the seq to resume after.
 * @property {(change: Partial<ClientState>) => void} update a change of status.
 * @property {() => void} started a new socket exists: no resync is under way on it.
 * @property {(data: unknown) => void} receive a frame arrived.
 * @property {(why: string) => void} dropped the socket is gone: refuse the commands waiting.
 */
/** One DAG's socket, kept open (or being reopened) from `connect()` to the end. */
export class Connection {
    /**
     * @param {ConnectionTarget} target
     * @param {ConnectionHooks} hooks
     */
    constructor(target: ConnectionTarget, hooks: ConnectionHooks);
    /** The current socket (open or not), or null between connections. */
    get socket(): WebSocket | null;
    /** Start (or restart after `close()`); the socket opens on the next microtask. */
    connect(): void;
    /** Stop for good: close the socket, cancel any retry, refuse pending commands. */
    close(): void;
    /**
     * Give up on the current socket at once and reconnect after a backoff delay.
     * @param {string} why what ended it, for the commands it refuses.
     * @param {string} reason the close reason, for people.
     */
    reconnect(why: string, reason: string): void;
    #private;
}
/**
 * The client a connection serves, read when each connection starts.
 */
export type ConnectionTarget = {
    dagId: string;
    options: ClientOptions;
};
/**
 * What a connection tells the client it serves.
 */
export type ConnectionHooks = {
    /**
     * the seq to resume after.
     */
    lastSeq: () => number | null;
    /**
     * a change of status.
     */
    update: (change: Partial<ClientState>) => void;
    /**
     * a new socket exists: no resync is under way on it.
     */
    started: () => void;
    /**
     * a frame arrived.
     */
    receive: (data: unknown) => void;
    /**
     * the socket is gone: refuse the commands waiting.
     */
    dropped: (why: string) => void;
};
import type { ClientOptions } from "./options.js";
import type { ClientState } from "./status.js";
