/**
 * Freeze a JSON value and everything in it.
 * @template T
 * @param {T} value
 * @returns {Readonly<T>}
 */
export function deepFreeze<T>(value: T): Readonly<T>;
/**
 * A snapshot from the server, frozen: the state events are applied to.
 * @param {DagSnapshot} dag
 * @returns {DagSnapshot}
 */
export function fromSnapshot(dag: DagSnapshot): DagSnapshot;
/**
 * Apply events, in seq order, to a snapshot: a new frozen snapshot sharing
 * everything they did not change (or `dag` itself when they changed nothing).
 * Seqs are not checked here: the client drops old ones and resyncs on gaps.
 * @param {DagSnapshot} dag
 * @param {readonly ServerEvent[]} events
 * @returns {DagSnapshot}
 */
export function applyEvents(dag: DagSnapshot, events: readonly ServerEvent[]): DagSnapshot;
/**
 * One event: `applyEvents(dag, [event])`.
 * @param {DagSnapshot} dag
 * @param {ServerEvent} event
 * @returns {DagSnapshot}
 */
export function applyEvent(dag: DagSnapshot, event: ServerEvent): DagSnapshot;
/**
 * @import { DagSnapshot, DagMutated, EdgeView, GateView, NodeView, ServerEvent }
 *   from "./protocol.js"
 */
/** A node in one of these has finished: its `finished_at` is set. */
export const FINISHED_NODE_STATUSES: readonly string[];
/** A run in one of these is over: nothing follows. */
export const TERMINAL_STATUSES: readonly string[];
/**
 * How each event type changes the state, one entry per type: the browser's side
 * of each type's reducer in dagstream_app/events/. A new event type is one more
 * entry (TypeScript checks that every type of protocol.d.ts has one).
 * @type {{ [K in ServerEvent["type"]]: (draft: Draft, event: Extract<ServerEvent, { type: K }>) => void }}
 */
export const EVENT_REDUCERS: { [K in ServerEvent["type"]]: (draft: Draft, event: Extract<ServerEvent, {
    type: K;
}>) => void; };
import type { DagSnapshot } from "./protocol.js";
import type { ServerEvent } from "./protocol.js";
/** Copy-on-write state of one batch of events: each list is copied at most once. */
declare class Draft {
    /** @param {DagSnapshot} dag */
    constructor(dag: DagSnapshot);
    /** @type {DagSnapshot} */
    dag: DagSnapshot;
    /** @type {NodeView[] | null} */
    nodes: NodeView[] | null;
    /** @type {EdgeView[] | null} */
    edges: EdgeView[] | null;
    /** @type {GateView[] | null} */
    gates: GateView[] | null;
    /** @returns {NodeView[]} */
    ownNodes(): NodeView[];
    /** @returns {EdgeView[]} */
    ownEdges(): EdgeView[];
    /** @returns {GateView[]} */
    ownGates(): GateView[];
    /** @returns {NodeView[]} */
    currentNodes(): NodeView[];
    /** @param {ServerEvent} event */
    apply(event: ServerEvent): void;
    /** @param {DagMutated["mutation"]} mutation */
    mutate(mutation: DagMutated["mutation"]): void;
    /** @param {GateView} gate */
    putGate(gate: GateView): void;
    /**
     * The gate an event names, decided (or closed) at the event's time; it keeps what it asked.
     * @param {{ node_id: string, ts: string }} event
     * @param {GateView["status"]} status
     * @param {GateView["decision"]} decision
     * @param {string} feedback
     * @param {string} decidedBy
     */
    settleGate(event: {
        node_id: string;
        ts: string;
    }, status: GateView["status"], decision: GateView["decision"], feedback: string, decidedBy: string): void;
    /** @returns {DagSnapshot} */
    finish(): DagSnapshot;
}
import type { NodeView } from "./protocol.js";
import type { EdgeView } from "./protocol.js";
import type { GateView } from "./protocol.js";
import type { DagMutated } from "./protocol.js";
export {};
