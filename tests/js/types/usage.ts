// The package as an app sees it once installed: the client, the hook, the types.
import {
  CommandError,
  DagStreamClient,
  ticketFetcher,
  type ClientState,
  type ConnectionStatus,
} from "@dagstream/client";
import type { DagSnapshot, NodeView } from "@dagstream/client/protocol";
import { useDAGStream, type DAGStream } from "@dagstream/client/react";
import { applyEvents } from "@dagstream/client/store";

const client = new DagStreamClient("etl-42", {
  baseUrl: "https://dags.example.com",
  ticket: ticketFetcher("/api/dagstream-ticket/", { credentials: "include" }),
  keepaliveSeconds: 20,
});
client.connect();
const state: ClientState = client.getSnapshot();
const status: ConnectionStatus = state.status;
const nodes: NodeView[] = state.dag?.nodes ?? [];
const unsubscribe: () => void = client.subscribe(() => undefined);
unsubscribe();

async function approve(): Promise<string> {
  try {
    await client.decide("load", "approve", "looks good");
    return "approved";
  } catch (error) {
    if (error instanceof CommandError && error.code === "conflict") return "someone was first";
    throw error;
  }
}

// @ts-expect-error: not a decision
void client.decide("load", "maybe");
// @ts-expect-error: resume needs last_seq
void client.send({ type: "resume" });

export function useRun(dagId: string): [DAGStream, string | undefined] {
  const run = useDAGStream(dagId, { ticket: async () => "dgt_..." });
  const next: DagSnapshot | null = run.dag && applyEvents(run.dag, []);
  return [run, next?.status];
}

export { approve, nodes, status };
