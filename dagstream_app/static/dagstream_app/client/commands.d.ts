/** A fresh, unguessable command id: ids are remembered per (DAG, user) for good. */
export function newCommandId(): string;
/** @import { Ack, CommandId, ErrorCode, ErrorReply } from "./protocol.js" */
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
/** The commands sent on the current socket that wait for their reply, in the order sent. */
export class PendingCommands {
    /** @param {CommandId} id */
    has(id: CommandId): boolean;
    /**
     * @param {CommandId} id
     * @param {Pending} pending
     */
    add(id: CommandId, pending: Pending): void;
    /**
     * The command a reply answers, no longer waiting: by its id, else the oldest waiting
     * (the server answers each frame once, in order; `rate_limited` echoes no id).
     * @param {CommandId | null | undefined} id
     * @returns {Pending | undefined}
     */
    settle(id: CommandId | null | undefined): Pending | undefined;
    /**
     * Refuse every command still waiting: its socket is gone.
     * @param {string} why what ended the socket, e.g. `closed by the app`.
     */
    rejectAll(why: string): void;
    #private;
}
export type Pending = {
    resolve: (ack: Ack) => void;
    reject: (error: CommandError) => void;
};
import type { CommandId } from "./protocol.js";
import type { ErrorCode } from "./protocol.js";
import type { ErrorReply } from "./protocol.js";
import type { Ack } from "./protocol.js";
