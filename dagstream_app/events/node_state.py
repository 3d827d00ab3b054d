"""``node_state``: a node's status changed (with its output and metrics, if any)."""

from __future__ import annotations

from typing import Any

from dagstream_app.dagviews import Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import STATUS_ICONS, Part, Perms
from dagstream_app.render.graph import node_slot_html
from dagstream_app.vocabulary import (
    FINISHED_NODE_STATUSES,
    EventPayload,
    NodeId,
    NodeStatus,
    status_word,
)


class NodeState(EventPayload, tag="node_state"):
    node_id: NodeId
    status: NodeStatus
    output: Any = None
    metrics: dict[str, Any] | None = None


def reduce(work: Working, event: EventData) -> None:
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


def describe(event: EventData, name: Namer) -> Wording:
    status = event["status"]
    return Wording(
        icon=STATUS_ICONS.get(status, "pending"),
        tone=status,
        subject=name(event["node_id"]),
        text=status_word(status),
    )


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The node's slot in the graph (latest wins); a group's member has none (its
    group's box is drawn once per message: the ``groups`` redraw)."""
    node = work.nodes.get(event["node_id"])
    if node is None or node.id in work.group_of:  # a group's member: its group's box changes
        return []
    return [(f"node:{node.id}", node_slot_html(dag_id, node, seq))]


KIND = EventKind(
    NodeState,
    reduce,
    describe,
    fragments,
    reads=frozenset({"node"}),
    redraws=frozenset({"progress", "gantt", "groups"}),
)
