// DagStreamClient: one DAG's live state over dagstream's WebSocket protocol v1
// (docs/protocol.md), for browsers and Node. No build step, no dependencies.
//
// It keeps the state store (snapshot, then every event applied once, in seq
// order) and sends commands as promises; its connection (connection.js)
// reconnects with full-jitter backoff (backoff.js, shared with the dashboard) and
// resumes with last_seq, and its status (status.js) tells an app honestly how the
// connection is. This module is the package's entry point: it exports the public
// names of the others too.

import { applyEvents, fromSnapshot } from "./store.js";
import { CommandError, PendingCommands, newCommandId } from "./commands.js";
import { Connection } from "./connection.js";

export { backoffDelay } from "./backoff.js";
export { CommandError } from "./commands.js";
export { ticketFetcher } from "./options.js";
export {
  CLOSE_ABNORMAL,
  HANDSHAKE_SECONDS,
  KEEPALIVE_MISSES,
  TERMINAL_CLOSE_CODES,
} from "./status.js";

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
  /** @type {ClientState} */
  #state = Object.freeze({
    status: /** @type {ConnectionStatus} */ ("connecting"),
    closeCode: null,
    closeReason: "",
    retryDelay: null,
    dag: null,
    lastSeq: null,
  });
  /** @type {Set<() => void>} */
  #listeners = new Set();
  /** @type {Set<(event: ServerEvent) => void>} */
  #eventListeners = new Set();
  #pending = new PendingCommands();
  #resyncing = false;
  /** @type {Connection} */
  #connection;

  /**
   * @param {string} dagId
   * @param {ClientOptions} [options] read when each connection starts.
   */
  constructor(dagId, options = {}) {
    this.dagId = dagId;
    this.options = options;
    this.#connection = new Connection(this, {
      lastSeq: () => this.#state.lastSeq,
      update: (change) => this.#update(change),
      started: () => {
        this.#resyncing = false;
      },
      receive: (data) => this.#receive(data),
      dropped: (why) => this.#pending.rejectAll(why),
    });
  }

  // ------------------------------------------------------------ store

  /**
   * Call `listener` after every change of `getSnapshot()`.
   * @param {() => void} listener
   * @returns {() => void} unsubscribe
   */
  subscribe = (listener) => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  /**
   * The current state: the same object until something changes.
   * @returns {ClientState}
   */
  getSnapshot = () => this.#state;

  /**
   * Call `listener` with each event after it is applied (once each, in seq order).
   * @param {(event: ServerEvent) => void} listener
   * @returns {() => void} unsubscribe
   */
  onEvent(listener) {
    this.#eventListeners.add(listener);
    return () => {
      this.#eventListeners.delete(listener);
    };
  }

  /** @param {Partial<ClientState>} change */
  #update(change) {
    this.#state = Object.freeze({ ...this.#state, ...change });
    for (const listener of [...this.#listeners]) listener();
  }

  // ------------------------------------------------------- connection

  /** Start (or restart after `close()`); the socket opens on the next microtask. */
  connect() {
    this.#connection.connect();
  }

  /** Stop for good: close the socket, cancel any retry, refuse pending commands. */
  close() {
    this.#connection.close();
  }

  // ---------------------------------------------------------- receive

  /** @param {unknown} data */
  #receive(data) {
    if (typeof data !== "string") return; // the server sends text only
    /** @type {ServerMessage | ServerMessage[]} */
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return; // not from a dagstream server: nothing to apply
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    /** @type {ServerEvent[]} */
    const fresh = [];
    for (const message of messages) {
      if ("seq" in message && message.type !== "snapshot") {
        this.#take(message, fresh);
      } else {
        this.#flush(fresh);
        this.#handle(/** @type {ServerReply} */ (message));
      }
    }
    this.#flush(fresh);
  }

  /**
   * An event: keep it if it is the next one; drop an old one; resync on a gap.
   * @param {ServerEvent} event
   * @param {ServerEvent[]} fresh events accepted in this frame so far
   */
  #take(event, fresh) {
    const last = fresh.length ? fresh[fresh.length - 1].seq : this.#state.lastSeq;
    if (this.#state.dag === null || last === null) return; // no base state yet
    if (event.seq <= last) return; // seen already
    if (event.seq > last + 1) {
      // Never apply out of order: ask for what is missing (the server replays it).
      if (!this.#resyncing) {
        this.#resyncing = true;
        this.#flush(fresh);
        this.#resync();
      }
      return;
    }
    this.#resyncing = false;
    fresh.push(event);
  }

  /**
   * Apply the accepted events at once: one new state, one notification.
   * @param {ServerEvent[]} fresh
   */
  #flush(fresh) {
    if (fresh.length === 0 || this.#state.dag === null) return;
    const events = fresh.splice(0);
    this.#update({
      dag: applyEvents(this.#state.dag, events),
      lastSeq: events[events.length - 1].seq,
    });
    for (const event of events) for (const listener of [...this.#eventListeners]) listener(event);
  }

  /** Ask the server to replay after `lastSeq`; if that fails, reconnect (which resumes too). */
  #resync() {
    const socket = this.#connection.socket;
    const lastSeq = /** @type {number} */ (this.#state.lastSeq);
    this.send({ type: "resume", last_seq: lastSeq }).catch(() => {
      if (socket !== null && socket === this.#connection.socket) {
        this.#connection.reconnect("resync", "could not resync");
      }
    });
  }

  /** @param {ServerReply} message a reply (no seq), or a snapshot: events never come here */
  #handle(message) {
    switch (message.type) {
      case "snapshot":
        this.#resyncing = false;
        this.#update({ dag: fromSnapshot(message.dag), lastSeq: message.seq });
        break;
      case "ack":
        this.#pending.settle(message.id)?.resolve(message);
        break;
      case "error":
        this.#pending
          .settle(message.id)
          ?.reject(
            new CommandError(message.code, message.message, message.id ?? null, message.decision),
          );
        break;
      case "keepalive":
        break; // it arrived: that is all it says
      default: {
        /** @type {never} */
        const unknown = message;
        void unknown; // a newer server's message: ignored
      }
    }
  }

  // ------------------------------------------------------------- send

  /**
   * Send a command; resolved by its `ack`, rejected with a `CommandError` carrying the
   * server's error `code`. Without an `id` it gets a fresh one. Never queued: when the
   * socket is not open it rejects at once (`disconnected`), and a disconnect before the
   * reply rejects it too.
   * @param {ClientCommand} command
   * @returns {Promise<Ack>}
   */
  send(command) {
    const id = command.id ?? newCommandId();
    const socket = this.#connection.socket;
    if (socket === null || socket.readyState !== socket.OPEN || this.#state.status !== "open") {
      return Promise.reject(
        new CommandError("disconnected", "Not connected: the command was not sent.", id),
      );
    }
    if (this.#pending.has(id)) {
      return Promise.reject(
        new CommandError("invalid_message", `Command id ${id} is already waiting for a reply.`, id),
      );
    }
    return new Promise((resolve, reject) => {
      this.#pending.add(id, { resolve, reject });
      socket.send(JSON.stringify({ ...command, id }));
    });
  }

  /**
   * Decide the gate at `nodeId` (`modify` needs feedback).
   * @param {string} nodeId
   * @param {Decision} decision
   * @param {string} [feedback]
   * @returns {Promise<Ack>}
   */
  decide(nodeId, decision, feedback) {
    return this.send(
      feedback === undefined
        ? { type: "human_decision", node_id: nodeId, decision }
        : { type: "human_decision", node_id: nodeId, decision, feedback },
    );
  }

  /** @returns {Promise<Ack>} */
  pause() {
    return this.send({ type: "pause_execution" });
  }

  /** Resume a paused run (`resume_execution`; the protocol's `resume` is the client's own). */
  resume() {
    return this.send({ type: "resume_execution" });
  }

  /** @returns {Promise<Ack>} */
  cancel() {
    return this.send({ type: "cancel_execution" });
  }
}
