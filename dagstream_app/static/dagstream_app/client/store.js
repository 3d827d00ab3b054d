// dagstream's DAG state, folded from events: the browser's side of
// dagstream_app/replay.py, one entry of EVENT_REDUCERS per event type
// (tests/test_js_client.py checks that both agree with the server's snapshot).
// Pure functions over frozen snapshots.

/**
 * @import { DagSnapshot, DagMutated, EdgeView, GateView, NodeView, ServerEvent }
 *   from "./protocol.js"
 */

/** A node in one of these has finished: its `finished_at` is set. */
export const FINISHED_NODE_STATUSES = Object.freeze([
  "completed",
  "failed",
  "skipped",
  "cancelled",
]);
/** A run in one of these is over: nothing follows. */
export const TERMINAL_STATUSES = Object.freeze(["cancelled", "completed", "failed"]);

/** @type {Record<GateView["decision"] & string, GateView["status"]>} */
const GATE_STATUS = {
  approve: "approved",
  reject: "rejected",
  modify: "modified",
};

/** Where each node id sits in a nodes list: built once per list, on first use. */
const POSITIONS = new WeakMap(/** @type {[readonly NodeView[], Map<string, number>][]} */ ([]));

/**
 * @param {readonly NodeView[]} nodes
 * @returns {Map<string, number>}
 */
function positions(nodes) {
  let found = POSITIONS.get(nodes);
  if (found === undefined) {
    found = new Map(nodes.map((node, at) => [node.id, at]));
    POSITIONS.set(nodes, found);
  }
  return found;
}

/**
 * A list frozen, typed as the protocol's (mutable) list type.
 * @template T
 * @param {T[]} list
 * @returns {T[]}
 */
function frozen(list) {
  return /** @type {T[]} */ (Object.freeze(list));
}

/**
 * Freeze a JSON value and everything in it.
 * @template T
 * @param {T} value
 * @returns {Readonly<T>}
 */
export function deepFreeze(value) {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * A snapshot from the server, frozen: the state events are applied to.
 * @param {DagSnapshot} dag
 * @returns {DagSnapshot}
 */
export function fromSnapshot(dag) {
  return deepFreeze(dag);
}

/**
 * Apply events, in seq order, to a snapshot: a new frozen snapshot sharing
 * everything they did not change (or `dag` itself when they changed nothing).
 * Seqs are not checked here: the client drops old ones and resyncs on gaps.
 * @param {DagSnapshot} dag
 * @param {readonly ServerEvent[]} events
 * @returns {DagSnapshot}
 */
export function applyEvents(dag, events) {
  if (events.length === 0) return dag;
  const draft = new Draft(dag);
  for (const event of events) draft.apply(event);
  return draft.finish();
}

/**
 * One event: `applyEvents(dag, [event])`.
 * @param {DagSnapshot} dag
 * @param {ServerEvent} event
 * @returns {DagSnapshot}
 */
export function applyEvent(dag, event) {
  return applyEvents(dag, [event]);
}

/** Copy-on-write state of one batch of events: each list is copied at most once. */
class Draft {
  /** @param {DagSnapshot} dag */
  constructor(dag) {
    /** @type {DagSnapshot} */
    this.dag = { ...dag };
    /** @type {NodeView[] | null} */
    this.nodes = null;
    /** @type {EdgeView[] | null} */
    this.edges = null;
    /** @type {GateView[] | null} */
    this.gates = null;
  }

  /** @returns {NodeView[]} */
  ownNodes() {
    if (this.nodes === null) {
      this.nodes = [...this.dag.nodes];
      POSITIONS.set(this.nodes, new Map(positions(this.dag.nodes))); // same places
    }
    return this.nodes;
  }

  /** @returns {EdgeView[]} */
  ownEdges() {
    return (this.edges ??= [...this.dag.edges]);
  }

  /** @returns {GateView[]} */
  ownGates() {
    return (this.gates ??= [...this.dag.gates]);
  }

  /** @returns {NodeView[]} */
  currentNodes() {
    return this.nodes ?? this.dag.nodes;
  }

  /** @param {ServerEvent} event */
  apply(event) {
    this.dag.last_seq = event.seq;
    // A newer server's event type without an entry: only its seq counts.
    if (!Object.hasOwn(EVENT_REDUCERS, event.type)) return;
    const reduce = /** @type {(draft: Draft, event: ServerEvent) => void} */ (
      EVENT_REDUCERS[event.type]
    );
    reduce(this, event);
  }

  /** @param {DagMutated["mutation"]} mutation */
  mutate(mutation) {
    switch (mutation.op) {
      case "add_node": {
        const added = Object.freeze({
          id: mutation.node.id,
          label: mutation.node.label ?? "",
          status: /** @type {const} */ ("pending"),
          output: null,
          metrics: Object.freeze({}),
          started_at: null,
          finished_at: null,
        });
        const at = positions(this.currentNodes()).get(added.id);
        const nodes = this.ownNodes();
        if (at !== undefined) nodes[at] = added;
        else positions(nodes).set(added.id, nodes.push(added) - 1);
        break;
      }
      case "remove_node": {
        const gone = mutation.node_id;
        this.nodes = this.currentNodes().filter((n) => n.id !== gone);
        this.edges = (this.edges ?? this.dag.edges).filter((e) => e.from !== gone && e.to !== gone);
        break;
      }
      case "add_edge": {
        const { from, to } = mutation;
        const edges = this.edges ?? this.dag.edges;
        if (!edges.some((e) => e.from === from && e.to === to)) {
          this.ownEdges().push(Object.freeze({ from, to }));
        }
        break;
      }
      case "remove_edge": {
        const { from, to } = mutation;
        this.edges = (this.edges ?? this.dag.edges).filter((e) => e.from !== from || e.to !== to);
        break;
      }
      default: {
        /** @type {never} */
        const unknown = mutation;
        void unknown;
      }
    }
  }

  /** @param {GateView} gate */
  putGate(gate) {
    const gates = this.ownGates();
    const at = gates.findIndex((g) => g.node_id === gate.node_id);
    if (at < 0) gates.push(gate);
    else gates[at] = gate;
  }

  /**
   * The gate an event names, decided (or closed) at the event's time; it keeps what it asked.
   * @param {{ node_id: string, ts: string }} event
   * @param {GateView["status"]} status
   * @param {GateView["decision"]} decision
   * @param {string} feedback
   * @param {string} decidedBy
   */
  settleGate(event, status, decision, feedback, decidedBy) {
    const waiting = (this.gates ?? this.dag.gates).find((g) => g.node_id === event.node_id);
    this.putGate(
      Object.freeze({
        node_id: event.node_id,
        presentation: waiting ? waiting.presentation : Object.freeze({}),
        status,
        decision,
        feedback,
        decided_by: decidedBy,
        decided_at: event.ts,
        assignees: waiting ? waiting.assignees : frozen([]),
        quorum: waiting ? waiting.quorum : 1,
        votes: waiting ? waiting.votes : frozen([]),
      }),
    );
  }

  /** @returns {DagSnapshot} */
  finish() {
    if (this.nodes) this.dag.nodes = frozen(this.nodes);
    if (this.edges) this.dag.edges = frozen(this.edges);
    if (this.gates) this.dag.gates = frozen(this.gates);
    return Object.freeze(this.dag);
  }
}

/**
 * How each event type changes the state, one entry per type: the browser's side
 * of each type's reducer in dagstream_app/events/. A new event type is one more
 * entry (TypeScript checks that every type of protocol.d.ts has one).
 * @type {{ [K in ServerEvent["type"]]: (draft: Draft, event: Extract<ServerEvent, { type: K }>) => void }}
 */
export const EVENT_REDUCERS = {
  node_state(draft, event) {
    const nodes = draft.currentNodes();
    const at = positions(nodes).get(event.node_id);
    if (at === undefined) return; // not in the DAG: the server never sends this
    const node = nodes[at];
    const finished = FINISHED_NODE_STATUSES.includes(event.status);
    draft.ownNodes()[at] = Object.freeze({
      ...node,
      status: event.status,
      output: event.output ?? node.output,
      metrics:
        event.metrics && Object.keys(event.metrics).length
          ? deepFreeze({ ...node.metrics, ...event.metrics })
          : node.metrics,
      started_at:
        event.status === "running" && node.started_at === null ? event.ts : node.started_at,
      finished_at: finished ? event.ts : node.finished_at,
    });
    if (event.output !== undefined) deepFreeze(event.output);
  },
  edge_active() {}, // data flowing changes no state
  dag_mutated(draft, event) {
    draft.mutate(event.mutation);
  },
  cost_update(draft, event) {
    draft.dag.spent = event.spent;
    draft.dag.budget = event.budget ?? null;
    draft.dag.remaining = draft.dag.budget === null ? null : draft.dag.budget - draft.dag.spent;
  },
  execution_complete(draft, event) {
    draft.dag.results = deepFreeze(event.results ?? null);
  },
  human_gate_waiting(draft, event) {
    draft.putGate(
      Object.freeze({
        node_id: event.node_id,
        presentation: deepFreeze(event.presentation),
        status: "pending",
        decision: null,
        feedback: "",
        decided_by: "",
        decided_at: null,
        assignees: frozen([...(event.assignees ?? [])]),
        quorum: event.quorum ?? 1,
        votes: frozen([]),
      }),
    );
  },
  gate_voted(draft, event) {
    const gate = (draft.gates ?? draft.dag.gates).find((g) => g.node_id === event.node_id);
    if (!gate || gate.votes.some((v) => v.voter === event.voter)) return;
    const vote = Object.freeze({
      voter: event.voter,
      decision: event.decision,
      feedback: event.feedback || "",
      at: event.ts,
    });
    draft.putGate(Object.freeze({ ...gate, votes: frozen([...gate.votes, vote]) }));
  },
  gate_decided(draft, event) {
    const { decision } = event;
    draft.settleGate(
      event,
      GATE_STATUS[decision],
      decision,
      event.feedback || "",
      event.decided_by || "",
    );
  },
  gate_closed(draft, event) {
    draft.settleGate(event, "closed", null, "", ""); // the run ended before anyone decided
  },
  execution_state(draft, event) {
    draft.dag.status = event.state;
    if (TERMINAL_STATUSES.includes(event.state)) draft.dag.finished_at = event.ts;
  },
  error() {}, // an error alone changes no state (a failure is an execution_state)
};
