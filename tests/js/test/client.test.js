// DagStreamClient against a scripted server: resume and exactly-once delivery,
// reconnects and terminal closes, commands as promises, dead-connection detection,
// tickets. The backoff's jitter is 0 here (random: () => 0), so a retry is immediate.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, afterEach, before, describe, test } from "node:test";
import { WebSocket } from "ws";

import {
  CommandError,
  DagStreamClient,
  backoffDelay,
} from "../../../dagstream_app/static/dagstream_app/client/client.js";
import {
  FakeServer,
  countingWebSocket,
  nodeState,
  snapshot,
  until,
} from "../support/fake-server.js";

/** @type {FakeServer} */
let server;
/** @type {DagStreamClient[]} */
const clients = [];

before(async () => {
  server = await FakeServer.start();
});
after(() => server.stop());
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function connect(options = {}) {
  const client = new DagStreamClient("d-1", {
    baseUrl: server.baseUrl,
    WebSocket,
    random: () => 0,
    ...options,
  });
  clients.push(client);
  client.connect();
  return client;
}

/** Connect, and answer with a snapshot at `seq`. */
async function opened(seq = 1, options = {}) {
  const client = connect(options);
  const conn = await server.accept();
  conn.send(snapshot(seq));
  await until(client, (s) => s.status === "open" && s.lastSeq === seq, "the snapshot");
  return { client, conn };
}

const statuses = (client) => client.getSnapshot().dag.nodes.map((n) => n.status);

describe("backoff", () => {
  test("full jitter below a ceiling that doubles from 1 s to a 30 s cap", () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelay(n, () => 0.999999));
    assert.deepEqual(ceilings, [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
    assert.equal(
      backoffDelay(3, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(2, () => 0.5),
      2000,
    );
    assert.equal(
      backoffDelay(1, () => 0.5, { initialMs: 100, maxMs: 150 }),
      75,
    );
  });
});

describe("the state store over the wire", () => {
  test("connects to the DAG's endpoint with batching, then applies the snapshot", async () => {
    const client = connect();
    assert.equal(client.getSnapshot().status, "connecting");
    const conn = await server.accept();
    assert.equal(conn.url.pathname, "/ws/dags/d-1/");
    assert.equal(conn.param("batch"), "1");
    assert.equal(conn.param("last_seq"), null);
    conn.send(snapshot(4));
    const state = await until(client, (s) => s.dag !== null);
    assert.equal(state.status, "open");
    assert.equal(state.lastSeq, 4);
    assert.deepEqual(state.dag, snapshot(4).dag);
    assert.ok(Object.isFrozen(state));
  });

  test("every event once, in order: old seqs dropped, batches applied at once", async () => {
    const { client, conn } = await opened(1);
    const seen = [];
    client.onEvent((e) => seen.push(e.seq));
    let notified = 0;
    client.subscribe(() => notified++);
    conn.send([
      nodeState(2, "a", "running"),
      nodeState(3, "a", "completed"),
      nodeState(2, "a", "running"),
    ]);
    await until(client, (s) => s.lastSeq === 3);
    assert.equal(notified, 1, "one batch, one new state");
    conn.send(
      nodeState(3, "a", "completed"),
      nodeState(1, "b", "failed"),
      nodeState(4, "b", "running"),
    );
    await until(client, (s) => s.lastSeq === 4);
    assert.deepEqual(seen, [2, 3, 4]);
    assert.deepEqual(statuses(client), ["completed", "running"]);
  });

  test("a gap is never applied: the client resumes and takes the replay", async () => {
    const { client, conn } = await opened(1);
    conn.send(
      nodeState(2, "a", "running"),
      nodeState(4, "b", "running"),
      nodeState(5, "b", "completed"),
    );
    const resume = await conn.next();
    assert.equal(resume.type, "resume");
    assert.equal(resume.last_seq, 2);
    assert.equal(client.getSnapshot().lastSeq, 2, "4 and 5 wait for 3");
    conn.send(
      nodeState(3, "a", "completed"),
      nodeState(4, "b", "running"),
      nodeState(5, "b", "completed"),
    );
    conn.send({ type: "ack", id: resume.id });
    await until(client, (s) => s.lastSeq === 5);
    assert.deepEqual(statuses(client), ["completed", "completed"]);
  });

  test("a snapshot replaces the state (a resume the server answers that way)", async () => {
    const { client, conn } = await opened(1);
    conn.send(snapshot(9, ["x"]));
    const state = await until(client, (s) => s.lastSeq === 9);
    assert.deepEqual(
      state.dag.nodes.map((n) => n.id),
      ["x"],
    );
  });
});

describe("reconnecting", () => {
  for (const [code, how] of [
    [1011, "server error"],
    [1012, "restart"],
    [4013, "too far behind"],
    [1006, "network loss"],
  ]) {
    test(`on ${code} (${how}) it reconnects and resumes from the last seq`, async () => {
      const { client, conn } = await opened(1);
      conn.send(nodeState(2, "a", "running"));
      await until(client, (s) => s.lastSeq === 2);
      if (code === 1006) conn.cut();
      else conn.close(code, how);
      const state = await until(client, (s) => s.status === "reconnecting");
      assert.equal(state.closeCode, code);
      const again = await server.accept();
      assert.equal(again.param("last_seq"), "2");
      await until(client, (s) => s.status === "open");
      again.send(nodeState(2, "a", "running"), nodeState(3, "a", "completed"));
      await until(client, (s) => s.lastSeq === 3);
      assert.deepEqual(statuses(client), ["completed", "pending"]);
    });
  }

  test("attempts back off while the server is unreachable", async () => {
    const delays = [];
    const down = new DagStreamClient("d-1", {
      baseUrl: "http://127.0.0.1:9", // nothing listens there
      WebSocket,
      random: () => 0.5,
      backoff: { initialMs: 2, maxMs: 16 },
    });
    clients.push(down);
    down.subscribe(() => {
      const { retryDelay } = down.getSnapshot();
      if (retryDelay !== null) delays.push(retryDelay);
    });
    down.connect();
    await until(down, () => delays.length >= 5, "five attempts");
    assert.deepEqual(delays.slice(0, 5), [1, 2, 4, 8, 8]);
    assert.equal(down.getSnapshot().status, "reconnecting");
  });

  test("a server that is not there: the status says where and what to check", async () => {
    const down = new DagStreamClient("d-1", {
      baseUrl: "http://127.0.0.1:9", // nothing listens there
      WebSocket,
      random: () => 0.5,
      backoff: { initialMs: 2000, maxMs: 2000 },
    });
    clients.push(down);
    down.connect();
    const state = await until(down, (s) => s.status === "reconnecting");
    assert.equal(state.closeCode, 1006);
    assert.equal(
      state.closeReason,
      "Could not connect to ws://127.0.0.1:9/ws/dags/d-1/: the server is down, or refused " +
        "this page's origin (ALLOWED_HOSTS, DAGSTREAM ALLOWED_ORIGINS; " +
        "see docs/client.md#authentication).",
    );
  });

  test("a handshake nobody answers (a dev server that is not dagstream) is said so", async () => {
    const silent = createServer(() => {}); // takes the connection, never answers
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    const { port } = /** @type {import("node:net").AddressInfo} */ (silent.address());
    try {
      const client = connect({
        baseUrl: `http://127.0.0.1:${port}`,
        handshakeSeconds: 0.2,
        backoff: { initialMs: 2000, maxMs: 2000 },
        random: () => 0.5,
      });
      assert.equal(client.getSnapshot().status, "connecting");
      const state = await until(client, (s) => s.status === "reconnecting");
      assert.equal(state.closeCode, 1006);
      assert.match(
        state.closeReason,
        new RegExp(
          `^No answer from ws://127\\.0\\.0\\.1:${port}/ws/dags/d-1/ in 0\\.2 s: ` +
            "is dagstream served there\\? A dev server must proxy /ws/ to Django",
        ),
      );
    } finally {
      for (const client of clients.splice(0)) client.close();
      silent.close();
    }
  });

  test("the backoff starts afresh once a connection delivers a message", async () => {
    const delays = [];
    const client = connect({ random: () => 0.5, backoff: { initialMs: 20, maxMs: 1000 } });
    client.subscribe(() => {
      const { retryDelay } = client.getSnapshot();
      if (retryDelay !== null) delays.push(retryDelay);
    });
    (await server.accept()).close(1011); // open, then closed before any message
    (await server.accept()).close(1011);
    const third = await server.accept();
    third.send(snapshot(1));
    await until(client, (s) => s.lastSeq === 1);
    third.close(1011);
    await server.accept();
    assert.deepEqual(delays, [10, 20, 10]);
  });

  for (const code of [4001, 4003, 4004]) {
    test(`never on ${code}: closed, with the code, and nothing scheduled`, async () => {
      const { client, conn } = await opened(1);
      conn.close(code, "Not signed in: sign in to this site first.");
      const state = await until(client, (s) => s.status === "closed");
      assert.deepEqual(
        [state.closeCode, state.closeReason, state.retryDelay],
        [code, "Not signed in: sign in to this site first.", null],
      );
      assert.equal(state.lastSeq, 1, "the last state stays to be shown");
      await server.assertNoOtherConnection();
    });
  }

  test("close() stops it: no reconnect, and connect() starts again", async () => {
    const { client } = await opened(1);
    client.close();
    const state = client.getSnapshot();
    assert.deepEqual([state.status, state.closeCode], ["closed", 1000]);
    client.connect();
    const again = await server.accept();
    assert.equal(again.param("last_seq"), "1");
  });

  test("close() right after connect() opens no socket (React strict mode)", async () => {
    const counted = countingWebSocket();
    const client = connect({ WebSocket: counted.WebSocket });
    client.close();
    client.connect();
    await server.accept();
    await server.assertNoOtherConnection();
    assert.equal(counted.made(), 1, "one socket, not two");
  });
});

describe("commands", () => {
  test("resolve with their ack, each with a fresh id", async () => {
    const { client, conn } = await opened(1);
    const done = client.decide("b", "approve", "fine");
    const frame = await conn.next();
    assert.deepEqual(
      { ...frame, id: "x" },
      {
        type: "human_decision",
        node_id: "b",
        decision: "approve",
        feedback: "fine",
        id: "x",
      },
    );
    assert.match(frame.id, /^c-[0-9a-f]{24}$/);
    conn.send({ type: "ack", id: frame.id });
    assert.deepEqual(await done, { type: "ack", id: frame.id });
    const pause = client.pause();
    const second = await conn.next();
    assert.equal(second.type, "pause_execution");
    assert.notEqual(second.id, frame.id);
    conn.send({ type: "ack", id: second.id });
    await pause;
  });

  test("reject with the server's code and message (and who decided first)", async () => {
    const { client, conn } = await opened(1);
    const done = client.decide("b", "reject");
    const frame = await conn.next();
    const decision = { node_id: "b", status: "approved", decision: "approve", decided_by: "ann" };
    conn.send({
      type: "error",
      code: "conflict",
      message: "Already decided.",
      id: frame.id,
      decision,
    });
    await assert.rejects(done, (error) => {
      assert.ok(error instanceof CommandError);
      assert.deepEqual(
        [error.code, error.message, error.id],
        ["conflict", "Already decided.", frame.id],
      );
      assert.deepEqual(error.decision, decision);
      return true;
    });
  });

  test("a reply without an id answers the oldest command (rate_limited)", async () => {
    const { client, conn } = await opened(1);
    const first = client.cancel();
    const second = client.send({ type: "resume_execution", id: 7 });
    const [a, b] = [await conn.next(), await conn.next()];
    assert.deepEqual([a.type, b.type, b.id], ["cancel_execution", "resume_execution", 7]);
    conn.send({ type: "error", code: "rate_limited", message: "Too many messages; slow down." });
    conn.send({ type: "ack", id: 7 });
    await assert.rejects(first, { code: "rate_limited" });
    assert.deepEqual(await second, { type: "ack", id: 7 });
  });

  test("are never queued: sent while disconnected they reject at once", async () => {
    const client = connect();
    await assert.rejects(client.pause(), { code: "disconnected", message: /not sent/ });
    const conn = await server.accept();
    conn.send(snapshot(1));
    await until(client, (s) => s.status === "open");
    const later = client.cancel();
    const first = await conn.next();
    assert.equal(first.type, "cancel_execution", "the refused pause never reaches the server");
    conn.send({ type: "ack", id: first.id });
    await later;
  });

  test("a disconnect before the reply rejects, and the command is not resent", async () => {
    const { client, conn } = await opened(1);
    const done = client.decide("b", "approve");
    const sent = await conn.next();
    conn.close(1012, "restart");
    await assert.rejects(
      done,
      (error) => error.code === "disconnected" && /same id/.test(error.message),
    );
    const again = await server.accept();
    again.send(snapshot(1));
    await until(client, (s) => s.status === "open");
    // Resent by the app with the same id: the server applies it at most once.
    const retried = client.send({
      type: "human_decision",
      node_id: "b",
      decision: "approve",
      id: sent.id,
    });
    const frame = await again.next();
    assert.equal(frame.id, sent.id);
    again.send({ type: "ack", id: sent.id });
    await retried;
  });
});

describe("a silently dead connection", () => {
  test("keep-alives keep it; their absence for 2.5 intervals ends it and resumes", async () => {
    const { client, conn } = await opened(1, { keepaliveSeconds: 0.2 });
    const connections = server.count;
    const start = Date.now();
    // Keep-alives every 0.1 s for 0.8 s: more than 2.5 intervals in all, never silent.
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // the server's pace
      conn.send({ type: "keepalive" });
    }
    assert.equal(client.getSnapshot().status, "open");
    assert.equal(server.count, connections, "still the first connection");
    // Now the server goes silent without closing (a dead TCP peer).
    const again = await server.accept();
    const silentFor = Date.now() - start;
    assert.ok(silentFor >= 800 + 500, `reconnected after ${silentFor} ms`);
    assert.equal(again.param("last_seq"), "1");
    assert.equal(client.getSnapshot().closeCode, 1006);
  });
});

describe("tickets", () => {
  test("a fresh ticket for every attempt, in the URL", async () => {
    let issued = 0;
    const client = connect({ ticket: async () => `dgt_${++issued}` });
    const first = await server.accept();
    assert.equal(first.param("ticket"), "dgt_1");
    first.send(snapshot(3));
    await until(client, (s) => s.lastSeq === 3);
    first.close(1011);
    const second = await server.accept();
    assert.equal(second.param("ticket"), "dgt_2");
    assert.equal(second.param("last_seq"), "3");
  });

  test("a refused ticket request (401/403/404) stops; other failures retry", async () => {
    let calls = 0;
    const refused = connect({
      ticket: async () => {
        calls++;
        if (calls === 1) throw new Error("network down");
        throw Object.assign(new Error("Ticket request failed: HTTP 403."), { status: 403 });
      },
    });
    const state = await until(refused, (s) => s.status === "closed");
    assert.equal(calls, 2);
    assert.match(state.closeReason, /403/);
  });
});
