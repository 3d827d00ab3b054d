// useDAGStream: a DAG's live state in a React component (React 18 or 19, supplied
// by the app: this module imports "react" and bundles nothing).

import { useEffect, useMemo, useRef, useSyncExternalStore } from "react";

import { DagStreamClient } from "./client.js";

/**
 * @import { Ack, ClientCommand, Decision } from "./protocol.js"
 * @import { ClientOptions, ClientState } from "./client.js"
 */

/**
 * What `useDAGStream` returns: the client's state, and its commands bound to it.
 * @typedef {ClientState & {
 *   client: DagStreamClient | null,
 *   send: (command: ClientCommand) => Promise<Ack>,
 *   decide: (nodeId: string, decision: Decision, feedback?: string) => Promise<Ack>,
 *   pause: () => Promise<Ack>,
 *   resume: () => Promise<Ack>,
 *   cancel: () => Promise<Ack>,
 * }} DAGStream
 */

/** @type {ClientState} */
const IDLE = Object.freeze({
  status: "closed",
  closeCode: null,
  closeReason: "",
  retryDelay: null,
  dag: null,
  lastSeq: null,
});

/** @param {() => void} _listener */
const subscribeIdle = (_listener) => () => {};
const idleSnapshot = () => IDLE;

/**
 * Watch DAG `dagId` live: its state, the connection's status, and commands.
 *
 * One connection per mounted component and `dagId`; it closes on unmount. A new
 * `dagId`, `baseUrl`, `keepaliveSeconds` or `batch` opens a new one; the other
 * options (`ticket`, `random`, `WebSocket`) are read when a connection starts,
 * so inline functions are fine. With `dagId` null nothing connects.
 *
 * @param {string | null | undefined} dagId
 * @param {ClientOptions} [options]
 * @returns {DAGStream}
 */
export function useDAGStream(dagId, options = {}) {
  const latest = useRef(options);
  latest.current = options;
  const { baseUrl, keepaliveSeconds, batch } = options;
  // Created during render but inert until connect(): React may make and drop
  // one (strict mode renders twice) at no cost.
  const client = useMemo(
    () =>
      dagId
        ? new DagStreamClient(dagId, {
            baseUrl,
            keepaliveSeconds,
            batch,
            get ticket() {
              return latest.current.ticket;
            },
            get backoff() {
              return latest.current.backoff;
            },
            get random() {
              return latest.current.random;
            },
            get WebSocket() {
              return latest.current.WebSocket;
            },
          })
        : null,
    [dagId, baseUrl, keepaliveSeconds, batch],
  );
  useEffect(() => {
    if (client === null) return undefined;
    // Strict mode mounts, unmounts and mounts again: connect() after close()
    // restarts, and a close() in the same task opens no socket at all.
    client.connect();
    return () => client.close();
  }, [client]);
  const state = useSyncExternalStore(
    client ? client.subscribe : subscribeIdle,
    client ? client.getSnapshot : idleSnapshot,
    client ? client.getSnapshot : idleSnapshot,
  );
  return useMemo(() => {
    /** @param {string} what */
    const missing = (what) =>
      Promise.reject(new Error(`useDAGStream: no DAG to ${what} (dagId is ${String(dagId)}).`));
    return {
      ...state,
      client,
      send: (command) => (client ? client.send(command) : missing("send to")),
      decide: (nodeId, decision, feedback) =>
        client ? client.decide(nodeId, decision, feedback) : missing("decide"),
      pause: () => (client ? client.pause() : missing("pause")),
      resume: () => (client ? client.resume() : missing("resume")),
      cancel: () => (client ? client.cancel() : missing("cancel")),
    };
  }, [state, client, dagId]);
}
