"""One DAG's current state: its snapshot, a node, a gate, its node counts."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

import msgspec
from django.db import connection, transaction

from dagstream_app import groups, protocol
from dagstream_app.dagviews import (
    ACTIVE_STATUSES,
    DONE_STATUSES,
    DagSnapshot,
    EdgeView,
    GateView,
    GraphView,
    NodeCounts,
    NodeView,
    VoteView,
)
from dagstream_app.models import Dag, Edge, Gate, Node
from dagstream_app.protocol import NodeStatus, format_ts
from dagstream_app.state import groups as group_state
from dagstream_app.state.shared import engine_stale, iso


def gate_view_of(gate: Gate) -> GateView:
    return GateView(
        node_id=gate.node_id,
        presentation=gate.presentation,
        status=cast(protocol.GateStatus, gate.status),
        decision=gate.decision,
        feedback=gate.feedback,
        decided_by=gate.decided_by,
        decided_at=iso(gate.decided_at),
        assignees=list(gate.assignees),
        quorum=gate.quorum,
        votes=msgspec.convert(gate.votes, list[VoteView]),
    )


def gate_dict(gate: Gate) -> dict[str, Any]:
    """A gate as a snapshot's ``gates`` holds it, in JSON builtins."""
    data: dict[str, Any] = msgspec.to_builtins(gate_view_of(gate))
    return data


def gate(dag_id: str, node_id: str) -> Gate | None:
    """The gate at ``node_id`` with its DAG, or None."""
    return Gate.objects.select_related("dag").filter(dag_id=dag_id, node_id=node_id).first()


def gate_view(dag_id: str, node_id: str) -> GateView | None:
    found = Gate.objects.filter(dag_id=dag_id, node_id=node_id).first()
    return None if found is None else gate_view_of(found)


NODE_FIELDS = ("node_id", "label", "status", "output", "metrics", "started_at", "finished_at")


def node_view_of(
    node_id: str,
    label: str,
    status: str,
    output: Any,
    metrics: dict[str, Any],
    started: datetime | None,
    finished: datetime | None,
) -> NodeView:
    return NodeView(
        id=node_id,
        label=label,
        status=cast(NodeStatus, status),
        output=output,
        metrics=metrics,
        started_at=iso(started),
        finished_at=iso(finished),
    )


def node(dag_id: str, node_id: str) -> NodeView | None:
    """One node with its output and metrics (the node panel), or None."""
    row = Node.objects.filter(dag_id=dag_id, node_id=node_id).values_list(*NODE_FIELDS).first()
    return None if row is None else node_view_of(*row)


def labels_of(dag_id: str, node_ids: Collection[str]) -> dict[str, str]:
    """The labels of ``node_ids`` (those that exist)."""
    if not node_ids:
        return {}
    rows = Node.objects.filter(dag_id=dag_id, node_id__in=list(node_ids))
    # Unordered: ordered by id, the database may read every node of the table for it.
    return dict(rows.order_by().values_list("node_id", "label"))


def edges_of(dag_id: str) -> list[EdgeView]:
    return [EdgeView(a, b) for a, b in Edge.objects.filter(dag_id=dag_id).values_list("src", "dst")]


def snapshot(dag_id: str) -> DagSnapshot | None:
    """The whole current state of a DAG (``last_seq`` included), or None if unknown.

    Read under the DAG's row lock (PostgreSQL) or in one read transaction
    (SQLite), so the state and ``last_seq`` agree.
    """
    read = _snapshot(dag_id, grouped=False)
    return None if read is None else read[0]


def page_snapshot(dag_id: str) -> tuple[DagSnapshot, GraphView] | None:
    """What the detail page shows: the snapshot with only the nodes outside groups
    (read whole), and the graph with its groups' counts (:mod:`dagstream_app.state.groups`)."""
    read = _snapshot(dag_id, grouped=True)
    if read is None:
        return None
    snap, graph = read
    assert graph is not None
    return snap, graph


def _loose_nodes(found: Dag, only: list[str] | None) -> list[NodeView]:
    rows = Node.objects.filter(dag=found).values_list(*NODE_FIELDS)
    if only is None:
        return [node_view_of(*row) for row in rows]
    nodes: list[NodeView] = []
    for start in range(0, len(only), 500):  # under every database's bound on parameters
        chunk = rows.filter(node_id__in=only[start : start + 500])
        nodes.extend(node_view_of(*row) for row in chunk)
    return nodes


def _snapshot(dag_id: str, *, grouped: bool) -> tuple[DagSnapshot, GraphView | None] | None:
    graph = None
    with transaction.atomic():
        found = Dag.objects.select_for_update(no_key=True).filter(pk=dag_id).first()
        if found is None:
            return None
        if grouped:
            grouping = group_state.grouping(dag_id, found.structure_version)
            nodes = _loose_nodes(found, group_state.loose_ids(grouping))
            graph = groups.graph_view(
                grouping, {n.id: n for n in nodes}, group_state.group_views(dag_id, grouping)
            )
        else:
            nodes = _loose_nodes(found, None)
        # Grouped, the edges drawn are the grouping's (between groups and loose nodes).
        edges = edges_of(dag_id) if graph is None else graph.edges
        gates = [gate_view_of(g) for g in Gate.objects.filter(dag=found).order_by("created_at")]
    return DagSnapshot(
        dag_id=found.dag_id,
        name=found.name,
        status=cast(protocol.ExecutionStatus, found.status),
        budget=found.budget,
        spent=found.spent,
        remaining=found.remaining,
        results=found.results,
        last_seq=found.last_seq,
        created_at=format_ts(found.created_at),
        finished_at=iso(found.finished_at),
        nodes=nodes,
        edges=edges,
        gates=gates,
        engine_seen_at=iso(found.engine_seen_at),
        engine_stale=engine_stale(found.status, found.engine_seen_at),
    ), graph


def node_counts(dag_id: str) -> NodeCounts:
    """How many nodes the DAG has, and how many are done, failed and active."""
    # Raw SQL: a live dashboard asks this for every node event, and the ORM's
    # compiling of a filtered aggregate costs ten times the query.
    table = connection.ops.quote_name(Node._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status, COUNT(*) FROM {table} WHERE dag_id = %s GROUP BY status", [dag_id]
        )
        by_status = dict(cursor.fetchall())
    return NodeCounts(
        total=sum(by_status.values()),
        done=sum(by_status.get(s, 0) for s in DONE_STATUSES),
        failed=by_status.get("failed", 0),
        running=sum(by_status.get(s, 0) for s in ACTIVE_STATUSES),
        unfinished=sum(n for s, n in by_status.items() if s not in protocol.FINISHED_NODE_STATUSES),
    )


def unfinished_count(dag_id: str) -> int:
    """How many of the DAG's nodes are still pending, running or waiting."""
    return (
        Node.objects.filter(dag_id=dag_id)
        .exclude(status__in=protocol.FINISHED_NODE_STATUSES)
        .count()
    )
