import { useEffect, useState } from "react";
import { CommandError, type ClientOptions, type ClientState } from "@dagstream/client";
import type { ServerEvent } from "@dagstream/client/protocol";
import { useDAGStream } from "@dagstream/client/react";

/** What the connection is doing, for people: when it is not live, why. */
function connectionText({ status, closeCode, closeReason, retryDelay }: ClientState): string {
  switch (status) {
    case "connecting":
      return "Connecting…";
    case "open":
      return "Live";
    case "reconnecting":
      return retryDelay === null
        ? `Reconnecting… (${closeReason})`
        : `Disconnected (${closeCode}): ${closeReason} Retrying in ${Math.ceil(retryDelay / 1000)} s.`;
    case "closed":
      return `Closed${closeCode ? ` (${closeCode})` : ""}: ${closeReason || "not watching"}`;
  }
}

/** A refused command, for people. */
function problemText(error: unknown): string {
  return error instanceof CommandError ? `${error.code}: ${error.message}` : String(error);
}

type RunProps = { dagId: string; options?: ClientOptions };

/** One run, live: its nodes, its open gates, its events, and the connection's state. */
export function Run({ dagId, options }: RunProps) {
  const stream = useDAGStream(dagId, options);
  const { dag, status, client, decide, pause, resume, cancel } = stream;
  const [events, setEvents] = useState<ServerEvent[]>([]);
  const [problem, setProblem] = useState("");
  // Each event once, in order, after the store applied it (keep what you need).
  useEffect(() => client?.onEvent((event) => setEvents((seen) => [...seen, event])), [client]);

  const act = (promise: Promise<unknown>) =>
    promise.then(
      () => setProblem(""),
      (error: unknown) => setProblem(problemText(error)),
    );
  const live = status === "open";
  const running = dag?.status === "running" || dag?.status === "paused"; // not ended

  return (
    <main>
      <p role="status" data-status={status}>
        {connectionText(stream)}
      </p>
      {problem && <p role="alert">{problem}</p>}
      {dag && (
        <>
          <h1 data-run-status={dag.status}>
            {dag.name || dag.dag_id}: {dag.status}
          </h1>
          <button onClick={() => act(pause())} disabled={!live || dag.status !== "running"}>
            Pause
          </button>
          <button onClick={() => act(resume())} disabled={!live || dag.status !== "paused"}>
            Resume
          </button>
          <button onClick={() => act(cancel())} disabled={!live || !running}>
            Cancel
          </button>
          <ul aria-label="Nodes">
            {dag.nodes.map((node) => (
              <li key={node.id} data-node={node.id} data-status={node.status}>
                {node.label || node.id}: {node.status}
              </li>
            ))}
          </ul>
          {dag.gates
            .filter((gate) => gate.status === "pending")
            .map((gate) => (
              <section key={gate.node_id} aria-label={`Gate ${gate.node_id}`}>
                <h2>{String(gate.presentation.title ?? gate.node_id)}</h2>
                <button onClick={() => act(decide(gate.node_id, "approve"))} disabled={!live}>
                  Approve
                </button>
                <button onClick={() => act(decide(gate.node_id, "reject"))} disabled={!live}>
                  Reject
                </button>
              </section>
            ))}
          <ol aria-label="Events">
            {events.map((event) => (
              <li key={event.seq} data-seq={event.seq}>
                #{event.seq} {event.type}
              </li>
            ))}
          </ol>
        </>
      )}
    </main>
  );
}
