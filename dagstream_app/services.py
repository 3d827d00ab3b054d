"""The one place that changes dagstream state (DAGs, nodes, edges, gates, events).

Its helpers live beside it and only it calls them: :mod:`~dagstream_app.graph`
(structure checks), :mod:`~dagstream_app.bulk` (the SQL of a flush) and
:mod:`~dagstream_app.broadcast` (group names, publishing).

Every change runs in one transaction that first locks the DAG row (``SELECT …
FOR UPDATE`` on PostgreSQL; on SQLite a first write takes the database's write
lock), applies its deltas, appends their events with the DAG's next seqs and,
after commit, publishes them to the DAG's channel-layer group in one message.
Holding the row lock for the whole transaction keeps seqs gap-free and unique
across processes, and makes "the first decision wins" race-proof.

Engine deltas go through :func:`apply`, any number per transaction: each is
checked in Python against the DAG's structure before anything is written (a
refused one needs no savepoint and changes nothing), then the flush writes one
multi-row INSERT of events, one UPDATE of the nodes it touched and one UPDATE of
the DAG. The single-delta functions (:func:`node_state`, ...) are that with one.

These functions are synchronous; async callers wrap them with
``database_sync_to_async`` (the engine API and consumers do).
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from dagstream_app import broadcast, bulk, graph, protocol
from dagstream_app.conf import config
from dagstream_app.errors import (
    Conflict,
    DagstreamError,
    Forbidden,
    InvalidDelta,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from dagstream_app.layer_messages import PublishedEvent
from dagstream_app.models import CommandReceipt, Dag, Edge, Event, Gate, Node
from dagstream_app.permissions import Action, authorize
from dagstream_app.protocol import format_ts
from dagstream_app.state import engine_stale, gate_dict

__all__ = [
    "CONTROL_TRANSITIONS",
    "Conflict",
    "DagstreamError",
    "Delta",
    "Flushed",
    "Forbidden",
    "InvalidDelta",
    "NotFound",
    "RateLimited",
    "apply",
    "complete",
    "control",
    "cost",
    "create_dag",
    "decide_gate",
    "delete_dag",
    "edge_active",
    "fail",
    "force_cancel",
    "heartbeat",
    "mutate",
    "node_state",
    "open_gate",
    "report_error",
    "set_state",
]

log = logging.getLogger(__name__)

DeltaKind = Literal[
    "node_state",
    "edge_active",
    "mutate",
    "cost",
    "error",
    "complete",
    "fail",
    "set_state",
    "open_gate",
]

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


@dataclass(frozen=True, slots=True)
class Delta:
    """One engine report, as :func:`apply` takes it: a kind and its arguments."""

    kind: DeltaKind
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Flushed:
    """What :func:`apply` did: per delta its seq (a :class:`Gate` for ``open_gate``) or
    the :class:`DagstreamError` that refused it; the events to publish, in seq order."""

    results: list[Any]
    events: list[PublishedEvent]
    wake_engine: bool = False
    last_seq: int = 0  # the DAG's last seq after the flush
    # People's commands (seq, pause|resume|cancel) written by others since the
    # caller last looked: only read when the DAG's seq moved on without it.
    commands: list[tuple[int, str]] = field(default_factory=list)


# ---------------------------------------------------------------- checking


# Fields whose value is one of a fixed set: a refusal lists the valid ones.
_CHOICES: dict[str, tuple[str, ...]] = {
    "status": protocol.NODE_STATUSES,
    "op": protocol.MUTATION_OPS,
}
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def _explain(exc: msgspec.ValidationError) -> str:
    """msgspec's message, with the valid values when a field takes one of a fixed set."""
    message = str(exc)
    found = _AT.search(message)
    path = found.group("path") if found else ""
    choices = _CHOICES.get(path.rsplit(".", 1)[-1])
    if choices and message.startswith("Invalid"):
        return f"{message}; valid values: {', '.join(choices)}."
    return message


_PLAIN = (bool, int)


def _json_field(name: str, value: Any) -> Any:
    """``value`` as JSON builtins, or :class:`InvalidDelta` naming the field it came in."""
    kind = type(value)
    if value is None or kind in _PLAIN:
        return value  # most fields of most deltas: nothing to convert or look into
    if kind is str and "\x00" not in value:
        return value  # ids, statuses, messages: already JSON, and storable
    if kind is float and math.isfinite(value):
        return value
    try:
        data = msgspec.to_builtins(value)
    except (TypeError, ValueError) as exc:
        raise InvalidDelta(f"{name} is not JSON: {exc}.") from None
    except RecursionError:
        raise InvalidDelta(f"{name} nests too deeply to store.") from None
    # A value dagstream cannot store (NaN, a NUL character) is refused here,
    # not later as a database error that would also roll back the other
    # deltas of its flush.
    try:
        problem = protocol.json_problem(data)
    except RecursionError:
        raise InvalidDelta(f"{name} nests too deeply to store.") from None
    if problem is not None:
        raise InvalidDelta(f"{name} {problem}.")
    return data


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidDelta(f"{name} must be a mapping (a dict), not {type(value).__name__}.")
    return dict(value)


def _validate(payload: Mapping[str, Any]) -> protocol.EventPayload:
    data: dict[str, Any] = {}
    for key, value in payload.items():
        kind = type(value)
        if value is None or kind is bool or kind is int or (kind is str and "\x00" not in value):
            data[key] = value  # most fields of most deltas: taken as they are
        else:
            data[key] = _json_field(key, value)
    try:
        return protocol.validate_payload(data)
    except msgspec.ValidationError as exc:
        raise InvalidDelta(_explain(exc)) from None


def _refuse_nul(label: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidDelta(f"The {label} contains a NUL character (\\u0000); it is not stored.")


def _check_cost(spent: Any, budget: Any, add: Any = None) -> None:
    for label, value in (("spent", spent), ("budget", budget), ("add", add)):
        if value is not None and not protocol.is_non_negative(value):
            raise InvalidDelta(f"{label} must be a non-negative number, not {value!r}.")
    if spent is None and budget is None and add is None:
        raise InvalidDelta("cost() needs spent, add or budget.")
    if spent is not None and add is not None:
        raise InvalidDelta("cost() takes spent (a total) or add (an increment), not both.")


def _prepare(delta: Delta) -> Any:
    """The delta's shape checked, before the database is touched: its payload struct."""
    a = delta.args
    match delta.kind:
        case "node_state":
            metrics = a.get("metrics")
            return _validate(
                {
                    "type": "node_state",
                    "node_id": a["node_id"],
                    "status": a["status"],
                    "output": a.get("output"),
                    "metrics": None if metrics is None else _mapping("metrics", metrics),
                }
            )
        case "edge_active":
            return _validate({"type": "edge_active", "from": a["src"], "to": a["dst"]})
        case "mutate":
            mutation = _mapping("mutation", a["mutation"])
            return _validate({"type": "dag_mutated", "mutation": mutation})
        case "cost":
            _check_cost(a.get("spent"), a.get("budget"), a.get("add"))
            return None
        case "error" | "fail":
            return _validate(
                {"type": "error", "message": a["message"], "node_id": a.get("node_id")}
            )
        case "complete":
            return _validate({"type": "execution_complete", "results": a.get("results")})
        case "set_state":
            if a["state"] not in _ENGINE_TRANSITIONS:
                raise InvalidDelta(
                    f"An engine sets state to one of {sorted(_ENGINE_TRANSITIONS)}, "
                    f"not {a['state']!r}; use complete() or fail() to finish."
                )
            return None
        case "open_gate":
            default = a.get("default")
            if default is not None and default not in protocol.DECISION_TO_GATE_STATUS:
                raise InvalidDelta(f"default must be approve, reject or modify, not {default!r}.")
            return _validate(
                {
                    "type": "human_gate_waiting",
                    "node_id": a["node_id"],
                    "presentation": _mapping("presentation", a["presentation"]),
                }
            )
    raise InvalidDelta(f"Unknown delta {delta.kind!r}.")  # pragma: no cover - typed


# --------------------------------------------------- structure, per process

# The structure each DAG had at its last structure_version: a flush checks its
# deltas against it without reading every node and edge again.
_structures: OrderedDict[tuple[str, int], graph.Structure] = OrderedDict()
_structures_lock = threading.Lock()
_STRUCTURES_KEPT = 256


def _structure(dag: Dag) -> graph.Structure:
    key = (dag.dag_id, dag.structure_version)
    with _structures_lock:
        known = _structures.get(key)
        if known is not None:
            _structures.move_to_end(key)
            return known
    nodes = Node.objects.filter(dag=dag).values_list("node_id", flat=True)
    edges = Edge.objects.filter(dag=dag).values_list("src", "dst")
    return graph.Structure(nodes, edges)


def _remember(dag: Dag, structure: graph.Structure) -> None:
    with _structures_lock:
        _structures[(dag.dag_id, dag.structure_version)] = structure
        while len(_structures) > _STRUCTURES_KEPT:
            _structures.popitem(last=False)


# ----------------------------------------------------------------- writing


class _Flush:
    """The changes of one transaction: applied in memory, then written and published."""

    def __init__(
        self, dag: Dag, structure: graph.Structure | None = None, *, engine: bool = False
    ) -> None:
        self.dag = dag
        self.engine = engine  # the engine's own reports: they show it is alive
        self.now = timezone.now()
        self.ts = format_ts(self.now)
        self.structure = structure
        self._own_structure = False
        self.rows: list[bulk.EventRow] = []
        self.published: list[PublishedEvent] = []
        self.nodes: dict[str, bulk.NodeUpdate] = {}
        self.metrics: dict[str, dict[str, Any]] = {}  # merged so far, per node
        self.statuses: dict[str, str] = {}  # of nodes getting a gate, as read
        self.mutations: list[tuple[str, Any]] = []
        self.gates: dict[str, Gate] = {}  # existing and new, by node
        self.new_gates: list[Gate] = []
        self.wake_engine = False

    # -- events

    def emit(self, payload: protocol.EventPayload, command: str = "") -> int:
        data = protocol.payload_to_builtins(payload)
        return self.emit_data(str(payload.__struct_config__.tag), data, command)

    def emit_data(self, kind: str, data: dict[str, Any], command: str = "") -> int:
        self.dag.last_seq += 1
        seq = self.dag.last_seq
        text = protocol.encode(data)
        self.rows.append(bulk.EventRow(seq, kind, text, command))
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

    def finish(self, status: str) -> None:
        self.dag.status = status
        self.dag.finished_at = self.now
        self.emit(protocol.ExecutionState(state=status))  # type: ignore[arg-type]

    def refuse_if_ended(self) -> None:
        if self.dag.is_terminal:
            raise Conflict(
                f"DAG {self.dag.dag_id!r} is {self.dag.status}; it takes no more changes."
            )

    # -- engine deltas

    def load(self, prepared: Sequence[tuple[int, Delta, Any]]) -> None:
        """Read, in two queries at most, what the deltas merge into or look up."""
        with_metrics = {p.node_id for _, d, p in prepared if d.kind == "node_state" and p.metrics}
        if with_metrics:
            self.metrics = bulk.node_metrics(self.dag.pk, with_metrics)
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

    def apply(self, delta: Delta, payload: Any) -> Any:
        a = delta.args
        match delta.kind:
            case "open_gate":
                return self._open_gate(payload, a.get("timeout_at"), a.get("default"))
            case "set_state":
                return self._set_state(a["state"])
        self.refuse_if_ended()
        match delta.kind:
            case "node_state":
                return self._node_state(payload)
            case "edge_active":
                if (payload.src, payload.dst) not in self._graph().edges:
                    raise InvalidDelta(
                        f"Unknown edge {payload.src!r} -> {payload.dst!r} "
                        f"in DAG {self.dag.dag_id!r}."
                    )
                return self.emit(payload)
            case "mutate":
                return self._mutate(payload)
            case "cost":
                if a.get("spent") is not None:
                    self.dag.spent = float(a["spent"])
                if a.get("add") is not None:  # under the row lock: increments never collide
                    self.dag.spent = round(self.dag.spent + float(a["add"]), 6)
                if a.get("budget") is not None:
                    self.dag.budget = float(a["budget"])
                return self.emit(
                    protocol.CostUpdate(
                        spent=self.dag.spent, budget=self.dag.budget, remaining=self.dag.remaining
                    )
                )
            case "error":
                return self.emit(payload)
            case "fail":
                seq = self.emit(payload)
                self.finish("failed")
                return seq
            case "complete":
                self.dag.results = msgspec.to_builtins(a.get("results"))
                seq = self.emit(payload)
                self.finish("completed")
                return seq
        raise InvalidDelta(f"Unknown delta {delta.kind!r}.")  # pragma: no cover - typed

    def _graph(self) -> graph.Structure:
        assert self.structure is not None
        return self.structure

    def _node_state(self, payload: protocol.NodeState) -> int:
        node_id = payload.node_id
        if node_id not in self._graph().nodes:
            raise InvalidDelta(f"Unknown node {node_id!r} in DAG {self.dag.dag_id!r}.")
        data = protocol.payload_to_builtins(payload)
        update = self.nodes.get(node_id)
        if update is None:
            update = self.nodes[node_id] = bulk.NodeUpdate(node_id, payload.status)
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

    def _mutate(self, payload: protocol.DagMutated) -> int:
        if not self._own_structure:
            self.structure = self._graph().copy()
            self._own_structure = True
        structure = self._graph()
        data = protocol.payload_to_builtins(payload)
        match payload.mutation:
            case protocol.AddNode(node=spec):
                structure.add_node(spec.id)
                self.mutations.append(("add_node", spec))
            case protocol.RemoveNode(node_id=node_id):
                gone = structure.remove_node(node_id)
                # The edges that went with the node are in its event: history needs them.
                data["mutation"]["edges"] = [{"from": a, "to": b} for a, b in gone]
                self.nodes.pop(node_id, None)
                self.metrics.pop(node_id, None)
                self.mutations.append(("remove_node", node_id))
            case protocol.AddEdge(src=src, dst=dst):
                structure.add_edge(src, dst)
                self.mutations.append(("add_edge", (src, dst)))
            case protocol.RemoveEdge(src=src, dst=dst):
                structure.remove_edge(src, dst)
                self.mutations.append(("remove_edge", (src, dst)))
        return self.emit_data("dag_mutated", data)

    def _set_state(self, state: str) -> int:
        self.refuse_if_ended()
        if self.dag.status not in _ENGINE_TRANSITIONS[state]:
            raise Conflict(f"Cannot go from {self.dag.status} to {state}.")
        if state == "cancelled":
            self.finish(state)
            return self.dag.last_seq
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
            added = node_id in self._graph().nodes
            status = self.statuses.get(node_id, "pending" if added else None)
        if status is not None and status != "waiting":
            # Whatever the engine said, a node with a pending gate is waiting.
            self._node_state(protocol.NodeState(node_id=node_id, status="waiting"))
        self.emit(payload)
        return gate

    # -- writing it all

    def save(self, *, publish: bool) -> None:
        if not self.rows:
            return
        dag = self.dag
        self._write_mutations()
        if self.new_gates:
            Gate.objects.bulk_create(self.new_gates)
        bulk.update_nodes(dag.pk, self.now, list(self.nodes.values()))
        bulk.insert_events(dag.pk, self.now, self.rows)
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
            dag.structure_version = secrets.randbits(62) or 1
            fields["structure_version"] = dag.structure_version
        Dag.objects.filter(pk=dag.pk).update(**fields)
        if self.structure is not None:
            _remember(dag, self.structure)
        if publish:
            dag_id, events, wake = dag.dag_id, self.published, self.wake_engine
            transaction.on_commit(lambda: broadcast.publish(dag_id, events, wake_engine=wake))

    def _write_mutations(self) -> None:
        dag = self.dag
        for op, arg in self.mutations:
            match op:
                case "add_node":
                    Node.objects.create(dag=dag, node_id=arg.id, label=arg.label)
                case "remove_node":
                    Node.objects.filter(dag=dag, node_id=arg).delete()
                    Edge.objects.filter(dag=dag, src=arg).delete()
                    Edge.objects.filter(dag=dag, dst=arg).delete()
                case "add_edge":
                    Edge.objects.create(dag=dag, src=arg[0], dst=arg[1])
                case "remove_edge":
                    Edge.objects.filter(dag=dag, src=arg[0], dst=arg[1]).delete()


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
def _change(dag_id: str) -> Iterator[_Flush]:
    """One transaction of a person's action on the DAG, published after commit."""
    with transaction.atomic():
        flush = _Flush(_lock(dag_id))
        yield flush
        flush.save(publish=True)


# ------------------------------------------------------------ engine deltas


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
    """
    results: list[Any] = [None] * len(deltas)
    prepared: list[tuple[int, Delta, Any]] = []
    for index, delta in enumerate(deltas):
        try:
            prepared.append((index, delta, _prepare(delta)))
        except DagstreamError as exc:
            results[index] = exc
    if not prepared:
        return Flushed(results, [])
    try:
        with transaction.atomic():
            dag = _lock(dag_id)
            commands: list[tuple[int, str]] = []
            if known_seq is not None and dag.last_seq != known_seq:
                commands = _commands_after(dag, command_cursor)
            flush = _Flush(dag, _structure(dag), engine=True)
            flush.load(prepared)
            for index, delta, payload in prepared:
                try:
                    results[index] = flush.apply(delta, payload)
                except DagstreamError as exc:
                    results[index] = exc
            flush.save(publish=publish)
    except NotFound as exc:
        for index, _, _ in prepared:
            results[index] = exc
        return Flushed(results, [])
    return Flushed(results, flush.published, flush.wake_engine, dag.last_seq, commands)


def _commands_after(dag: Dag, cursor: int) -> list[tuple[int, str]]:
    rows = Event.objects.filter(dag=dag, seq__gt=cursor).exclude(command="")
    return list(rows.order_by("seq").values_list("seq", "command"))


def _one(dag_id: str, kind: DeltaKind, **args: Any) -> Any:
    result = apply(dag_id, [Delta(kind, args)]).results[0]
    if isinstance(result, DagstreamError):
        raise result
    return result


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
    _refuse_nul("DAG name", name)
    specs = graph.node_specs(nodes)
    for spec in specs:
        _refuse_nul(f"node {spec.id!r}", spec.id + spec.label)
    pairs = graph.edge_pairs(edges)
    graph.check_structure([s.id for s in specs], pairs)
    with transaction.atomic():
        try:
            with transaction.atomic():
                dag = Dag.objects.create(
                    dag_id=dag_id,
                    name=name,
                    budget=budget,
                    structure_version=secrets.randbits(62),
                    engine_seen_at=timezone.now(),
                )
        except IntegrityError:
            raise Conflict(f"DAG {dag_id!r} already exists.") from None
        bulk.insert_nodes(dag.pk, dag.created_at, [(s.id, s.label) for s in specs])
        bulk.insert_edges(dag.pk, pairs)
        flush = _Flush(dag, graph.Structure((s.id for s in specs), pairs))
        flush.emit(protocol.ExecutionState(state="running"))
        flush.save(publish=True)
    return dag


def node_state(
    dag_id: str,
    node_id: str,
    status: str,
    *,
    output: Any = None,
    metrics: Mapping[str, Any] | None = None,
) -> int:
    """Record a node's new status (and output / metrics); emits ``node_state``; its seq."""
    seq: int = _one(
        dag_id, "node_state", node_id=node_id, status=status, output=output, metrics=metrics
    )
    return seq


def edge_active(dag_id: str, src: str, dst: str) -> int:
    """Mark data flowing along an existing edge; emits ``edge_active``; its seq."""
    seq: int = _one(dag_id, "edge_active", src=src, dst=dst)
    return seq


def mutate(dag_id: str, mutation: Mapping[str, Any]) -> int:
    """Change the DAG's structure; emits ``dag_mutated``; its seq. Cycles are refused."""
    seq: int = _one(dag_id, "mutate", mutation=mutation)
    return seq


def cost(
    dag_id: str,
    *,
    spent: float | None = None,
    budget: float | None = None,
    add: float | None = None,
) -> int:
    """Set the running cost (absolute ``spent``, or ``add`` to it) and/or the budget;
    emits ``cost_update``; its seq."""
    seq: int = _one(dag_id, "cost", spent=spent, budget=budget, add=add)
    return seq


def complete(dag_id: str, results: Any = None) -> int:
    """Finish the run with its results; emits ``execution_complete`` then the state."""
    seq: int = _one(dag_id, "complete", results=results)
    return seq


def fail(dag_id: str, message: str, *, node_id: str | None = None) -> int:
    """End the run as failed; emits ``error`` then ``execution_state`` failed."""
    seq: int = _one(dag_id, "fail", message=message, node_id=node_id)
    return seq


def report_error(dag_id: str, message: str, *, node_id: str | None = None) -> int:
    """Emit an ``error`` event without ending the run."""
    seq: int = _one(dag_id, "error", message=message, node_id=node_id)
    return seq


def set_state(dag_id: str, state: str) -> int:
    """Engine-side transition: ``paused``, ``running`` (resume) or ``cancelled``."""
    seq: int = _one(dag_id, "set_state", state=state)
    return seq


def open_gate(
    dag_id: str,
    node_id: str,
    presentation: Mapping[str, Any],
    *,
    timeout_at: datetime | None = None,
    default: str | None = None,
) -> Gate:
    """Open the gate at ``node_id`` (emits ``human_gate_waiting``), or return the existing one."""
    gate: Gate = _one(
        dag_id,
        "open_gate",
        node_id=node_id,
        presentation=presentation,
        timeout_at=timeout_at,
        default=default,
    )
    return gate


def heartbeat(dag_id: str) -> bool:
    """The engine is alive: one UPDATE of ``engine_seen_at``, no event.

    False once the run has ended (or is gone): there is nothing left to watch.
    """
    live = Dag.objects.filter(pk=dag_id, status__in=protocol.LIVE_STATUSES)
    return bool(live.update(engine_seen_at=timezone.now()))


# ------------------------------------------------------ people's decisions


def _authorize(actor: Any, action: Action, dag_id: str) -> Dag:
    try:
        return authorize(actor, action, dag_id)
    except Unauthenticated as exc:
        # People's actions need a signed-in user: to them, none is a refusal.
        raise Forbidden(exc.message) from None


def _is_repeat(flush: _Flush, actor: Any, command_id: Any, kind: str) -> bool:
    """Record ``command_id``; True if this user already had it applied on this DAG."""
    if command_id is None or actor is None:
        return False
    receipt, created = CommandReceipt.objects.get_or_create(
        dag=flush.dag, user=actor, command_id=str(command_id), defaults={"type": kind}
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
    with _change(dag_id) as flush:
        if _is_repeat(flush, actor, command_id, action):
            return flush.dag
        if flush.dag.status not in allowed_from:
            raise Conflict(f"Cannot {action} a DAG that is {flush.dag.status}.")
        flush.dag.status = target
        flush.emit(protocol.ExecutionState(state=target), command=action)  # type: ignore[arg-type]
        flush.wake_engine = True
        return flush.dag


def force_cancel(dag_id: str, *, actor: Any, command_id: Any = None) -> Dag:
    """End a run whose engine is not responding: ``cancelled``, on a person's word.

    Refused with :class:`Conflict` while the engine still reports (cancel
    instead). Its pending gates are rejected and its unfinished nodes cancelled,
    each with its event, so every page and client sees the run end; an engine
    that comes back finds the run over.
    """
    _authorize(actor, "control", dag_id)
    with _change(dag_id) as flush:
        dag = flush.dag
        if _is_repeat(flush, actor, command_id, "force_cancel"):
            return dag
        flush.refuse_if_ended()
        if not engine_stale(dag.status, dag.engine_seen_at, flush.now):
            limit = config().engine_stale_seconds
            raise Conflict(
                f"The engine of DAG {dag_id!r} reported in the last {limit:g} s; "
                "cancel it instead (force-ending is for runs whose engine is gone)."
            )
        who = actor.get_username()
        note = f"The run was ended by {who}: its engine was not responding."
        pending = Gate.objects.filter(dag=dag, status=Gate.Status.PENDING)
        for gate in pending:
            flush.emit(
                protocol.GateDecided(
                    node_id=gate.node_id, decision="reject", feedback=note, decided_by=who
                )
            )
        pending.update(
            status=Gate.Status.REJECTED, feedback=note, decided_by=who, decided_at=flush.now
        )
        flush.structure = _structure(dag)
        open_nodes = Node.objects.filter(dag=dag).exclude(
            status__in=protocol.FINISHED_NODE_STATUSES
        )
        for node_id in open_nodes.values_list("node_id", flat=True):
            flush._node_state(protocol.NodeState(node_id=node_id, status="cancelled"))
        flush.emit(protocol.ErrorEvent(message=note))
        flush.finish("cancelled")
        flush.wake_engine = True
        return dag


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
    _refuse_nul("node id", node_id)
    _refuse_nul("feedback", feedback)
    if decision not in protocol.DECISION_TO_GATE_STATUS:
        raise InvalidDelta(f"decision must be approve, reject or modify, not {decision!r}.")
    if decision == "modify" and not feedback.strip():
        raise InvalidDelta("A modify decision needs feedback.")
    limit = config().feedback_max_length
    if len(feedback) > limit:
        raise InvalidDelta(f"Feedback is {len(feedback)} characters; the limit is {limit}.")
    if actor is not None:
        _authorize(actor, "decide", dag_id)
    with _change(dag_id) as flush:
        repeat = _is_repeat(flush, actor, command_id, "human_decision")
        gate = Gate.objects.filter(dag=flush.dag, node_id=node_id).first()
        if gate is None:
            raise NotFound(f"No gate at node {node_id!r} of DAG {dag_id!r}.")
        if repeat:
            return gate
        if gate.status != Gate.Status.PENDING:
            raise Conflict(
                f"Gate {node_id!r} was already decided: {gate.decision}.", gate_dict(gate)
            )
        if flush.dag.is_terminal:
            raise Conflict(f"DAG {dag_id!r} is {flush.dag.status}; its gates are closed.")
        decided_by = "" if actor is None else actor.get_username()
        # Conditional update: first wins even if a caller bypassed the row lock.
        won = Gate.objects.filter(pk=gate.pk, status=Gate.Status.PENDING).update(
            status=protocol.DECISION_TO_GATE_STATUS[decision],
            feedback=feedback,
            decided_by=decided_by,
            decided_at=flush.now,
        )
        gate.refresh_from_db()
        if not won:
            raise Conflict(
                f"Gate {node_id!r} was already decided: {gate.decision}.", gate_dict(gate)
            )
        flush.emit(
            protocol.GateDecided(
                node_id=node_id,
                decision=decision,  # type: ignore[arg-type]
                feedback=feedback,
                decided_by=decided_by,
            )
        )
        flush.wake_engine = True
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
