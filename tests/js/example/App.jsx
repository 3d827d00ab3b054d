import { useEffect, useState } from "react";
import { useDAGStream } from "@dagstream/client/react";

/** What the connection is doing, for people. */
function connectionText({ status, closeCode, closeReason, retryDelay }) {
  switch (status) {
    case "connecting":
      return "Connecting…";
    case "open":
      return "Live";
    case "reconnecting":
      return retryDelay === null
        ? "Disconnected: reconnecting…"
        : `Disconnected (${closeCode}): retrying in ${Math.ceil(retryDelay / 1000)} s`;
    case "closed":
      return `Closed${closeCode ? ` (${closeCode})` : ""}: ${closeReason || "not watching"}`;
  }
}

/** One run, live: its nodes, its open gates, its events, and the connection's state. */
export function Run({ dagId, options }) {
  const stream = useDAGStream(dagId, options);
  const { dag, status, client, decide, pause, resume, cancel } = stream;
  const [events, setEvents] = useState([]);
  const [problem, setProblem] = useState("");
  // Each event once, in order, after the store applied it (keep what you need).
  useEffect(() => client?.onEvent((event) => setEvents((seen) => [...seen, event])), [client]);

  const act = (promise) =>
    promise.then(
      () => setProblem(""),
      (error) => setProblem(`${error.code}: ${error.message}`),
    );

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
          <button
            onClick={() => act(pause())}
            disabled={status !== "open" || dag.status !== "running"}
          >
            Pause
          </button>
          <button
            onClick={() => act(resume())}
            disabled={status !== "open" || dag.status !== "paused"}
          >
            Resume
          </button>
          <button onClick={() => act(cancel())} disabled={status !== "open"}>
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
                <button
                  onClick={() => act(decide(gate.node_id, "approve"))}
                  disabled={status !== "open"}
                >
                  Approve
                </button>
                <button
                  onClick={() => act(decide(gate.node_id, "reject"))}
                  disabled={status !== "open"}
                >
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
