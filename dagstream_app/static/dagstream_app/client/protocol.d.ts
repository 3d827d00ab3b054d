/**
 * dagstream protocol v1, every message as a TypeScript type.
 *
 * Generated from `manage.py dagstream_schema` (dagstream_app/protocol.py) by
 * tests/js/gen-protocol-types.mjs: do not edit by hand.
 */

/**
 * Anything the server sends: an event of the DAG, or a reply to this connection.
 */
export type ServerMessage = ServerEvent | ServerReply;
export type ServerEvent =
  | NodeState
  | EdgeActive
  | DagMutated
  | CostUpdate
  | ExecutionComplete
  | HumanGateWaiting
  | GateVoted
  | GateDecided
  | GateClosed
  | ExecutionState
  | ErrorEvent;
export type ServerReply = Ack | ErrorReply | Snapshot | Keepalive;
export type ClientCommand =
  HumanDecision | PauseExecution | ResumeExecution | CancelExecution | Resume;

export interface NodeState {
  dag_id: string;
  metrics?: {
    [k: string]: unknown | undefined;
  } | null;
  node_id: string;
  output?: unknown;
  seq: number;
  status: "cancelled" | "completed" | "failed" | "pending" | "running" | "skipped" | "waiting";
  ts: string;
  type: "node_state";
}
export interface EdgeActive {
  dag_id: string;
  from: string;
  seq: number;
  to: string;
  ts: string;
  type: "edge_active";
}
export interface DagMutated {
  dag_id: string;
  mutation: AddNode | RemoveNode | AddEdge | RemoveEdge;
  seq: number;
  ts: string;
  type: "dag_mutated";
}
export interface AddNode {
  node: NodeSpec;
  op: "add_node";
}
export interface NodeSpec {
  group?: string;
  id: string;
  label?: string;
}
export interface RemoveNode {
  edges?: EdgeView[] | null;
  node_id: string;
  op: "remove_node";
}
/**
 * One edge, ``{"from": ..., "to": ...}`` on the wire.
 */
export interface EdgeView {
  from: string;
  to: string;
}
export interface AddEdge {
  from: string;
  op: "add_edge";
  to: string;
}
export interface RemoveEdge {
  from: string;
  op: "remove_edge";
  to: string;
}
export interface CostUpdate {
  budget: number | null;
  dag_id: string;
  remaining: number | null;
  seq: number;
  spent: number;
  ts: string;
  type: "cost_update";
}
export interface ExecutionComplete {
  dag_id: string;
  results: unknown;
  seq: number;
  ts: string;
  type: "execution_complete";
}
export interface HumanGateWaiting {
  /**
   * @maxItems 100
   */
  assignees?: string[];
  dag_id: string;
  node_id: string;
  presentation: {
    [k: string]: unknown | undefined;
  };
  quorum?: number;
  seq: number;
  ts: string;
  type: "human_gate_waiting";
}
export interface GateVoted {
  approvals: number;
  dag_id: string;
  decision: "approve" | "modify" | "reject";
  feedback?: string;
  node_id: string;
  quorum: number;
  seq: number;
  ts: string;
  type: "gate_voted";
  voter: string;
}
export interface GateDecided {
  dag_id: string;
  decided_by: string;
  decision: "approve" | "modify" | "reject";
  feedback: string;
  node_id: string;
  seq: number;
  ts: string;
  type: "gate_decided";
}
export interface GateClosed {
  dag_id: string;
  node_id: string;
  reason: "cancelled" | "completed" | "failed";
  seq: number;
  ts: string;
  type: "gate_closed";
}
export interface ExecutionState {
  dag_id: string;
  seq: number;
  state: "cancelled" | "cancelling" | "completed" | "failed" | "paused" | "running";
  ts: string;
  type: "execution_state";
}
export interface ErrorEvent {
  dag_id: string;
  message: string;
  node_id?: string | null;
  seq: number;
  ts: string;
  type: "error";
}
export interface Ack {
  id?: string | number | null;
  type: "ack";
}
export interface ErrorReply {
  code:
    | "conflict"
    | "forbidden"
    | "invalid_json"
    | "invalid_message"
    | "invalid_parameter"
    | "method_not_allowed"
    | "not_found"
    | "rate_limited"
    | "too_large"
    | "unauthenticated"
    | "unknown_type";
  decision?: {
    [k: string]: unknown | undefined;
  } | null;
  id?: string | number | null;
  message: string;
  type: "error";
}
export interface Snapshot {
  dag: DagSnapshot;
  seq: number;
  type: "snapshot";
}
/**
 * The whole state of one DAG after event ``last_seq``.
 */
export interface DagSnapshot {
  budget: number | null;
  created_at: string;
  dag_id: string;
  edges: EdgeView[];
  engine_seen_at?: string | null;
  engine_stale?: boolean;
  finished_at: string | null;
  gates: GateView[];
  last_seq: number;
  name: string;
  nodes: NodeView[];
  remaining: number | null;
  results: unknown;
  spent: number;
  status: "cancelled" | "cancelling" | "completed" | "failed" | "paused" | "running";
}
export interface GateView {
  assignees: string[];
  decided_at: string | null;
  decided_by: string;
  decision: ("approve" | "modify" | "reject") | null;
  feedback: string;
  node_id: string;
  presentation: {
    [k: string]: unknown | undefined;
  };
  quorum: number;
  status: "approved" | "closed" | "modified" | "pending" | "rejected";
  votes: VoteView[];
}
/**
 * One person's vote on a gate that needs a quorum (see ``gate_voted``).
 */
export interface VoteView {
  at: string;
  decision: "approve" | "modify" | "reject";
  feedback: string;
  voter: string;
}
export interface NodeView {
  finished_at: string | null;
  id: string;
  label: string;
  metrics: {
    [k: string]: unknown | undefined;
  };
  output: unknown;
  started_at: string | null;
  status: "cancelled" | "completed" | "failed" | "pending" | "running" | "skipped" | "waiting";
}
/**
 * Sent after ``KEEPALIVE_SECONDS`` of silence: clients that miss it reconnect.
 */
export interface Keepalive {
  type: "keepalive";
}
export interface HumanDecision {
  decision: "approve" | "modify" | "reject";
  feedback?: string | null;
  id?: string | number | null;
  node_id: string;
  type: "human_decision";
}
export interface PauseExecution {
  id?: string | number | null;
  type: "pause_execution";
}
export interface ResumeExecution {
  id?: string | number | null;
  type: "resume_execution";
}
export interface CancelExecution {
  id?: string | number | null;
  type: "cancel_execution";
}
export interface Resume {
  id?: string | number | null;
  last_seq: number;
  type: "resume";
}
/**
 * Fields every DAG event carries besides its payload.
 */
export interface Envelope {
  dag_id: string;
  seq: number;
  ts: string;
}

/** The client's commands (the name for them). */
export type ClientEvent = ClientCommand;
/** The message types the server sends, and the command types. */
export type ServerMessageType = ServerMessage["type"];
export type ClientCommandType = ClientCommand["type"];
/** The values of the protocol's enumerations. */
export type NodeStatus = NodeView["status"];
export type ExecutionStatus = DagSnapshot["status"];
export type GateStatus = GateView["status"];
export type Decision = HumanDecision["decision"];
export type ErrorCode = ErrorReply["code"];
/** A command's `id`: a string of at most 100 characters, or a 64-bit integer. */
export type CommandId = string | number;
