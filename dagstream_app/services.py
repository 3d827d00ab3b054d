"""The one place that changes dagstream state (DAGs, nodes, edges, gates, events).

Its helpers live beside it and only it calls them: :mod:`~dagstream_app.graph`
(structure checks) and :mod:`~dagstream_app.broadcast` (group names, publishing).

Every change runs in one transaction that first locks the DAG row (a no-op
``UPDATE``: a row lock on PostgreSQL, the write lock on SQLite), applies the
delta to the state rows, appends its events with the DAG's next seqs, and, after
commit, publishes them to the DAG's channel-layer group. Holding the row lock
for the whole transaction is what keeps seqs gap-free and unique across
processes, and what makes "the first decision wins" race-proof.

These functions are synchronous; async callers wrap them with
``database_sync_to_async`` (the engine API and consumers do).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import msgspec
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from dagstream_app import broadcast, graph, protocol
from dagstream_app.conf import get_config
from dagstream_app.errors import Conflict, DagstreamError, Forbidden, InvalidDelta, NotFound
from dagstream_app.models import CommandReceipt, Dag, Edge, Event, Gate, Node
from dagstream_app.permissions import Action, Refused, authorize
from dagstream_app.protocol import format_ts
from dagstream_app.state import gate_dict

__all__ = [
    "CONTROL_TRANSITIONS",
    "Conflict",
    "DagstreamError",
    "Forbidden",
    "InvalidDelta",
    "NotFound",
    "apply_batch",
    "complete",
    "control",
    "cost",
    "create_dag",
    "decide_gate",
    "delete_dag",
    "edge_active",
    "fail",
    "mutate",
    "node_state",
    "open_gate",
    "report_error",
    "set_state",
]

log = logging.getLogger(__name__)

# Set while apply_batch runs (per thread): changes publish once, together.
_batching = threading.local()


# ----------------------------------------------------------------- writing


class _Change:
    """The events one transaction appends; flushed and published together."""

    def __init__(self, dag: Dag) -> None:
        self.dag = dag
        self.now = timezone.now()
        self.events: list[Event] = []
        self.wake_engine = False

    def emit(self, payload: protocol.EventPayload, command: str = "") -> Event:
        self.dag.last_seq += 1
        event = Event(
            dag=self.dag,
            seq=self.dag.last_seq,
            type=str(payload.__struct_config__.tag),
            payload=protocol.payload_to_builtins(payload),
            created_at=self.now,
            command=command,
        )
        self.events.append(event)
        return event

    def save(self) -> None:
        if not self.events:
            return
        Event.objects.bulk_create(self.events)
        self.dag.save(
            update_fields=[
                "last_seq",
                "status",
                "budget",
                "spent",
                "results",
                "finished_at",
                "updated_at",
            ]
        )
        dag_id = self.dag.dag_id
        events = [
            {
                "seq": e.seq,
                "event": e.type,
                "frame": protocol.event_frame(
                    e.type, dag_id, e.seq, format_ts(e.created_at), e.payload
                ),
                "terminal": e.type == "execution_state"
                and e.payload["state"] in protocol.TERMINAL_STATUSES,
            }
            for e in self.events
        ]
        wake = self.wake_engine
        batch: list[tuple[str, list[dict[str, Any]], bool]] | None = getattr(
            _batching, "changes", None
        )
        if batch is not None:
            batch.append((dag_id, events, wake))  # apply_batch publishes them together
        else:
            transaction.on_commit(lambda: broadcast.publish(dag_id, events, wake_engine=wake))


def _lock(dag_id: str) -> Dag:
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
def _change(dag_id: str, *, allow_terminal: bool = False) -> Iterator[_Change]:
    with transaction.atomic():
        dag = _lock(dag_id)
        if dag.is_terminal and not allow_terminal:
            raise Conflict(f"DAG {dag_id!r} is {dag.status}; it takes no more changes.")
        change = _Change(dag)
        yield change
        change.save()


def _validate(payload: Mapping[str, Any]) -> protocol.EventPayload:
    try:
        # As JSON builtins first: a value JSON cannot hold (an object, NaN) is
        # refused here, not later as a database error that would also roll back
        # the other calls of an apply_batch().
        data = msgspec.to_builtins(dict(payload))
        json.dumps(data, allow_nan=False)
        return protocol.validate_payload(data)
    except (TypeError, ValueError) as exc:  # ValidationError is a ValueError
        raise InvalidDelta(str(exc)) from None


# ------------------------------------------------------------ engine deltas


def create_dag(
    dag_id: str,
    *,
    name: str = "",
    nodes: Iterable[Any] = (),
    edges: Iterable[Any] = (),
    budget: float | None = None,
) -> Dag:
    """Create a running DAG with its nodes and edges; emits ``execution_state``."""
    if not isinstance(dag_id, str) or not protocol.DAG_ID_RE.match(dag_id):
        raise InvalidDelta(f"Bad DAG id {dag_id!r}: use 1-100 letters, digits, '_', '.' or '-'.")
    if budget is not None and not protocol.is_non_negative(budget):
        raise InvalidDelta(f"Budget must be a non-negative number, not {budget!r}.")
    if len(name) > 200:
        raise InvalidDelta("A DAG name is at most 200 characters.")
    specs = graph.node_specs(nodes)
    pairs = graph.edge_pairs(edges)
    graph.check_structure([s.id for s in specs], pairs)
    with transaction.atomic():
        try:
            with transaction.atomic():
                dag = Dag.objects.create(dag_id=dag_id, name=name, budget=budget)
        except IntegrityError:
            raise Conflict(f"DAG {dag_id!r} already exists.") from None
        Node.objects.bulk_create(Node(dag=dag, node_id=s.id, label=s.label) for s in specs)
        Edge.objects.bulk_create(Edge(dag=dag, src=a, dst=b) for a, b in pairs)
        change = _Change(dag)
        change.emit(protocol.ExecutionState(state="running"))
        change.save()
    return dag


def node_state(
    dag_id: str,
    node_id: str,
    status: str,
    *,
    output: Any = None,
    metrics: Mapping[str, Any] | None = None,
) -> Event:
    """Record a node's new status (and output / metrics); emits ``node_state``."""
    payload = _validate(
        {
            "type": "node_state",
            "node_id": node_id,
            "status": status,
            "output": output,
            "metrics": None if metrics is None else dict(metrics),
        }
    )
    assert isinstance(payload, protocol.NodeState)
    with _change(dag_id) as change:
        rows = Node.objects.filter(dag=change.dag, node_id=node_id)
        updates: dict[str, Any] = {"status": payload.status}
        if payload.output is not None:
            updates["output"] = payload.output
        if payload.metrics:
            # Metrics merge into what the node reported before: read, then write.
            current = rows.values_list("metrics", flat=True).first()
            updates["metrics"] = {**(current or {}), **payload.metrics}
        if payload.status == "running":
            updates["started_at"] = Coalesce(F("started_at"), change.now)
        if payload.status in protocol.FINISHED_NODE_STATUSES:
            updates["finished_at"] = change.now
        if not rows.update(**updates):
            raise InvalidDelta(f"Unknown node {node_id!r} in DAG {dag_id!r}.")
        return change.emit(payload)


def edge_active(dag_id: str, src: str, dst: str) -> Event:
    """Mark data flowing along an existing edge; emits ``edge_active``."""
    payload = _validate({"type": "edge_active", "from": src, "to": dst})
    with _change(dag_id) as change:
        if not Edge.objects.filter(dag=change.dag, src=src, dst=dst).exists():
            raise InvalidDelta(f"Unknown edge {src!r} -> {dst!r} in DAG {dag_id!r}.")
        return change.emit(payload)


def mutate(dag_id: str, mutation: Mapping[str, Any]) -> Event:
    """Change the DAG's structure; emits ``dag_mutated``. Cycles are refused."""
    payload = _validate({"type": "dag_mutated", "mutation": dict(mutation)})
    assert isinstance(payload, protocol.DagMutated)
    op = payload.mutation
    with _change(dag_id) as change:
        dag = change.dag
        nodes = Node.objects.filter(dag=dag)
        match op:
            case protocol.AddNode(node=spec):
                if nodes.filter(node_id=spec.id).exists():
                    raise InvalidDelta(f"Node {spec.id!r} already exists.")
                Node.objects.create(dag=dag, node_id=spec.id, label=spec.label)
            case protocol.RemoveNode(node_id=node_id):
                if not nodes.filter(node_id=node_id).delete()[0]:
                    raise InvalidDelta(f"Unknown node {node_id!r}.")
                Edge.objects.filter(dag=dag, src=node_id).delete()
                Edge.objects.filter(dag=dag, dst=node_id).delete()
            case protocol.AddEdge(src=src, dst=dst):
                for end in (src, dst):
                    if not nodes.filter(node_id=end).exists():
                        raise InvalidDelta(f"Edge {src!r} -> {dst!r} names unknown node {end!r}.")
                existing = list(Edge.objects.filter(dag=dag).values_list("src", "dst"))
                if (src, dst) in existing:
                    raise InvalidDelta(f"Edge {src!r} -> {dst!r} already exists.")
                cycle = graph.find_cycle([*existing, (src, dst)])
                if cycle:
                    raise InvalidDelta(
                        f"Edge {src!r} -> {dst!r} would create a cycle: {' -> '.join(cycle)}."
                    )
                Edge.objects.create(dag=dag, src=src, dst=dst)
            case protocol.RemoveEdge(src=src, dst=dst):
                if not Edge.objects.filter(dag=dag, src=src, dst=dst).delete()[0]:
                    raise InvalidDelta(f"Unknown edge {src!r} -> {dst!r}.")
        return change.emit(payload)


def cost(dag_id: str, *, spent: float | None = None, budget: float | None = None) -> Event:
    """Set the running cost (absolute) and/or the budget; emits ``cost_update``."""
    for label, value in (("spent", spent), ("budget", budget)):
        if value is not None and not protocol.is_non_negative(value):
            raise InvalidDelta(f"{label} must be a non-negative number, not {value!r}.")
    if spent is None and budget is None:
        raise InvalidDelta("cost() needs spent, budget or both.")
    with _change(dag_id) as change:
        dag = change.dag
        if spent is not None:
            dag.spent = float(spent)
        if budget is not None:
            dag.budget = float(budget)
        return change.emit(
            protocol.CostUpdate(spent=dag.spent, budget=dag.budget, remaining=dag.remaining)
        )


def _finish(change: _Change, status: str) -> None:
    change.dag.status = status
    change.dag.finished_at = change.now
    change.emit(protocol.ExecutionState(state=status))  # type: ignore[arg-type]


def complete(dag_id: str, results: Any = None) -> Event:
    """Finish the run with its results; emits ``execution_complete`` then the state."""
    payload = _validate({"type": "execution_complete", "results": results})
    with _change(dag_id) as change:
        change.dag.results = msgspec.to_builtins(results)
        event = change.emit(payload)
        _finish(change, "completed")
        return event


def fail(dag_id: str, message: str, *, node_id: str | None = None) -> Event:
    """End the run as failed; emits ``error`` then ``execution_state`` failed."""
    payload = _validate({"type": "error", "message": message, "node_id": node_id})
    with _change(dag_id) as change:
        event = change.emit(payload)
        _finish(change, "failed")
        return event


def report_error(dag_id: str, message: str, *, node_id: str | None = None) -> Event:
    """Emit an ``error`` event without ending the run."""
    payload = _validate({"type": "error", "message": message, "node_id": node_id})
    with _change(dag_id) as change:
        return change.emit(payload)


def apply_batch(
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]],
) -> list[Any]:
    """Run several of the functions above in one transaction: one commit for all.

    Each call keeps its own savepoint, so a refused one changes nothing and the
    others still apply; its slot in the result holds the :class:`DagstreamError`.
    This is how the engine API coalesces concurrent deltas (group commit).
    """
    results: list[Any] = []
    changes: list[tuple[str, list[dict[str, Any]], bool]] = []
    _batching.changes = changes
    try:
        with transaction.atomic():
            for func, args, kwargs in calls:
                try:
                    results.append(func(*args, **kwargs))
                except DagstreamError as exc:
                    results.append(exc)
            transaction.on_commit(lambda: _publish_changes(changes))
    finally:
        _batching.changes = None
    return results


def _publish_changes(changes: Sequence[tuple[str, list[dict[str, Any]], bool]]) -> None:
    by_dag: dict[str, tuple[list[dict[str, Any]], bool]] = {}
    for dag_id, events, wake in changes:
        collected, woken = by_dag.setdefault(dag_id, ([], False))
        collected.extend(events)
        by_dag[dag_id] = (collected, woken or wake)
    for dag_id, (events, wake) in by_dag.items():
        broadcast.publish(dag_id, events, wake_engine=wake)


# Engine-initiated transitions (no command is sent back to the engine).
_ENGINE_TRANSITIONS: dict[str, frozenset[str]] = {
    "paused": frozenset({"running"}),
    "running": frozenset({"paused"}),
    "cancelled": frozenset({"running", "paused", "cancelling"}),
}
# Person-initiated transitions, delivered to the engine through commands().
CONTROL_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"running", "paused"}), "cancelling"),
}


def set_state(dag_id: str, state: str) -> Event:
    """Engine-side transition: ``paused``, ``running`` (resume) or ``cancelled``."""
    allowed_from = _ENGINE_TRANSITIONS.get(state)
    if allowed_from is None:
        raise InvalidDelta(
            f"An engine sets state to one of {sorted(_ENGINE_TRANSITIONS)}, not {state!r}; "
            "use complete() or fail() to finish."
        )
    with _change(dag_id) as change:
        if change.dag.status not in allowed_from:
            raise Conflict(f"Cannot go from {change.dag.status} to {state}.")
        if state == "cancelled":
            _finish(change, state)
            return change.events[-1]
        change.dag.status = state
        return change.emit(protocol.ExecutionState(state=state))  # type: ignore[arg-type]


# ------------------------------------------------------ people's decisions


def _authorize(actor: Any, action: Action, dag_id: str) -> Dag:
    try:
        return authorize(actor, action, dag_id)
    except Refused as exc:
        if exc.reason == "not_found":
            raise NotFound(exc.message) from None
        raise Forbidden(exc.message) from None


def _is_repeat(change: _Change, actor: Any, command_id: Any, kind: str) -> bool:
    """Record ``command_id``; True if this user already had it applied on this DAG."""
    if command_id is None or actor is None:
        return False
    receipt, created = CommandReceipt.objects.get_or_create(
        dag=change.dag, user=actor, command_id=str(command_id), defaults={"type": kind}
    )
    if not created and receipt.type != kind:
        # Not a repeat but a different command: acking it would hide that it never ran.
        raise Conflict(f"Command id {command_id!r} was already used for {receipt.type}.")
    return not created


def control(dag_id: str, action: str, *, actor: Any, command_id: Any = None) -> Dag:
    """Pause, resume or cancel on a person's behalf; the engine gets it via commands()."""
    if action not in CONTROL_TRANSITIONS:
        raise InvalidDelta(f"Unknown control action {action!r}; use pause, resume or cancel.")
    _authorize(actor, "control", dag_id)
    allowed_from, target = CONTROL_TRANSITIONS[action]
    with _change(dag_id, allow_terminal=True) as change:
        if _is_repeat(change, actor, command_id, action):
            return change.dag
        if change.dag.status not in allowed_from:
            raise Conflict(f"Cannot {action} a DAG that is {change.dag.status}.")
        change.dag.status = target
        change.emit(protocol.ExecutionState(state=target), command=action)  # type: ignore[arg-type]
        change.wake_engine = True
        return change.dag


def open_gate(
    dag_id: str,
    node_id: str,
    presentation: Mapping[str, Any],
    *,
    timeout_at: datetime | None = None,
    default: str | None = None,
) -> Gate:
    """Open the gate at ``node_id`` (emits ``human_gate_waiting``), or return the existing one."""
    payload = _validate(
        {"type": "human_gate_waiting", "node_id": node_id, "presentation": dict(presentation)}
    )
    if default is not None and default not in protocol.DECISION_TO_GATE_STATUS:
        raise InvalidDelta(f"default must be approve, reject or modify, not {default!r}.")
    with _change(dag_id, allow_terminal=True) as change:
        existing = Gate.objects.filter(dag=change.dag, node_id=node_id).first()
        if existing is not None:
            return existing
        if change.dag.is_terminal:
            raise Conflict(f"DAG {dag_id!r} is {change.dag.status}; it opens no gates.")
        gate = Gate.objects.create(
            dag=change.dag,
            node_id=node_id,
            presentation=protocol.payload_to_builtins(payload)["presentation"],
            timeout_at=timeout_at,
            default_decision=default or "",
        )
        change.emit(payload)
        return gate


def decide_gate(
    dag_id: str,
    node_id: str,
    decision: str,
    *,
    feedback: str | None = None,
    actor: Any = None,
    command_id: Any = None,
) -> Gate:
    """Record a decision; the first one wins, later ones raise :class:`Conflict`.

    ``actor`` None is the system (a timeout's default): no permission check and
    an empty ``decided_by``.
    """
    feedback = feedback or ""
    if decision not in protocol.DECISION_TO_GATE_STATUS:
        raise InvalidDelta(f"decision must be approve, reject or modify, not {decision!r}.")
    if decision == "modify" and not feedback.strip():
        raise InvalidDelta("A modify decision needs feedback.")
    limit = get_config()["FEEDBACK_MAX_LENGTH"]
    if len(feedback) > limit:
        raise InvalidDelta(f"Feedback is {len(feedback)} characters; the limit is {limit}.")
    if actor is not None:
        _authorize(actor, "decide", dag_id)
    with _change(dag_id, allow_terminal=True) as change:
        repeat = _is_repeat(change, actor, command_id, "human_decision")
        gate = Gate.objects.filter(dag=change.dag, node_id=node_id).first()
        if gate is None:
            raise NotFound(f"No gate at node {node_id!r} of DAG {dag_id!r}.")
        if repeat:
            return gate
        if gate.status != Gate.Status.PENDING:
            raise Conflict(
                f"Gate {node_id!r} was already decided: {gate.decision}.", gate_dict(gate)
            )
        if change.dag.is_terminal:
            raise Conflict(f"DAG {dag_id!r} is {change.dag.status}; its gates are closed.")
        decided_by = "" if actor is None else actor.get_username()
        # Conditional update: first wins even if a caller bypassed the row lock.
        won = Gate.objects.filter(pk=gate.pk, status=Gate.Status.PENDING).update(
            status=protocol.DECISION_TO_GATE_STATUS[decision],
            feedback=feedback,
            decided_by=decided_by,
            decided_at=change.now,
        )
        gate.refresh_from_db()
        if not won:
            raise Conflict(
                f"Gate {node_id!r} was already decided: {gate.decision}.", gate_dict(gate)
            )
        change.emit(
            protocol.GateDecided(
                node_id=node_id,
                decision=decision,  # type: ignore[arg-type]
                feedback=feedback,
                decided_by=decided_by,
            )
        )
        change.wake_engine = True
        return gate


# ------------------------------------------------------------------ deleting

# Events are deleted this many per transaction first, so deleting a run with a
# long log never holds locks for long on a live database.
DELETE_CHUNK = 10_000


def delete_dag(dag_id: str, *, actor: Any = None) -> None:
    """Delete a finished run with everything it holds; its live viewers are told.

    ``actor`` None is the system (``manage.py dagstream_prune``): no permission
    check. A run that has not finished is refused: cancel it first.
    """
    if actor is not None:
        _authorize(actor, "delete", dag_id)
    while True:
        with transaction.atomic():
            dag = _lock(dag_id)
            if not dag.is_terminal:
                raise Conflict(
                    f"DAG {dag_id!r} is {dag.status}; only finished runs can be deleted."
                )
            chunk = list(
                Event.objects.filter(dag=dag)
                .order_by("seq")
                .values_list("pk", flat=True)[:DELETE_CHUNK]
            )
            if len(chunk) < DELETE_CHUNK:
                dag.delete()  # the rest goes with it (fast cascading deletes)
                transaction.on_commit(lambda: broadcast.publish_deleted(dag_id))
                return
            Event.objects.filter(pk__in=chunk).delete()
