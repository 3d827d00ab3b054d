// The state store: each event type applied as a delta to frozen snapshots that
// share what did not change. (tests/test_js_client.py also checks it against the
// server's own snapshot after a real run.)
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  EVENT_REDUCERS,
  applyEvent,
  applyEvents,
  deepFreeze,
  fromSnapshot,
} from "../../../dagstream_app/static/dagstream_app/client/store.js";
import { nodeState, snapshot } from "../support/fake-server.js";

const base = () => fromSnapshot(snapshot(3, ["a", "b", "c"]).dag);
const at = (seq) => `2026-01-01T00:00:${String(seq).padStart(2, "0")}.000Z`;
/** An event of `type` at `seq` with its fields. */
const event = (seq, type, fields) => ({ type, dag_id: "d-1", seq, ts: at(seq), ...fields });

describe("node_state", () => {
  test("sets status, keeps output unless sent, merges metrics, stamps start and finish", () => {
    let dag = base();
    dag = applyEvent(dag, nodeState(4, "a", "running", { metrics: { tries: 1 } }));
    assert.deepEqual(dag.nodes[0], {
      id: "a",
      label: "A",
      status: "running",
      output: null,
      metrics: { tries: 1 },
      started_at: at(4),
      finished_at: null,
    });
    dag = applyEvent(
      dag,
      nodeState(5, "a", "completed", { output: { rows: 3 }, metrics: { ms: 9 } }),
    );
    assert.deepEqual(dag.nodes[0].metrics, { tries: 1, ms: 9 });
    assert.deepEqual(dag.nodes[0].output, { rows: 3 });
    assert.equal(dag.nodes[0].started_at, at(4));
    assert.equal(dag.nodes[0].finished_at, at(5));
    dag = applyEvent(dag, nodeState(6, "a", "running"));
    assert.equal(dag.nodes[0].started_at, at(4), "a restart keeps the first start");
    assert.deepEqual(dag.nodes[0].output, { rows: 3 }, "no output sent: the old one stays");
    assert.equal(dag.last_seq, 6);
  });

  test("a node the DAG does not have changes only last_seq", () => {
    const dag = base();
    const next = applyEvent(dag, nodeState(4, "zz", "running"));
    assert.equal(next.nodes, dag.nodes);
    assert.equal(next.last_seq, 4);
  });
});

test("unchanged parts are shared and everything is frozen", () => {
  const dag = base();
  const next = applyEvent(dag, nodeState(4, "b", "running"));
  assert.notEqual(next, dag);
  assert.notEqual(next.nodes, dag.nodes);
  assert.equal(next.nodes[0], dag.nodes[0]);
  assert.equal(next.nodes[2], dag.nodes[2]);
  assert.equal(next.edges, dag.edges);
  assert.equal(next.gates, dag.gates);
  assert.equal(dag.nodes[1].status, "pending", "the old snapshot is untouched");
  for (const value of [next, next.nodes, next.nodes[1], next.nodes[1].metrics, next.edges]) {
    assert.ok(Object.isFrozen(value));
  }
  assert.throws(() => {
    next.nodes[1].status = "failed";
  }, TypeError);
  assert.equal(applyEvents(dag, []), dag, "no events: the same snapshot");
});

test("a batch copies each list once and applies in order", () => {
  const dag = base();
  const next = applyEvents(dag, [
    nodeState(4, "a", "running"),
    nodeState(5, "b", "running"),
    nodeState(6, "a", "completed"),
  ]);
  assert.deepEqual(
    next.nodes.map((n) => n.status),
    ["completed", "running", "pending"],
  );
  assert.equal(next.last_seq, 6);
});

test("dag_mutated: add, replace, remove nodes and edges", () => {
  let dag = base();
  const mutate = (seq, mutation) => {
    dag = applyEvent(dag, event(seq, "dag_mutated", { mutation }));
  };
  mutate(4, { op: "add_node", node: { id: "d", label: "D" } });
  mutate(5, { op: "add_edge", from: "c", to: "d" });
  mutate(6, { op: "add_edge", from: "c", to: "d" }); // already there: no copy
  assert.deepEqual(
    dag.nodes.map((n) => n.id),
    ["a", "b", "c", "d"],
  );
  assert.deepEqual(dag.nodes[3], {
    id: "d",
    label: "D",
    status: "pending",
    output: null,
    metrics: {},
    started_at: null,
    finished_at: null,
  });
  assert.deepEqual(dag.edges, [
    { from: "a", to: "b" },
    { from: "b", to: "c" },
    { from: "c", to: "d" },
  ]);
  mutate(7, { op: "remove_edge", from: "a", to: "b" });
  mutate(8, {
    op: "remove_node",
    node_id: "c",
    edges: [
      { from: "b", to: "c" },
      { from: "c", to: "d" },
    ],
  });
  assert.deepEqual(
    dag.nodes.map((n) => n.id),
    ["a", "b", "d"],
  );
  assert.deepEqual(dag.edges, [], "a removed node takes its edges along");
  dag = applyEvent(dag, nodeState(9, "d", "running"));
  assert.equal(dag.nodes[2].status, "running", "positions are right after a removal");
  mutate(10, { op: "add_node", node: { id: "c" } });
  assert.deepEqual(
    dag.nodes.map((n) => [n.id, n.label]),
    [
      ["a", "A"],
      ["b", "B"],
      ["d", "D"],
      ["c", ""],
    ],
  );
  assert.equal(dag.last_seq, 10);
});

test("cost_update: totals, and remaining from the budget", () => {
  let dag = applyEvent(base(), event(4, "cost_update", { spent: 1.5, budget: 4, remaining: 2.5 }));
  assert.deepEqual([dag.spent, dag.budget, dag.remaining], [1.5, 4, 2.5]);
  dag = applyEvent(dag, event(5, "cost_update", { spent: 2, budget: null, remaining: null }));
  assert.deepEqual([dag.spent, dag.budget, dag.remaining], [2, null, null]);
});

test("gates: waiting, then decided, in the order they opened", () => {
  let dag = base();
  dag = applyEvent(
    dag,
    event(4, "human_gate_waiting", { node_id: "b", presentation: { title: "Ship?" } }),
  );
  dag = applyEvent(dag, event(5, "human_gate_waiting", { node_id: "c", presentation: {} }));
  assert.deepEqual(dag.gates[0], {
    node_id: "b",
    presentation: { title: "Ship?" },
    status: "pending",
    decision: null,
    feedback: "",
    decided_by: "",
    decided_at: null,
    assignees: [],
    quorum: 1,
    votes: [],
  });
  dag = applyEvent(
    dag,
    event(6, "gate_decided", {
      node_id: "b",
      decision: "modify",
      feedback: "less",
      decided_by: "ann",
    }),
  );
  assert.deepEqual(dag.gates[0], {
    node_id: "b",
    presentation: { title: "Ship?" },
    status: "modified",
    decision: "modify",
    feedback: "less",
    decided_by: "ann",
    decided_at: at(6),
    assignees: [],
    quorum: 1,
    votes: [],
  });
  assert.deepEqual(
    dag.gates.map((g) => g.node_id),
    ["b", "c"],
  );
});

test("gate_voted: each vote is kept, once, and the decision keeps them all", () => {
  let dag = applyEvent(
    base(),
    event(4, "human_gate_waiting", {
      node_id: "b",
      presentation: {},
      assignees: ["ann", "group:ops"],
      quorum: 2,
    }),
  );
  const vote = event(5, "gate_voted", {
    node_id: "b",
    voter: "ann",
    decision: "approve",
    approvals: 1,
    quorum: 2,
  });
  dag = applyEvents(dag, [vote, vote]); // a repeat counts once
  assert.deepEqual(
    [dag.gates[0].status, dag.gates[0].assignees, dag.gates[0].quorum],
    ["pending", ["ann", "group:ops"], 2],
  );
  assert.deepEqual(dag.gates[0].votes, [
    { voter: "ann", decision: "approve", feedback: "", at: at(5) },
  ]);
  dag = applyEvent(
    dag,
    event(6, "gate_decided", { node_id: "b", decision: "approve", decided_by: "ann, olga" }),
  );
  assert.deepEqual(
    [dag.gates[0].status, dag.gates[0].votes.length, dag.gates[0].quorum],
    ["approved", 1, 2],
  );
  assert.ok(Object.isFrozen(dag.gates[0].votes));
});

test("gate_closed: the run ended, its pending gate closes undecided", () => {
  let dag = applyEvent(
    base(),
    event(4, "human_gate_waiting", { node_id: "b", presentation: { title: "Ship?" } }),
  );
  dag = applyEvents(dag, [
    event(5, "gate_closed", { node_id: "b", reason: "cancelled" }),
    event(6, "execution_state", { state: "cancelled" }),
  ]);
  assert.deepEqual(dag.gates, [
    {
      node_id: "b",
      presentation: { title: "Ship?" },
      status: "closed",
      decision: null,
      feedback: "",
      decided_by: "",
      decided_at: at(5),
      assignees: [],
      quorum: 1,
      votes: [],
    },
  ]);
  assert.ok(Object.isFrozen(dag.gates[0]));
  assert.deepEqual([dag.status, dag.finished_at], ["cancelled", at(6)]);
});

test("execution_state and execution_complete: status, finish time, results", () => {
  let dag = applyEvent(base(), event(4, "execution_state", { state: "paused" }));
  assert.deepEqual([dag.status, dag.finished_at], ["paused", null]);
  dag = applyEvents(dag, [
    event(5, "execution_complete", { results: { rows: 3 } }),
    event(6, "execution_state", { state: "completed" }),
  ]);
  assert.deepEqual([dag.status, dag.finished_at, dag.results], ["completed", at(6), { rows: 3 }]);
  assert.ok(Object.isFrozen(dag.results));
});

test("edge_active and error events change nothing but last_seq", () => {
  const dag = base();
  const next = applyEvents(dag, [
    event(4, "edge_active", { from: "a", to: "b" }),
    event(5, "error", { message: "flaky", node_id: "a" }),
  ]);
  assert.deepEqual({ ...next, last_seq: 3 }, { ...dag });
  assert.equal(next.last_seq, 5);
});

test("a new event type is one more entry in EVENT_REDUCERS", () => {
  const dag = base();
  const checkpoint = event(4, "checkpoint", { label: "half way" });
  assert.equal(applyEvent(dag, checkpoint).results, null, "without an entry: only the seq");
  EVENT_REDUCERS.checkpoint = (draft, e) => {
    draft.dag.results = deepFreeze({ checkpoint: e.label });
  };
  try {
    const next = applyEvent(dag, checkpoint);
    assert.deepEqual([next.results, next.last_seq], [{ checkpoint: "half way" }, 4]);
    assert.equal(next.nodes, dag.nodes);
  } finally {
    delete EVENT_REDUCERS.checkpoint;
  }
});

test("an event type named like an Object property is not applied", () => {
  const dag = base();
  const next = applyEvent(dag, event(4, "toString", {}));
  assert.deepEqual({ ...next, last_seq: 3 }, { ...dag });
});
