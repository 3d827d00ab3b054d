"""Typed views of a DAG's state: what the snapshot sends, the dashboard shows, replay folds.

Declared once: :mod:`dagstream_app.state` reads them, each event type's reducer
(:mod:`dagstream_app.events`) folds events into :class:`Working`, the mutable
form of a :class:`DagSnapshot`, :mod:`dagstream_app.render` shows them, and the
``snapshot`` reply sends them as they are. Every field of the sent views is
required and always sent (null when unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dagstream_app.vocabulary import (
    FINISHED_NODE_STATUSES,
    Decision,
    ExecutionStatus,
    GateStatus,
    NodeStatus,
)

Pair = tuple[str, str]  # an edge: (from, to)

# Progress counts a node as done in these, and as active in these.
DONE_STATUSES = ("completed", "skipped")
ACTIVE_STATUSES = ("running", "waiting")


class EdgeView(msgspec.Struct, frozen=True):
    """One edge, ``{"from": ..., "to": ...}`` on the wire."""

    src: str = msgspec.field(name="from")
    dst: str = msgspec.field(name="to")


class NodeView(msgspec.Struct):
    id: str
    label: str
    status: NodeStatus
    output: Any
    metrics: dict[str, Any]
    started_at: str | None
    finished_at: str | None


class VoteView(msgspec.Struct):
    """One person's vote on a gate that needs a quorum (see ``gate_voted``)."""

    voter: str
    decision: Decision
    feedback: str
    at: str


class GateView(msgspec.Struct):
    node_id: str
    presentation: dict[str, Any]
    status: GateStatus
    decision: Decision | None  # None while pending
    feedback: str
    decided_by: str
    decided_at: str | None
    assignees: list[str]  # who may decide it (usernames, "group:<name>"); [] anyone allowed
    quorum: int  # approvals from distinct people it needs
    votes: list[VoteView]  # in the order cast

    @property
    def approvals(self) -> int:
        """How many votes count towards the quorum (approve and modify)."""
        return sum(1 for vote in self.votes if vote.decision != "reject")


class DagSnapshot(msgspec.Struct):
    """The whole state of one DAG after event ``last_seq``."""

    dag_id: str
    name: str
    status: ExecutionStatus
    budget: float | None
    spent: float
    remaining: float | None
    results: Any
    last_seq: int
    created_at: str
    finished_at: str | None
    nodes: list[NodeView]
    edges: list[EdgeView]
    gates: list[GateView]
    # The engine's last report or heartbeat, and whether the run is live with
    # an engine silent past ENGINE_STALE_SECONDS ("engine not responding").
    engine_seen_at: str | None = None
    engine_stale: bool = False


class GroupView(msgspec.Struct):
    """A group of nodes (:mod:`dagstream_app.groups`) as the graph draws it: one box."""

    id: str
    label: str
    counts: dict[str, int]  # members per status (only statuses some member has)
    started_at: str | None  # the first member's start
    finished_at: str | None  # the last member's end, once every member has finished

    @property
    def total(self) -> int:
        """How many members the group has."""
        return sum(self.counts.values())

    @property
    def status(self) -> NodeStatus:
        """The group's status: running while any member is active, else pending until
        every member has finished, then failed if any failed, else completed."""
        counts = self.counts
        if any(counts.get(s) for s in ACTIVE_STATUSES):
            return "running"
        if any(n for s, n in counts.items() if s not in FINISHED_NODE_STATUSES):
            return "pending"
        return "failed" if counts.get("failed") else "completed"


@dataclass(frozen=True)
class GraphView:
    """What the graph draws: the nodes not in a group, the groups, and the edges between them."""

    nodes: list[NodeView]
    groups: list[GroupView]
    edges: list[EdgeView]
    order: list[str]  # node and group ids, in the order the layout takes them
    group_of: dict[str, str] = field(default_factory=dict)  # member -> its group (timeline)


class GanttBar(msgspec.Struct, frozen=True):
    """One node's time: from running (or its gate opening) to its end; None: still going."""

    node_id: str
    label: str
    status: NodeStatus
    start: str
    end: str | None
    gate_opened: str | None = None
    gate_decided: str | None = None
    gate_status: GateStatus | None = None
    members: int = 0  # a group's bar (node_id: the group's id): how many nodes it has


class GanttView(msgspec.Struct, frozen=True):
    """Where a run's time went: a bar per node that ran, its pauses, in run time."""

    status: ExecutionStatus
    start: str  # the run's creation
    end: str | None  # its end; None while it goes on
    bars: list[GanttBar]
    more: int  # nodes that ran and are not in ``bars`` (the first GANTT_ROWS are)
    pauses: list[tuple[str, str | None]]  # (paused, resumed or None)


class EngineHealth(msgspec.Struct, frozen=True):
    """What the dashboard says about a run's engine."""

    status: ExecutionStatus
    seen_at: str | None  # the engine's last report or heartbeat
    stale: bool  # live, and silent past ENGINE_STALE_SECONDS: "engine not responding"
    # Paused, yet node events arrived after the pause: "started steps still finishing".
    reporting_while_paused: bool = False


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

    def plus(self, by_status: dict[str, int]) -> NodeCounts:
        """These counts and ``by_status`` (nodes per status) together."""
        return NodeCounts(
            total=self.total + sum(by_status.values()),
            done=self.done + sum(by_status.get(s, 0) for s in DONE_STATUSES),
            failed=self.failed + by_status.get("failed", 0),
            running=self.running + sum(by_status.get(s, 0) for s in ACTIVE_STATUSES),
            unfinished=self.unfinished
            + sum(n for s, n in by_status.items() if s not in FINISHED_NODE_STATUSES),
        )


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
    """A DAG's state while events are applied to it (see :mod:`dagstream_app.replay`)."""

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
    labels: dict[str, str] = field(default_factory=dict)  # of nodes not in ``nodes``
    # Live: the group the event's node is drawn in (:mod:`dagstream_app.groups`), if any;
    # and, with the structure read, the groups engines declared for its nodes.
    group_of: dict[str, str] = field(default_factory=dict)
    declared: dict[str, str] = field(default_factory=dict)

    def label(self, node_id: str) -> str:
        """What people call the node: its label, else its id."""
        node = self.nodes.get(node_id)
        return (node.label if node is not None else self.labels.get(node_id, "")) or node_id

    def settle_gate(
        self,
        node_id: str,
        status: GateStatus,
        decision: Decision | None,
        at: str,
        feedback: str = "",
        decided_by: str = "",
    ) -> None:
        """The gate at ``node_id`` decided (or closed) at ``at``; it keeps what it asked."""
        waiting = self.gates.get(node_id)
        self.gates[node_id] = GateView(
            node_id=node_id,
            presentation=waiting.presentation if waiting is not None else {},
            status=status,
            decision=decision,
            feedback=feedback,
            decided_by=decided_by,
            decided_at=at,
            assignees=waiting.assignees if waiting is not None else [],
            quorum=waiting.quorum if waiting is not None else 1,
            votes=waiting.votes if waiting is not None else [],
        )

    def node_counts(self) -> NodeCounts:
        return count_nodes(self.nodes.values())

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
