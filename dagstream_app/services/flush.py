"""The batched write of one transaction: changes gathered in memory, then written and published.

Every change first locks the DAG row (:func:`lock`: ``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite a first write takes the database's write lock), so seqs
stay gap-free and unique across processes and "the first decision wins" is
race-proof. A :class:`Flush` then numbers its events with the DAG's next seqs
and, on :meth:`Flush.save`, writes them all: one multi-row INSERT of events, one
UPDATE of the nodes it touched (:mod:`.sql`), one UPDATE of the DAG; after
commit it publishes the events to the DAG's channel-layer group in one message
(or leaves that to the caller, which the engine API does from its event loop).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from dagstream_app import broadcast, graph, protocol
from dagstream_app.errors import Conflict, InvalidDelta, NotFound
from dagstream_app.events.gate_closed import GateClosed
from dagstream_app.layer_messages import PublishedEvent
from dagstream_app.models import Dag, Edge, Gate, Node
from dagstream_app.notify import wakeup
from dagstream_app.services import outbox, sql
from dagstream_app.services.structures import new_structure_version, remember

__all__ = ["Flush", "PublishedEvent", "change", "lock"]


class Flush:
    """The changes of one transaction on one DAG: applied in memory, then written and published."""

    def __init__(
        self, dag: Dag, structure: graph.Structure | None = None, *, engine: bool = False
    ) -> None:
        self.dag = dag
        self.engine = engine  # the engine's own reports: they show it is alive
        self.now = timezone.now()
        self.ts = protocol.format_ts(self.now)
        self.structure = structure
        self.rows: list[sql.EventRow] = []
        self.published: list[PublishedEvent] = []
        self.nodes: dict[str, sql.NodeUpdate] = {}
        self.metrics: dict[str, dict[str, Any]] = {}  # merged so far, per node
        self.mutations: list[protocol.Mutation] = []
        self.new_gates: list[Gate] = []
        self.wake_engine = False

    # -- events

    def emit(self, payload: protocol.EventPayload, command: str = "") -> int:
        """Append the event of ``payload``; its seq."""
        data = protocol.payload_to_builtins(payload)
        return self.emit_data(str(payload.__struct_config__.tag), data, command)

    def emit_data(self, kind: str, data: dict[str, Any], command: str = "") -> int:
        """Append an event of type ``kind`` whose payload is ``data`` (JSON builtins); its seq."""
        self.dag.last_seq += 1
        seq = self.dag.last_seq
        text = protocol.encode(data)
        if kind == "node_state":
            row = sql.EventRow(seq, kind, text, command, data["node_id"], data["status"])
        else:
            row = sql.EventRow(seq, kind, text, command)
        self.rows.append(row)
        self.published.append(
            {
                "seq": seq,
                "event": kind,
                "frame": protocol.frame_from_payload(kind, self.dag.dag_id, seq, self.ts, text),
                "terminal": kind == "execution_state"
                and data["state"] in protocol.TERMINAL_STATUSES,
            }
        )
        return seq

    def finish(self, status: str, outcome: protocol.EventPayload | None = None) -> int:
        """End the run as ``status``; the seq of ``outcome`` (else of ``execution_state``).

        First each gate still pending closes (a ``gate_closed`` event each), then
        come the run's last events: ``outcome`` (``execution_complete``, or a
        failure's ``error``) and the terminal ``execution_state``.
        """
        self.dag.status = status
        self.dag.finished_at = self.now
        for node_id in self._close_gates():
            self.emit(GateClosed(node_id=node_id, reason=status))  # type: ignore[arg-type]
        seq = self.emit(outcome) if outcome is not None else None
        last = self.emit(protocol.ExecutionState(state=status))  # type: ignore[arg-type]
        return last if seq is None else seq

    def _close_gates(self) -> list[str]:
        """Close the run's pending gates (those this flush opened too); their nodes, in order."""
        pending = Gate.objects.filter(dag=self.dag, status=Gate.Status.PENDING)
        closed = list(pending.order_by("created_at", "pk").values_list("node_id", flat=True))
        if closed:
            pending.update(status=Gate.Status.CLOSED, decided_at=self.now)
        for gate in self.new_gates:  # written by save(), as closed
            if gate.status == Gate.Status.PENDING:
                gate.status, gate.decided_at = Gate.Status.CLOSED, self.now
                closed.append(gate.node_id)
        return closed

    def refuse_if_ended(self) -> None:
        if self.dag.is_terminal:
            raise Conflict(
                f"DAG {self.dag.dag_id!r} is {self.dag.status}; it takes no more changes."
            )

    # -- nodes

    def current_structure(self) -> graph.Structure:
        """The DAG's structure as this flush has it (its own mutations included)."""
        assert self.structure is not None
        return self.structure

    def node_state(self, payload: protocol.NodeState) -> int:
        """Record a node's status (and output / metrics) for the node UPDATE; emits it."""
        node_id = payload.node_id
        if node_id not in self.current_structure().nodes:
            raise InvalidDelta(f"Unknown node {node_id!r} in DAG {self.dag.dag_id!r}.")
        data = protocol.payload_to_builtins(payload)
        update = self.nodes.get(node_id)
        if update is None:
            update = self.nodes[node_id] = sql.NodeUpdate(node_id, payload.status)
        update.status = payload.status
        if payload.output is not None:
            update.output = protocol.encode(data["output"])
        if payload.metrics:
            merged = {**(self.metrics.get(node_id) or {}), **data["metrics"]}
            self.metrics[node_id] = merged
            update.metrics = protocol.encode(merged)
        update.started = update.started or payload.status == "running"
        update.finished = update.finished or payload.status in protocol.FINISHED_NODE_STATUSES
        return self.emit_data("node_state", data)

    # -- writing it all

    def save(self, *, publish: bool) -> None:
        """Write what was gathered; with ``publish``, publish its events after commit."""
        if not self.rows:
            return
        dag = self.dag
        self._write_mutations()
        if self.new_gates:
            Gate.objects.bulk_create(self.new_gates)
            if outbox.enqueue_opened(self.new_gates):  # in this transaction: never lost
                transaction.on_commit(wakeup.wake)
        sql.update_nodes(dag.pk, self.now, list(self.nodes.values()))
        sql.insert_events(dag.pk, self.now, self.rows)
        fields = {
            "last_seq": dag.last_seq,
            "status": dag.status,
            "budget": dag.budget,
            "spent": dag.spent,
            "results": dag.results,
            "finished_at": dag.finished_at,
            "updated_at": self.now,
        }
        if self.engine:
            fields["engine_seen_at"] = self.now
        if self.mutations:
            dag.structure_version = new_structure_version()
            fields["structure_version"] = dag.structure_version
        Dag.objects.filter(pk=dag.pk).update(**fields)
        if self.structure is not None:
            remember(dag, self.structure)
        if publish:
            dag_id, events, wake = dag.dag_id, self.published, self.wake_engine
            transaction.on_commit(lambda: broadcast.publish(dag_id, events, wake_engine=wake))

    def _write_mutations(self) -> None:
        """Write the mutations in order: each run of added nodes and edges in one
        multi-row INSERT apiece (a fan-out adds hundreds), a removal after them."""
        dag = self.dag
        nodes: list[Node] = []
        edges: list[Edge] = []
        for mutation in self.mutations:
            match mutation:
                case protocol.AddNode(node=spec):
                    nodes.append(
                        Node(dag=dag, node_id=spec.id, label=spec.label, group=spec.group_name)
                    )
                case protocol.AddEdge(src=src, dst=dst):
                    edges.append(Edge(dag=dag, src=src, dst=dst))
                case protocol.RemoveNode(node_id=node_id):
                    _create(nodes, edges)
                    Node.objects.filter(dag=dag, node_id=node_id).delete()
                    Edge.objects.filter(dag=dag, src=node_id).delete()
                    Edge.objects.filter(dag=dag, dst=node_id).delete()
                case protocol.RemoveEdge(src=src, dst=dst):
                    _create(nodes, edges)
                    Edge.objects.filter(dag=dag, src=src, dst=dst).delete()
        _create(nodes, edges)


def _create(nodes: list[Node], edges: list[Edge]) -> None:
    """Insert the rows gathered so far (one INSERT per model) and forget them."""
    if nodes:
        Node.objects.bulk_create(nodes)
        nodes.clear()
    if edges:
        Edge.objects.bulk_create(edges)
        edges.clear()


def lock(dag_id: str) -> Dag:
    """Read the DAG row under a lock that lasts until commit; writers queue here."""
    if connection.features.has_select_for_update:
        dag = Dag.objects.select_for_update().filter(pk=dag_id).first()
    # SQLite has no row locks: a first write takes the database's write lock
    # before anything is read (a read first could not upgrade later).
    elif Dag.objects.filter(pk=dag_id).update(last_seq=F("last_seq")):
        dag = Dag.objects.get(pk=dag_id)
    else:
        dag = None
    if dag is None:
        raise NotFound(f"Unknown DAG {dag_id!r}.")
    return dag


@contextmanager
def change(dag_id: str) -> Iterator[Flush]:
    """One transaction of a person's action on the DAG, published after commit."""
    with transaction.atomic():
        flush = Flush(lock(dag_id))
        yield flush
        flush.save(publish=True)
