"""A DAG's state folded from its events: one small reducer per event type.

:class:`Working` is the mutable form of a :class:`~dagstream_app.protocol.DagSnapshot`.
History folds the event log up to a seq into it (:func:`rebuild`); the live
dashboard applies one event's reducer to the few rows its fragment shows.
Nothing here reads the database: :mod:`dagstream_app.state` does, and calls this.

The log does not hold the structure a DAG was created with: :func:`initial_structure`
recovers it by undoing every ``dag_mutated``, newest first, from today's. A
``remove_node`` records the edges that went with the node, so undoing it
restores them (events recorded before the server filled that in cannot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagstream_app.protocol import (
    DECISION_TO_GATE_STATUS,
    FINISHED_NODE_STATUSES,
    TERMINAL_STATUSES,
    DagSnapshot,
    EdgeView,
    ExecutionStatus,
    GanttView,
    GateView,
    NodeView,
)

# An event as clients receive it: ``type``, ``seq``, ``ts`` and its own fields.
Event = Mapping[str, Any]
Pair = tuple[str, str]

# Progress counts a node as done in these, and as active in these.
DONE_STATUSES = ("completed", "skipped")
ACTIVE_STATUSES = ("running", "waiting")


@dataclass(frozen=True)
class NodeCounts:
    total: int
    done: int
    failed: int
    running: int
    unfinished: int = 0  # pending, running or waiting: "never finished" once the run ended

    @property
    def pct(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def count_nodes(nodes: Iterable[NodeView]) -> NodeCounts:
    statuses = [n.status for n in nodes]
    return NodeCounts(
        total=len(statuses),
        done=sum(s in DONE_STATUSES for s in statuses),
        failed=statuses.count("failed"),
        running=sum(s in ACTIVE_STATUSES for s in statuses),
        unfinished=sum(s not in FINISHED_NODE_STATUSES for s in statuses),
    )


def new_node(node_id: str, label: str) -> NodeView:
    """A node as it is added: pending, nothing reported yet."""
    return NodeView(
        id=node_id,
        label=label,
        status="pending",
        output=None,
        metrics={},
        started_at=None,
        finished_at=None,
    )


@dataclass
class Working:
    """A DAG's state while events are applied to it."""

    dag_id: str
    name: str = ""
    status: ExecutionStatus = "running"
    budget: float | None = None
    spent: float = 0.0
    results: Any = None
    created_at: str = ""
    finished_at: str | None = None
    last_seq: int = 0
    at: str | None = None  # the time of the last event applied
    nodes: dict[str, NodeView] = field(default_factory=dict)
    edges: dict[Pair, None] = field(default_factory=dict)  # an ordered set
    gates: dict[str, GateView] = field(default_factory=dict)
    counts: NodeCounts | None = None  # when read without the nodes
    labels: dict[str, str] = field(default_factory=dict)  # of nodes not in ``nodes``
    gantt: GanttView | None = None  # read for the live events that change it

    def label(self, node_id: str) -> str:
        """What people call the node: its label, else its id."""
        node = self.nodes.get(node_id)
        return (node.label if node is not None else self.labels.get(node_id, "")) or node_id

    def node_counts(self) -> NodeCounts:
        return self.counts if self.counts is not None else count_nodes(self.nodes.values())

    def snapshot(self) -> DagSnapshot:
        nodes = self.nodes
        return DagSnapshot(
            dag_id=self.dag_id,
            name=self.name,
            status=self.status,
            budget=self.budget,
            spent=self.spent,
            remaining=None if self.budget is None else self.budget - self.spent,
            results=self.results,
            last_seq=self.last_seq,
            created_at=self.created_at,
            finished_at=self.finished_at,
            nodes=list(nodes.values()),
            edges=[EdgeView(a, b) for a, b in self.edges if a in nodes and b in nodes],
            gates=list(self.gates.values()),
        )


# ---------------------------------------------------------------- reducers


def _node_state(work: Working, event: Event) -> None:
    node = work.nodes.get(event["node_id"])
    if node is None:  # not in the DAG at this point, or not read (live)
        return
    status = event["status"]
    node.status = status
    if event.get("output") is not None:
        node.output = event["output"]
    if event.get("metrics"):
        node.metrics = {**node.metrics, **event["metrics"]}
    if status == "running" and node.started_at is None:
        node.started_at = event["ts"]
    if status in FINISHED_NODE_STATUSES:
        node.finished_at = event["ts"]


def _edge_active(work: Working, event: Event) -> None:
    pass  # data flowing changes no state


def _dag_mutated(work: Working, event: Event) -> None:
    apply_mutation(work, event["mutation"])


def _cost_update(work: Working, event: Event) -> None:
    work.spent = event["spent"]
    work.budget = event.get("budget")


def _execution_complete(work: Working, event: Event) -> None:
    work.results = event.get("results")


def _human_gate_waiting(work: Working, event: Event) -> None:
    node_id = event["node_id"]
    work.gates[node_id] = GateView(
        node_id=node_id,
        presentation=event["presentation"],
        status="pending",
        decision=None,
        feedback="",
        decided_by="",
        decided_at=None,
    )


def _gate_decided(work: Working, event: Event) -> None:
    node_id, decision = event["node_id"], event["decision"]
    waiting = work.gates.get(node_id)
    work.gates[node_id] = GateView(
        node_id=node_id,
        presentation=waiting.presentation if waiting is not None else {},
        status=DECISION_TO_GATE_STATUS[decision],
        decision=decision,
        feedback=event.get("feedback") or "",
        decided_by=event.get("decided_by") or "",
        decided_at=event["ts"],
    )


def _execution_state(work: Working, event: Event) -> None:
    work.status = event["state"]
    if work.status in TERMINAL_STATUSES:
        work.finished_at = event["ts"]


def _error(work: Working, event: Event) -> None:
    pass  # an error alone changes no state (a failure is an execution_state)


REDUCERS: dict[str, Callable[[Working, Event], None]] = {
    "node_state": _node_state,
    "edge_active": _edge_active,
    "dag_mutated": _dag_mutated,
    "cost_update": _cost_update,
    "execution_complete": _execution_complete,
    "human_gate_waiting": _human_gate_waiting,
    "gate_decided": _gate_decided,
    "execution_state": _execution_state,
    "error": _error,
}


def apply(work: Working, event: Event) -> None:
    """Apply one event to ``work`` (an unknown type changes only the seq)."""
    work.last_seq, work.at = event["seq"], event["ts"]
    reducer = REDUCERS.get(event["type"])
    if reducer is not None:
        reducer(work, event)


# --------------------------------------------------------------- structure


def _touching(edges: Iterable[Pair], node_id: str) -> list[Pair]:
    return [edge for edge in edges if node_id in edge]


def apply_mutation(work: Working, mutation: Mapping[str, Any]) -> None:
    match mutation["op"]:
        case "add_node":
            spec = mutation["node"]
            work.nodes[spec["id"]] = new_node(spec["id"], spec.get("label", ""))
        case "remove_node":
            gone = mutation["node_id"]
            work.nodes.pop(gone, None)
            # The edges it records, and any other: none can outlive the node.
            for edge in _touching(work.edges, gone):
                del work.edges[edge]
        case "add_edge":
            work.edges[(mutation["from"], mutation["to"])] = None
        case "remove_edge":
            work.edges.pop((mutation["from"], mutation["to"]), None)


def initial_structure(
    labels: Mapping[str, str], edges: Iterable[Pair], mutations: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, str], dict[Pair, None]]:
    """Node labels and edges before ``mutations`` (in seq order), from those after them."""
    nodes = dict(labels)
    pairs = dict.fromkeys(edges)
    # A removed node gets back the label it was last added with (one it had
    # at creation is not in the log).
    last_label: dict[str, str] = {}
    removed_label: dict[int, str] = {}
    for i, m in enumerate(mutations):
        if m["op"] == "add_node":
            last_label[m["node"]["id"]] = m["node"].get("label", "")
        elif m["op"] == "remove_node":
            removed_label[i] = last_label.get(m["node_id"], "")
    for i in range(len(mutations) - 1, -1, -1):
        m = mutations[i]
        match m["op"]:
            case "add_node":
                gone = m["node"]["id"]
                nodes.pop(gone, None)
                for edge in _touching(pairs, gone):
                    del pairs[edge]
            case "remove_node":
                nodes[m["node_id"]] = removed_label[i]
                for edge in m.get("edges") or ():
                    pairs[(edge["from"], edge["to"])] = None
            case "add_edge":
                pairs.pop((m["from"], m["to"]), None)
            case "remove_edge":
                pairs[(m["from"], m["to"])] = None
    return nodes, pairs


def rebuild(
    work: Working,
    labels: Mapping[str, str],
    edges: Iterable[Pair],
    mutations: Sequence[Mapping[str, Any]],
    events: Iterable[Event],
) -> Working:
    """``work`` (a DAG as created) with the structure before ``mutations``, then ``events``.

    ``labels`` and ``edges`` are today's structure, ``mutations`` every one
    after creation, and ``events`` the log up to the seq wanted, in order.
    """
    first_labels, work.edges = initial_structure(labels, edges, mutations)
    work.nodes = {node_id: new_node(node_id, label) for node_id, label in first_labels.items()}
    for event in events:
        apply(work, event)
    return work
