// A scripted dagstream server on 127.0.0.1 for the client's tests: each test
// says what the server sends and reads what the client sent. Every wait is on
// an event (a connection, a frame, a state), bounded by WAIT_MS.
import assert from "node:assert/strict";
import { once } from "node:events";
import { WebSocket, WebSocketServer } from "ws";

export const WAIT_MS = 5000;

/**
 * Resolve with `promise`, or fail after WAIT_MS naming what was awaited.
 * @template T
 * @param {Promise<T>} promise
 * @param {string} what
 * @returns {Promise<T>}
 */
export function within(promise, what) {
  /** @type {ReturnType<typeof setTimeout>} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A queue whose `next()` waits for the next pushed item. */
class Queue {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(what) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return within(new Promise((resolve) => this.waiters.push(resolve)), what);
  }
}

/** One client connection as the server sees it. */
export class Connection {
  constructor(socket, request) {
    this.socket = socket;
    this.url = new URL(request.url, "http://127.0.0.1");
    this.origin = request.headers.origin;
    this.frames = new Queue();
    this.closed = new Promise((resolve) => socket.on("close", (code) => resolve(code)));
    socket.on("message", (data) => this.frames.push(JSON.parse(String(data))));
  }

  /** The query parameter `name`, or null. */
  param(name) {
    return this.url.searchParams.get(name);
  }

  /** Send messages: each object as a frame, or an array as one batched frame. */
  send(...messages) {
    for (const message of messages) this.socket.send(JSON.stringify(message));
  }

  /** The next command the client sent. */
  next() {
    return this.frames.next("a frame from the client");
  }

  close(code, reason = "") {
    this.socket.close(code, reason);
  }

  /** Drop the TCP connection without a close frame (a network failure). */
  cut() {
    this.socket.terminate();
  }
}

export class FakeServer {
  /** Start listening on a free port. */
  static async start() {
    const server = new FakeServer();
    await once(server.wss, "listening");
    return server;
  }

  constructor() {
    this.wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    this.connections = new Queue();
    this.count = 0;
    this.wss.on("connection", (socket, request) => {
      this.count += 1;
      this.connections.push(new Connection(socket, request));
    });
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.wss.address().port}`;
  }

  /** The next connection a client opens. */
  accept() {
    return this.connections.next("a connection");
  }

  /**
   * Prove that no client opened a connection since the last accept: a probe connects
   * now, and the next connection seen must be the probe's. (A client's retry would have
   * been scheduled at once, with no jitter in these tests, long before the probe.)
   */
  async assertNoOtherConnection() {
    const probe = new WebSocket(`${this.baseUrl.replace("http", "ws")}/ws/dags/probe/`);
    probe.on("error", () => {}); // closed while connecting, on failure
    try {
      const next = await this.accept();
      assert.equal(next.url.pathname, "/ws/dags/probe/", "another connection came first");
    } finally {
      probe.terminate();
    }
  }

  async stop() {
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
  }
}

/** A WebSocket class that counts the sockets made with it: `{ WebSocket, made() }`. */
export function countingWebSocket() {
  let made = 0;
  class Counted extends WebSocket {
    constructor(...args) {
      super(...args);
      made++;
    }
  }
  return { WebSocket: Counted, made: () => made };
}

/** Resolve once `client`'s state satisfies `test` (checked now and on every change). */
export function until(client, test, what = "a client state") {
  return within(
    new Promise((resolve) => {
      const check = () => {
        const state = client.getSnapshot();
        if (test(state)) {
          unsubscribe();
          resolve(state);
        }
      };
      const unsubscribe = client.subscribe(check);
      check();
    }),
    what,
  );
}

/** A DAG snapshot as the server sends it, at `seq`, with nodes `ids` (all pending). */
export function snapshot(seq, ids = ["a", "b"], dagId = "d-1") {
  return {
    type: "snapshot",
    seq,
    dag: {
      dag_id: dagId,
      name: "test",
      status: "running",
      budget: null,
      spent: 0,
      remaining: null,
      results: null,
      last_seq: seq,
      created_at: "2026-01-01T00:00:00.000Z",
      finished_at: null,
      nodes: ids.map((id) => ({
        id,
        label: id.toUpperCase(),
        status: "pending",
        output: null,
        metrics: {},
        started_at: null,
        finished_at: null,
      })),
      edges: ids.slice(1).map((id, i) => ({ from: ids[i], to: id })),
      gates: [],
    },
  };
}

/** A node_state event at `seq`. */
export function nodeState(seq, nodeId, status, extra = {}, dagId = "d-1") {
  return {
    type: "node_state",
    dag_id: dagId,
    seq,
    ts: `2026-01-01T00:00:${String(seq % 60).padStart(2, "0")}.000Z`,
    node_id: nodeId,
    status,
    ...extra,
  };
}
