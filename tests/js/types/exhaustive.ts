// Every server message handled by type: the `never` check fails to compile when
// the protocol gains a message this switch does not handle.
import type { ClientCommand, ServerMessage } from "@dagstream/client/protocol";

export function describeMessage(message: ServerMessage): string {
  switch (message.type) {
    case "node_state":
      return `${message.node_id} is ${message.status}`;
    case "edge_active":
      return `${message.from} -> ${message.to}`;
    case "dag_mutated":
      return message.mutation.op;
    case "cost_update":
      return `spent ${message.spent} of ${message.budget ?? "no budget"}`;
    case "execution_complete":
      return "complete";
    case "human_gate_waiting":
      return `gate at ${message.node_id}`;
    case "gate_decided":
      return `${message.node_id}: ${message.decision} by ${message.decided_by}`;
    case "gate_voted":
      return `${message.voter} voted ${message.decision} (${message.approvals} of ${message.quorum})`;
    case "execution_state":
      return message.state;
    case "error":
      // The event (with a seq) and the reply (with a code) share the type.
      return "code" in message ? `refused: ${message.code}` : `error #${message.seq}`;
    case "ack":
      return `ack ${message.id ?? ""}`;
    case "snapshot":
      return `snapshot at ${message.seq}: ${message.dag.nodes.length} nodes`;
    case "gate_closed":
      return `gate ${message.node_id} closed: the run ${message.reason}`;
    case "keepalive":
      return "still here";
    default: {
      const unhandled: never = message;
      return unhandled;
    }
  }
}

export function commandName(command: ClientCommand): string {
  switch (command.type) {
    case "human_decision":
      return `${command.decision} ${command.node_id}`;
    case "pause_execution":
    case "resume_execution":
    case "cancel_execution":
      return command.type;
    case "resume":
      return `resume after ${command.last_seq}`;
    default: {
      const unhandled: never = command;
      return unhandled;
    }
  }
}
