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
export function useDAGStream(dagId: string | null | undefined, options?: ClientOptions): DAGStream;
/**
 * What `useDAGStream` returns: the client's state, and its commands bound to it.
 */
export type DAGStream = ClientState & {
    client: DagStreamClient | null;
    send: (command: ClientCommand) => Promise<Ack>;
    decide: (nodeId: string, decision: Decision, feedback?: string) => Promise<Ack>;
    pause: () => Promise<Ack>;
    resume: () => Promise<Ack>;
    cancel: () => Promise<Ack>;
};
import type { ClientOptions } from "./client.js";
import type { ClientState } from "./client.js";
import { DagStreamClient } from "./client.js";
import type { ClientCommand } from "./protocol.js";
import type { Ack } from "./protocol.js";
import type { Decision } from "./protocol.js";
