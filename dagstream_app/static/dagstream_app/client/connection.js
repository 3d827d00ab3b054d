// The connection state machine behind a DagStreamClient: one socket at a time,
// opened with a fresh ticket and resuming from the last seq, reconnected with
// full-jitter backoff (backoff.js, shared with the dashboard) after a close that
// is not terminal or a silence longer than the keep-alives allow, and stopped for
// good by a terminal close code, a refused ticket or `close()`.

import { backoffDelay } from "./backoff.js";
import { isTicketRefused, socketBase, socketPath } from "./options.js";
import {
  CLOSE_ABNORMAL,
  HANDSHAKE_SECONDS,
  KEEPALIVE_MISSES,
  TERMINAL_CLOSE_CODES,
  closedState,
  neverOpened,
  noAnswer,
  reasonOf,
  reconnectingState,
} from "./status.js";

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
  /** @type {WebSocket | null} */
  #socket = null;
  #attempt = 0;
  #running = false;
  /** Bumped on every (re)start and stop: callbacks of older connections do nothing. */
  #generation = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer = undefined;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #silenceTimer = undefined;
  /** @type {ConnectionTarget} */
  #target;
  /** @type {ConnectionHooks} */
  #hooks;

  /**
   * @param {ConnectionTarget} target
   * @param {ConnectionHooks} hooks
   */
  constructor(target, hooks) {
    this.#target = target;
    this.#hooks = hooks;
  }

  /** The current socket (open or not), or null between connections. */
  get socket() {
    return this.#socket;
  }

  /** Start (or restart after `close()`); the socket opens on the next microtask. */
  connect() {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    const generation = ++this.#generation;
    this.#hooks.update({ status: "connecting", retryDelay: null });
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
    this.#hooks.update(closedState(1000, "closed by the app"));
  }

  /**
   * Give up on the current socket at once and reconnect after a backoff delay.
   * @param {string} why what ended it, for the commands it refuses.
   * @param {string} reason the close reason, for people.
   */
  reconnect(why, reason) {
    this.#drop(why);
    this.#retry(CLOSE_ABNORMAL, reason);
  }

  /** @param {number} generation */
  async #open(generation) {
    /** @type {string | null} */
    let ticket = null;
    if (this.#target.options.ticket) {
      try {
        ticket = await this.#target.options.ticket();
      } catch (error) {
        if (generation !== this.#generation) return;
        if (isTicketRefused(error)) {
          this.#running = false;
          this.#hooks.update(closedState(null, reasonOf(error)));
        } else {
          this.#retry(CLOSE_ABNORMAL, reasonOf(error));
        }
        return;
      }
      if (generation !== this.#generation) return;
    }
    const { dagId, options } = this.#target;
    const path = socketPath(dagId, options, this.#hooks.lastSeq(), ticket);
    const Socket = options.WebSocket ?? globalThis.WebSocket;
    /** @type {WebSocket} */
    let socket;
    /** Where it connects, for people (without the query: it may hold a ticket). */
    let where = "";
    try {
      where = socketBase(options.baseUrl) + path.split("?")[0];
      socket = new Socket(socketBase(options.baseUrl) + path);
    } catch (error) {
      // No server to name (outside a page without baseUrl), or a URL the browser refuses.
      this.#running = false;
      this.#hooks.update(closedState(null, reasonOf(error)));
      return;
    }
    this.#socket = socket;
    this.#hooks.started();
    // Errors are followed by a close, which is handled; a socket dropped while
    // connecting reports one too (and Node's ws throws one nobody listens to).
    socket.onerror = () => {};
    let opened = false;
    // A handshake nobody answers (a dev server that is not dagstream): say so, retry.
    const handshake = options.handshakeSeconds ?? HANDSHAKE_SECONDS;
    this.#expect(generation, handshake, "no answer to the handshake", noAnswer(where, handshake));
    socket.onopen = () => {
      if (generation !== this.#generation) return;
      opened = true;
      this.#expectMessages(generation);
      this.#hooks.update({ status: "open", retryDelay: null });
    };
    socket.onmessage = (message) => {
      if (generation !== this.#generation) return;
      this.#attempt = 0; // it works: the next failure starts the backoff afresh
      this.#expectMessages(generation);
      this.#hooks.receive(message.data);
    };
    socket.onclose = (closed) => {
      if (generation !== this.#generation) return;
      this.#socket = null;
      this.#drop(`connection closed (${closed.code})`);
      if (TERMINAL_CLOSE_CODES.includes(closed.code)) {
        this.#running = false;
        this.#generation++;
        this.#hooks.update(closedState(closed.code, closed.reason));
      } else if (!opened && closed.code === CLOSE_ABNORMAL) {
        this.#retry(closed.code, closed.reason || neverOpened(where));
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
    const { random, backoff } = this.#target.options;
    const delay = backoffDelay(this.#attempt++, random, backoff);
    this.#hooks.update(reconnectingState(code, reason, delay));
    this.#retryTimer = setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#hooks.update({ retryDelay: null });
      void this.#open(generation);
    }, delay);
  }

  /**
   * (Re)arm the dead-connection timer: silence past 2.5 keep-alive intervals ends it.
   * @param {number} generation
   */
  #expectMessages(generation) {
    const seconds = KEEPALIVE_MISSES * (this.#target.options.keepaliveSeconds ?? 20);
    // A dead TCP connection may take minutes to report its close: do not wait.
    this.#expect(
      generation,
      seconds,
      "no message, not even a keep-alive",
      `nothing received for ${seconds} s`,
    );
  }

  /**
   * (Re)arm the timer that gives the socket up after `seconds` with nothing heard.
   * @param {number} generation
   * @param {number} seconds
   * @param {string} why what ended it, for the commands it refuses.
   * @param {string} reason the close reason, for people.
   */
  #expect(generation, seconds, why, reason) {
    clearTimeout(this.#silenceTimer);
    this.#silenceTimer = setTimeout(() => {
      if (generation === this.#generation) this.reconnect(why, reason);
    }, seconds * 1000);
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
    this.#hooks.dropped(why);
  }
}
