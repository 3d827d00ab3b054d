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
import type { DagSnapshot } from "./protocol.js";
import type { ServerEvent } from "./protocol.js";
