"""Every live region of the detail page, rendered from one snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.utils.safestring import SafeString

from dagstream_app.dagviews import (
    DagSnapshot,
    EngineHealth,
    GanttView,
    GraphView,
    NodeCounts,
    count_nodes,
)
from dagstream_app.render.format import Perms
from dagstream_app.render.gantt import gantt_html
from dagstream_app.render.graph import graph_html
from dagstream_app.render.regions import (
    controls_html,
    cost_html,
    engine_html,
    gates_html,
    progress_html,
    results_html,
    status_html,
)
from dagstream_app.render.timeline import timeline_html

if TYPE_CHECKING:
    from dagstream_app.permissions import Voter


def regions(
    snap: DagSnapshot,
    perms: Perms,
    events: Sequence[Mapping[str, Any]],
    *,
    oob: bool = False,
    readonly: bool = False,
    now: str | None = None,
    health: EngineHealth | None = None,
    gantt: GanttView | None = None,
    graph: GraphView | None = None,
    labels: Mapping[str, str] | None = None,
    voter: Voter | None = None,
) -> dict[str, SafeString]:
    """Every live region of the detail page, rendered from one snapshot.

    ``now`` is the moment durations run to (a replayed state is "as of" its
    last event); by default, the present. ``health`` (from
    :func:`dagstream_app.state.engine_health`) adds what the snapshot lacks;
    with ``gantt`` (:func:`dagstream_app.state.gantt`) the Gantt view is a region too.
    With ``graph`` (:func:`dagstream_app.state.page_snapshot`), ``snap`` holds only the
    nodes outside groups, and the progress line counts the groups' members too; ``labels``
    names the nodes the timeline mentions that ``snap`` does not hold, and the timeline
    shows the events of a group's members in one row per group (``events``: newest first,
    more than the rows shown, :data:`~dagstream_app.render.format.TIMELINE_SCAN`);
    ``voter`` is the person looking (gates assigned to others are read-only to them).
    """
    dag_id = snap.dag_id
    names = {**(labels or {}), **{n.id: n.label for n in snap.nodes}}
    if health is None:
        health = EngineHealth(snap.status, snap.engine_seen_at, snap.engine_stale)
    return {
        "graph": graph_html(dag_id, snap.nodes, snap.edges, now, oob=oob, graph=graph),
        "status": status_html(snap.status, snap.created_at, snap.finished_at, oob=oob, now=now),
        "engine": engine_html(dag_id, health, oob=oob, now=now),
        "progress": progress_html(_counts(snap, graph), snap.status, oob=oob),
        "cost": cost_html(snap.spent, snap.budget, oob=oob),
        "controls": controls_html(
            dag_id, snap.status, perms[1], oob=oob, engine_stale=health.stale
        ),
        "gates": gates_html(
            dag_id, snap.gates, perms[0], oob=oob, readonly=readonly, labels=names, voter=voter
        ),
        "results": results_html(snap.status, snap.results, oob=oob),
        "timeline": timeline_html(
            events,
            oob=oob,
            labels=names,
            group_of=graph.group_of if graph is not None else None,
            groups={g.id: g for g in graph.groups} if graph is not None else None,
            dag_id="" if readonly else dag_id,
        ),
        **(
            {"gantt": gantt_html(gantt, oob=oob, now=now, dag_id=dag_id)}
            if gantt is not None
            else {}
        ),
    }


def _counts(snap: DagSnapshot, graph: GraphView | None) -> NodeCounts:
    """The progress line's counts: ``snap``'s nodes, and the members of ``graph``'s groups."""
    counts = count_nodes(snap.nodes)
    if graph is None or not graph.groups:
        return counts
    merged: dict[str, int] = {}
    for group in graph.groups:
        for status, n in group.counts.items():
            merged[status] = merged.get(status, 0) + n
    return counts.plus(merged)
