// DagStreamClient: one DAG's live state over dagstream's WebSocket protocol v1
// (docs/protocol.md), for browsers and Node. No build step, no dependencies.
//
// It keeps the state store (snapshot, then every event applied once, in seq
// order), reconnects with full-jitter backoff (backoff.js, shared with the
// dashboard) and resumes with last_seq, sends commands as promises, and tells an
// app honestly how its connection is.

import { backoffDelay } from "./backoff.js";
import { applyEvents, fromSnapshot } from "./store.js";

export { backoffDelay };

/**
 * @import { Ack, ClientCommand, CommandId, DagSnapshot, Decision, ErrorCode, ErrorReply,
 *   ServerEvent, ServerMessage, ServerReply } from "./protocol.js"
 */

/** Close codes after which the client does not reconnect (docs/protocol.md). */
export const TERMINAL_CLOSE_CODES = Object.freeze([4001, 4003, 4004]);
/** HTTP statuses of a ticket request after which the client gives up. */
const TERMINAL_HTTP_STATUSES = [401, 403, 404];
/** Reconnect when nothing at all arrived for this many keep-alive intervals. */
export const KEEPALIVE_MISSES = 2.5;
/** Close code the client reports for a connection it gave up on itself (no close frame). */
export const CLOSE_ABNORMAL = 1006;

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
  constructor(code, message, id, decision = null) {
    super(message);
    this.name = "CommandError";
    this.code = code;
    this.id = id;
    this.decision = decision ?? null;
  }
}

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

/** A fresh, unguessable command id: ids are remembered per (DAG, user) for good. */
function newCommandId() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @param {string | undefined} baseUrl
 * @returns {string} the ws(s) origin and path prefix, without a trailing slash.
 */
function socketBase(baseUrl) {
  const base = baseUrl ?? globalThis.location?.origin;
  if (!base) throw new TypeError("DagStreamClient needs baseUrl outside a browser page.");
  const url = new URL(base);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.href.replace(/\/$/, "");
}

/**
 * @typedef {object} Pending
 * @property {(ack: Ack) => void} resolve
 * @property {(error: CommandError) => void} reject
 */

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
  /** @type {WebSocket | null} */
  #socket = null;
  /** @type {Map<CommandId, Pending>} replies come in the order commands were sent */
  #pending = new Map();
  #attempt = 0;
  #running = false;
  #resyncing = false;
  /** Bumped on every (re)start and stop: callbacks of older connections do nothing. */
  #generation = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer = undefined;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #silenceTimer = undefined;

  /**
   * @param {string} dagId
   * @param {ClientOptions} [options] read when each connection starts.
   */
  constructor(dagId, options = {}) {
    this.dagId = dagId;
    this.options = options;
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
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    const generation = ++this.#generation;
    this.#update({ status: "connecting", retryDelay: null });
    // Deferred: a close() in the same task (React strict mode's double mount)
    // then opens no socket at all.
    queueMicrotask(() => {
      if (generation === this.#generation) void this.#open(generation);
    });
  }

  /** Stop for good: close the socket, cancel any retry, refuse pending commands. */
  close() {
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    this.#drop("closed by the app");
    this.#update({
      status: "closed",
      closeCode: 1000,
      closeReason: "closed by the app",
      retryDelay: null,
    });
  }

  /** @param {number} generation */
  async #open(generation) {
    /** @type {string | null} */
    let ticket = null;
    if (this.options.ticket) {
      try {
        ticket = await this.options.ticket();
      } catch (error) {
        if (generation !== this.#generation) return;
        const status = /** @type {{status?: unknown}} */ (error)?.status;
        const reason = error instanceof Error ? error.message : String(error);
        if (typeof status === "number" && TERMINAL_HTTP_STATUSES.includes(status)) {
          this.#running = false;
          this.#update({
            status: "closed",
            closeCode: null,
            closeReason: reason,
            retryDelay: null,
          });
        } else {
          this.#retry(CLOSE_ABNORMAL, reason);
        }
        return;
      }
      if (generation !== this.#generation) return;
    }
    const params = new URLSearchParams();
    if (this.options.batch ?? true) params.set("batch", "1");
    if (this.#state.lastSeq !== null) params.set("last_seq", String(this.#state.lastSeq));
    if (ticket !== null) params.set("ticket", ticket);
    const path = `/ws/dags/${encodeURIComponent(this.dagId)}/?${params}`;
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    /** @type {WebSocket} */
    let socket;
    try {
      socket = new Socket(socketBase(this.options.baseUrl) + path);
    } catch (error) {
      // No server to name (outside a page without baseUrl), or a URL the browser refuses.
      this.#running = false;
      const reason = error instanceof Error ? error.message : String(error);
      this.#update({
        status: "closed",
        closeCode: null,
        closeReason: reason,
        retryDelay: null,
      });
      return;
    }
    this.#socket = socket;
    this.#resyncing = false;
    // Errors are followed by a close, which is handled; a socket dropped while
    // connecting reports one too (and Node's ws throws one nobody listens to).
    socket.onerror = () => {};
    this.#expectMessages(generation); // a handshake that hangs counts as silence too
    socket.onopen = () => {
      if (generation !== this.#generation) return;
      this.#expectMessages(generation);
      this.#update({ status: "open", retryDelay: null });
    };
    socket.onmessage = (message) => {
      if (generation !== this.#generation) return;
      this.#attempt = 0; // it works: the next failure starts the backoff afresh
      this.#expectMessages(generation);
      this.#receive(message.data);
    };
    socket.onclose = (closed) => {
      if (generation !== this.#generation) return;
      this.#socket = null;
      this.#drop(`connection closed (${closed.code})`);
      if (TERMINAL_CLOSE_CODES.includes(closed.code)) {
        this.#running = false;
        this.#generation++;
        this.#update({
          status: "closed",
          closeCode: closed.code,
          closeReason: closed.reason,
          retryDelay: null,
        });
      } else {
        this.#retry(closed.code, closed.reason || "connection lost");
      }
    };
  }

  /**
   * Reconnect after a full-jitter delay, resuming from `lastSeq`.
   * @param {number} code
   * @param {string} reason
   */
  #retry(code, reason) {
    const generation = ++this.#generation;
    const delay = backoffDelay(this.#attempt++, this.options.random, this.options.backoff);
    this.#update({
      status: "reconnecting",
      closeCode: code,
      closeReason: reason,
      retryDelay: delay,
    });
    this.#retryTimer = setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#update({ retryDelay: null });
      void this.#open(generation);
    }, delay);
  }

  /**
   * (Re)arm the dead-connection timer: silence past 2.5 keep-alive intervals ends it.
   * @param {number} generation
   */
  #expectMessages(generation) {
    clearTimeout(this.#silenceTimer);
    const seconds = this.options.keepaliveSeconds ?? 20;
    this.#silenceTimer = setTimeout(
      () => {
        if (generation !== this.#generation) return;
        // A dead TCP connection may take minutes to report its close: do not wait.
        this.#drop("no message, not even a keep-alive");
        this.#retry(CLOSE_ABNORMAL, `nothing received for ${KEEPALIVE_MISSES * seconds} s`);
      },
      KEEPALIVE_MISSES * seconds * 1000,
    );
  }

  /**
   * Forget the current socket and its timers; refuse every command still waiting.
   * @param {string} why
   */
  #drop(why) {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#silenceTimer);
    const socket = this.#socket;
    this.#socket = null;
    if (socket !== null) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      if (socket.readyState === socket.CONNECTING || socket.readyState === socket.OPEN) {
        socket.close(1000);
      }
    }
    const waiting = [...this.#pending];
    this.#pending.clear();
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
    const socket = this.#socket;
    const lastSeq = /** @type {number} */ (this.#state.lastSeq);
    this.send({ type: "resume", last_seq: lastSeq }).catch(() => {
      if (socket !== null && socket === this.#socket) {
        this.#drop("resync");
        this.#retry(CLOSE_ABNORMAL, "could not resync");
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
        this.#settle(message.id)?.resolve(message);
        break;
      case "error":
        this.#settle(message.id)?.reject(
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

  /**
   * The command a reply answers: by its id, else the oldest waiting (the server
   * answers each frame once, in order; `rate_limited` echoes no id).
   * @param {CommandId | null | undefined} id
   * @returns {Pending | undefined}
   */
  #settle(id) {
    const key = id ?? this.#pending.keys().next().value;
    if (key === undefined) return undefined;
    const found = this.#pending.get(key);
    this.#pending.delete(key);
    return found;
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
    const socket = this.#socket;
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
      this.#pending.set(id, { resolve, reject });
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
