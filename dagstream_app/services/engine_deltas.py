"""Engine deltas applied in batches: :func:`apply`, any number in one transaction.

Each delta's shape is checked first (:func:`.validation.prepare`), before the
database is touched, so a refused one needs no savepoint and changes nothing.
Then, under the DAG's row lock, each is checked against the DAG's known
structure and status and applied in memory (:class:`DeltaFlush`), and the flush
writes them all at once (:class:`.flush.Flush`).

A connection lost while the COMMIT was on its way leaves the outcome unknown:
:func:`apply` then raises :class:`CommitUnknown`, carrying what it would have
returned, and :func:`committed` tells, once the database answers again,
whether that flush was written (so a retry never writes it twice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from django.db import InterfaceError, OperationalError, transaction

from dagstream_app import graph, protocol
from dagstream_app.errors import Conflict, DagstreamError, InvalidDelta, NotFound
from dagstream_app.models import Dag, Event, Gate, Node
from dagstream_app.services import sql
from dagstream_app.services.flush import Flush, PublishedEvent, lock
from dagstream_app.services.structures import structure_of
from dagstream_app.services.validation import ENGINE_TRANSITIONS, Delta, prepare

__all__ = ["CommitUnknown", "DeltaFlush", "DeltaResult", "Flushed", "apply", "committed"]

# What :func:`apply` made of one delta: its seq, the gate of ``open_gate``, or the
# refusal.
DeltaResult = int | Gate | DagstreamError

# A delta that passed :func:`prepare`: its index in the batch, the delta, and its
# payload struct (of the type its kind emits; None for cost and set_state).
Prepared = tuple[int, Delta, Any]


@dataclass(slots=True)
class Flushed:
    """What :func:`apply` did: per delta its seq (a :class:`Gate` for ``open_gate``) or
    the :class:`DagstreamError` that refused it; the events to publish, in seq order."""

    results: list[DeltaResult]
    events: list[PublishedEvent]
    wake_engine: bool = False
    last_seq: int = 0  # the DAG's last seq after the flush
    # People's commands (seq, pause|resume|cancel) written by others since the
    # caller last looked: only read when the DAG's seq moved on without it.
    commands: list[tuple[int, str]] = field(default_factory=list)


class CommitUnknown(OperationalError):
    """The connection failed as the flush committed: it may or may not be written.

    ``flushed`` is what :func:`apply` would have returned, ``written_at`` the
    time its events carry; :func:`committed` tells which it was. The
    connection error is its ``__cause__``.
    """

    def __init__(self, flushed: Flushed, written_at: datetime) -> None:
        super().__init__("The connection failed during COMMIT: the flush may be written.")
        self.flushed = flushed
        self.written_at = written_at


def apply(
    dag_id: str,
    deltas: Sequence[Delta],
    *,
    publish: bool = True,
    known_seq: int | None = None,
    command_cursor: int = 0,
) -> Flushed:
    """Apply ``deltas`` in order, in one transaction; a refused one changes nothing.

    With ``publish`` the events go to the channel layer after commit (from this
    thread); the engine API passes False and publishes from its event loop.
    ``known_seq``: the DAG's last seq as the caller last saw it; if someone else
    has written since, the commands after ``command_cursor`` come back too.
    Raises :class:`CommitUnknown` if the connection fails during the COMMIT.
    """
    results: list[Any] = [None] * len(deltas)  # every slot is set below
    prepared: list[Prepared] = []
    for index, delta in enumerate(deltas):
        try:
            prepared.append((index, delta, prepare(delta)))
        except DagstreamError as exc:
            results[index] = exc
    if not prepared:
        return Flushed(results, [])
    done: Flushed | None = None
    try:
        with transaction.atomic():
            dag = lock(dag_id)
            commands: list[tuple[int, str]] = []
            if known_seq is not None and dag.last_seq != known_seq:
                commands = _commands_after(dag, command_cursor)
            flush = DeltaFlush(dag, structure_of(dag))
            flush.load(prepared)
            for index, delta, payload in prepared:
                try:
                    results[index] = flush.apply(delta, payload)
                except DagstreamError as exc:
                    results[index] = exc
            flush.save(publish=publish)
            done = Flushed(results, flush.published, flush.wake_engine, dag.last_seq, commands)
    except NotFound as exc:
        for index, _, _ in prepared:
            results[index] = exc
        return Flushed(results, [])
    except (OperationalError, InterfaceError) as exc:
        if done is not None and done.events:  # the COMMIT was sent: its fate is unknown
            raise CommitUnknown(done, flush.now) from exc
        raise  # failed before the COMMIT: nothing was written
    assert done is not None
    return done


def committed(dag_id: str, unsure: CommitUnknown) -> bool:
    """Whether the flush whose COMMIT went unanswered was written.

    Read under the DAG's row lock, so a COMMIT still under way has ended. Its
    last event's seq holds an event of its type stamped with its time (to the
    microsecond) only if it was written: another writer that took that seq
    after it failed stamps its own time.
    """
    last = unsure.flushed.events[-1]
    with transaction.atomic():
        lock(dag_id)
        return Event.objects.filter(
            dag_id=dag_id, seq=last["seq"], type=last["event"], created_at=unsure.written_at
        ).exists()


def _commands_after(dag: Dag, cursor: int) -> list[tuple[int, str]]:
    rows = Event.objects.filter(dag=dag, seq__gt=cursor).exclude(command="")
    return list(rows.order_by("seq").values_list("seq", "command"))


class DeltaFlush(Flush):
    """A flush of the engine's own reports: each delta checked against the DAG and applied."""

    def __init__(self, dag: Dag, structure: graph.Structure) -> None:
        super().__init__(dag, structure, engine=True)
        self._own_structure = False  # a copy of the shared one, once a delta changes it
        self.gates: dict[str, Gate] = {}  # existing and new, by node
        self.statuses: dict[str, str] = {}  # of nodes getting a gate, as read

    def load(self, prepared: Sequence[Prepared]) -> None:
        """Read, in two queries at most, what the deltas merge into or look up."""
        with_metrics = {p.node_id for _, d, p in prepared if d.kind == "node_state" and p.metrics}
        if with_metrics:
            self.metrics = sql.node_metrics(self.dag.pk, with_metrics)
        gated = {p.node_id for _, d, p in prepared if d.kind == "open_gate"}
        if gated:
            self.gates = {
                g.node_id: g for g in Gate.objects.filter(dag=self.dag, node_id__in=gated)
            }
            # A new gate puts its node in waiting, unless it already is.
            self.statuses = dict(
                Node.objects.filter(dag=self.dag, node_id__in=gated - set(self.gates)).values_list(
                    "node_id", "status"
                )
            )

    def apply(self, delta: Delta, payload: Any) -> int | Gate:
        """Apply one prepared delta; its seq (the gate of ``open_gate``), or raise its refusal."""
        a = delta.args
        match delta.kind:
            case "open_gate":
                return self._open_gate(payload, a.get("timeout_at"), a.get("default"))
            case "set_state":
                return self._set_state(a["state"])
        self.refuse_if_ended()
        match delta.kind:
            case "node_state":
                return self.node_state(payload)
            case "edge_active":
                if (payload.src, payload.dst) not in self.current_structure().edges:
                    raise InvalidDelta(
                        f"Unknown edge {payload.src!r} -> {payload.dst!r} "
                        f"in DAG {self.dag.dag_id!r}."
                    )
                return self.emit(payload)
            case "mutate":
                return self._mutate(payload)
            case "cost":
                return self._cost(a.get("spent"), a.get("budget"), a.get("add"))
            case "error":
                return self.emit(payload)
            case "fail":
                return self.finish("failed", payload)
            case "complete":
                self.dag.results = msgspec.to_builtins(a.get("results"))
                return self.finish("completed", payload)
        raise InvalidDelta(f"Unknown delta {delta.kind!r}.")  # pragma: no cover - typed

    def _cost(self, spent: float | None, budget: float | None, add: float | None) -> int:
        total = float(spent) if spent is not None else self.dag.spent
        if add is not None:  # under the row lock: increments never collide
            total = round(total + float(add), 6)
        if not math.isfinite(total):
            raise InvalidDelta(
                f"The running cost would pass the largest number stored ({total!r}); "
                "nothing was changed."
            )
        self.dag.spent = total
        if budget is not None:
            self.dag.budget = float(budget)
        return self.emit(
            protocol.CostUpdate(
                spent=self.dag.spent, budget=self.dag.budget, remaining=self.dag.remaining
            )
        )

    def _mutate(self, payload: protocol.DagMutated) -> int:
        if not self._own_structure:
            self.structure = self.current_structure().copy()
            self._own_structure = True
        structure = self.current_structure()
        data = protocol.payload_to_builtins(payload)
        mutation = payload.mutation
        match mutation:
            case protocol.AddNode(node=spec):
                structure.add_node(spec.id)
            case protocol.RemoveNode(node_id=node_id):
                gone = structure.remove_node(node_id)
                # The edges that went with the node are in its event: history needs them.
                data["mutation"]["edges"] = [{"from": a, "to": b} for a, b in gone]
                self.nodes.pop(node_id, None)
                self.metrics.pop(node_id, None)
            case protocol.AddEdge(src=src, dst=dst):
                structure.add_edge(src, dst)
            case protocol.RemoveEdge(src=src, dst=dst):
                structure.remove_edge(src, dst)
        self.mutations.append(mutation)
        return self.emit_data("dag_mutated", data)

    def _set_state(self, state: str) -> int:
        self.refuse_if_ended()
        if self.dag.status not in ENGINE_TRANSITIONS[state]:
            raise Conflict(f"Cannot go from {self.dag.status} to {state}.")
        if state == "cancelled":
            return self.finish(state)
        self.dag.status = state
        return self.emit(protocol.ExecutionState(state=state))  # type: ignore[arg-type]

    def _open_gate(
        self, payload: protocol.HumanGateWaiting, timeout_at: datetime | None, default: str | None
    ) -> Gate:
        existing = self.gates.get(payload.node_id)
        if existing is not None:
            return existing
        if self.dag.is_terminal:
            raise Conflict(f"DAG {self.dag.dag_id!r} is {self.dag.status}; it opens no gates.")
        gate = Gate(
            dag=self.dag,
            node_id=payload.node_id,
            presentation=protocol.payload_to_builtins(payload)["presentation"],
            assignees=list(payload.assignees),
            quorum=payload.quorum,
            timeout_at=timeout_at,
            default_decision=default or "",
        )
        self.gates[gate.node_id] = gate
        self.new_gates.append(gate)
        node_id = payload.node_id
        update = self.nodes.get(node_id)
        if update is not None:
            status: str | None = update.status
        else:  # a node added by this flush was not read: it is pending
            added = node_id in self.current_structure().nodes
            status = self.statuses.get(node_id, "pending" if added else None)
        if status is not None and status != "waiting":
            # Whatever the engine said, a node with a pending gate is waiting.
            self.node_state(protocol.NodeState(node_id=node_id, status="waiting"))
        self.emit(payload)
        return gate
