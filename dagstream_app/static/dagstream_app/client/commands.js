// Commands in flight: their ids, the replies they wait for, and the error a
// refused or unanswered command rejects with.

/** @import { Ack, CommandId, ErrorCode, ErrorReply } from "./protocol.js" */

/** A command the server refused, or one that could not be sent or answered. */
export class CommandError extends Error {
  /**
   * @param {ErrorCode | "disconnected"} code the protocol's error code, or `disconnected`.
   * @param {string} message
   * @param {CommandId | null} id
   * @param {ErrorReply["decision"]} [decision] who decided first, on a `conflict` at a gate.
   */
  constructor(code, message, id, decision = null) {
    super(message);
    this.name = "CommandError";
    this.code = code;
    this.id = id;
    this.decision = decision ?? null;
  }
}

/** A fresh, unguessable command id: ids are remembered per (DAG, user) for good. */
export function newCommandId() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @typedef {object} Pending
 * @property {(ack: Ack) => void} resolve
 * @property {(error: CommandError) => void} reject
 */

/** The commands sent on the current socket that wait for their reply, in the order sent. */
export class PendingCommands {
  /** @type {Map<CommandId, Pending>} replies come in the order commands were sent */
  #waiting = new Map();

  /** @param {CommandId} id */
  has(id) {
    return this.#waiting.has(id);
  }

  /**
   * @param {CommandId} id
   * @param {Pending} pending
   */
  add(id, pending) {
    this.#waiting.set(id, pending);
  }

  /**
   * The command a reply answers, no longer waiting: by its id, else the oldest waiting
   * (the server answers each frame once, in order; `rate_limited` echoes no id).
   * @param {CommandId | null | undefined} id
   * @returns {Pending | undefined}
   */
  settle(id) {
    const key = id ?? this.#waiting.keys().next().value;
    if (key === undefined) return undefined;
    const found = this.#waiting.get(key);
    this.#waiting.delete(key);
    return found;
  }

  /**
   * Refuse every command still waiting: its socket is gone.
   * @param {string} why what ended the socket, e.g. `closed by the app`.
   */
  rejectAll(why) {
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const [id, { reject }] of waiting) {
      reject(
        new CommandError(
          "disconnected",
          `No reply before the ${why}: the command may or may not have been applied. ` +
            "Send it again with the same id to be sure; it is applied at most once.",
          id,
        ),
      );
    }
  }
}
