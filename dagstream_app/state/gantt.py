"""Where a run's time went (the Gantt view), read in four small queries."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import cast

from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from dagstream_app import protocol
from dagstream_app.dagviews import GroupView
from dagstream_app.groups import Grouping
from dagstream_app.models import Dag, Event, Gate, Node
from dagstream_app.protocol import NodeStatus, format_ts
from dagstream_app.state import groups as group_state
from dagstream_app.state.shared import iso

# The Gantt view shows at most this many nodes: the first that started.
GANTT_ROWS = 200


def _group_bars(
    dag_id: str, grouped: Grouping, views: Mapping[str, GroupView] | None
) -> list[protocol.GanttBar]:
    """A bar per group that has started: from its first member's start to its last's end."""
    if views is None:
        views = group_state.group_views(dag_id, grouped)
    return [
        protocol.GanttBar(
            node_id=g.id,
            label=g.label,
            status=g.status,
            start=g.started_at or "",
            end=g.finished_at,
            members=g.total,
        )
        for g in views.values()
        if g.started_at
    ]


def gantt(
    dag_id: str,
    limit: int = GANTT_ROWS,
    groups: Mapping[str, GroupView] | None = None,
    grouped: Grouping | None = None,
) -> protocol.GanttView | None:
    """Where the run's time went (the Gantt view): four small queries, and the groups'
    counts unless ``groups`` gives them (:func:`dagstream_app.state.page_snapshot` read them)
    and the DAG's groups unless ``grouped`` does (a live message read them)."""
    found = Dag.objects.filter(pk=dag_id).values_list("status", "created_at", "finished_at").first()
    if found is None:
        return None
    status, created, finished = found
    gates = {
        g[0]: g
        for g in Gate.objects.filter(dag_id=dag_id).values_list(
            "node_id", "created_at", "decided_at", "status"
        )
    }
    ran = Node.objects.filter(dag_id=dag_id).filter(
        Q(started_at__isnull=False) | Q(node_id__in=list(gates))
    )
    # A group's members are one bar, the group's (state/groups.py).
    grouped = grouped or group_state.grouping(dag_id)
    group_bars = _group_bars(dag_id, grouped, groups)
    loose = group_state.loose_ids(grouped)
    if loose is not None and len(loose) <= 500:
        ran = ran.filter(node_id__in=loose)
    gate_at = Gate.objects.filter(dag_id=dag_id, node_id=OuterRef("node_id")).values("created_at")
    ordered = (
        ran.annotate(begin=Coalesce("started_at", Subquery(gate_at[:1])))
        .order_by("begin", "id")
        .values_list("node_id", "label", "status", "started_at", "finished_at")
    )
    if loose is None or len(loose) <= 500:
        rows = list(ordered[: limit + 1])
        total = ran.count() if len(rows) > limit else len(rows)
    else:  # many nodes outside groups: members left out here, as they come
        outside = (row for row in ordered.iterator() if row[0] not in grouped.group_of)
        rows = list(islice(outside, limit + 1))
        total = len(rows) + sum(1 for _ in outside)
    total += len(group_bars)
    bars = list(group_bars)
    for node_id, label, node_status, started, ended in rows[:limit]:
        gate = gates.get(node_id)
        opened = gate[1] if gate else None
        start = started or opened
        if start is None:  # pragma: no cover - filtered above
            continue
        done = node_status in protocol.FINISHED_NODE_STATUSES
        bars.append(
            protocol.GanttBar(
                node_id=node_id,
                label=label or node_id,
                status=cast(NodeStatus, node_status),
                start=format_ts(start),
                end=iso(ended) if done else None,
                gate_opened=iso(opened),
                gate_decided=iso(gate[2]) if gate else None,
                gate_status=cast(protocol.GateStatus, gate[3]) if gate else None,
            )
        )
    bars = sorted(bars, key=lambda bar: bar.start)[:limit]
    states = Event.objects.filter(dag_id=dag_id, type="execution_state").order_by("seq")
    pauses: list[tuple[str, str | None]] = []
    for moment, payload in states.values_list("created_at", "payload"):
        if payload.get("state") == "paused":
            if not pauses or pauses[-1][1] is not None:
                pauses.append((format_ts(moment), None))
        elif pauses and pauses[-1][1] is None:
            pauses[-1] = (pauses[-1][0], format_ts(moment))
    return protocol.GanttView(
        status=cast(protocol.ExecutionStatus, status),
        start=format_ts(created),
        end=iso(finished),
        bars=bars,
        more=total - len(bars),
        pauses=pauses,
    )
