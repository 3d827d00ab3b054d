"""The history page's state at an earlier event: a fan-out's members counted in SQL.

Folding a 50,000-task fan-out's whole log up to an event in Python costs seconds. When
the structure has not changed since that event (no ``dag_mutated`` after it), the groups
are today's (:func:`~dagstream_app.state.groups.grouping`, remembered), and of a group's
members the page shows only how many are in each status, the first start and the last
end. Those come from the log in one query: a member's status is that of its last
``node_state`` at or before the event (the ``node_id`` and ``status`` columns), its start
its first ``running``, its end its last finished status. The rest (the nodes outside
groups, those a mutation added or removed, gates, cost, the run's status) is folded from
their events alone by the same reducers (:func:`~dagstream_app.state.folded.fold`).
Otherwise (the structure changed since, or too many nodes outside groups) the whole log
is folded (:func:`~dagstream_app.state.folded.history`) and grouped as it comes out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from django.db import connection
from django.db.models import Q

from dagstream_app import events as kinds
from dagstream_app import groups
from dagstream_app.dagviews import DagSnapshot, GraphView
from dagstream_app.events.registry import no_change
from dagstream_app.models import Event
from dagstream_app.protocol import FINISHED_NODE_STATUSES
from dagstream_app.render.timeline import timeline_names
from dagstream_app.state.folded import fold, history
from dagstream_app.state.groups import grouping, regroup
from dagstream_app.state.log import EVENT_FIELDS, event_dict
from dagstream_app.state.shared import iso, raw_moment
from dagstream_app.state.snapshots import labels_of

# At most this many nodes are folded one by one (their ids go into the queries).
MAX_FOLDED = 500


@dataclass(frozen=True)
class Past:
    """The run after an event as the history page draws it."""

    snapshot: DagSnapshot  # the nodes outside groups only
    graph: GraphView
    labels: dict[str, str]  # what the timeline and the gates call the nodes they name
    at: str | None  # the event's time


def past(dag_id: str, seq: int, timeline: Sequence[Mapping[str, Any]]) -> Past | None:
    """The DAG after event ``seq``, or None if it is unknown; ``timeline``: the events the
    page lists (newest first), whose nodes' labels are read."""
    changes = Event.objects.filter(dag_id=dag_id, type="dag_mutated").order_by("seq")
    found = list(changes.values_list("seq", "payload"))
    current = all(at <= seq for at, _ in found)
    if current:
        known = grouping(dag_id)
        mutations = [payload["mutation"] for _, payload in found]
        folded = _folded_nodes(known, mutations)
        if known.members and len(folded) <= MAX_FOLDED:
            return _bounded(dag_id, seq, known, mutations, folded, timeline)
    work = history(dag_id, seq)
    if work is None:
        return None
    snap, graph, labels = regroup(work.snapshot(), current=current)
    return Past(snap, graph, labels, work.at)


def _folded_nodes(known: groups.Grouping, mutations: Sequence[Mapping[str, Any]]) -> set[str]:
    """The nodes folded one by one: those outside groups, and those a mutation added or
    removed (the fold starts them afresh; a count from the log would not)."""
    folded = {i for i in known.items if i not in known.group_of}
    for m in mutations:
        if m["op"] == "add_node":
            folded.add(m["node"]["id"])
        elif m["op"] == "remove_node":
            folded.add(m["node_id"])
    return folded


def _bounded(
    dag_id: str,
    seq: int,
    known: groups.Grouping,
    mutations: Sequence[Mapping[str, Any]],
    folded: set[str],
    timeline: Sequence[Mapping[str, Any]],
) -> Past | None:
    changing = [
        k.name for k in kinds.kinds() if k.reduce is not no_change and k.name != "node_state"
    ]
    rows = Event.objects.filter(dag_id=dag_id, seq__lte=seq).filter(
        Q(type__in=changing) | Q(type="node_state", node_id__in=folded) | Q(seq=seq)
    )
    upto = [event_dict(*row) for row in rows.order_by("seq").values_list(*EVENT_FIELDS)]
    work = fold(dag_id, seq, labels_of(dag_id, folded), (), mutations, upto)
    if work is None:
        return None
    tallies = _member_tallies(dag_id, seq, known, folded)
    for node in work.nodes.values():  # members a mutation named: folded as they are
        key = known.group_of.get(node.id)
        if key is not None:
            tallies.setdefault(key, groups.Tally()).add(
                node.status, node.started_at, node.finished_at
            )
    for key, members in known.members.items():
        tally = tallies.setdefault(key, groups.Tally())
        unseen = len(members) - sum(tally.counts.values())  # no node_state yet: pending
        if unseen > 0:
            tally.add("pending", None, None, unseen)
    loose = {i: n for i, n in work.nodes.items() if i not in known.group_of}
    graph = groups.graph_view(known, loose, groups.group_views(known, tallies, lambda t: t))
    snap = msgspec.structs.replace(work.snapshot(), nodes=graph.nodes)
    named = timeline_names(timeline, known.group_of) | {g.node_id for g in snap.gates}
    names = labels_of(dag_id, named - loose.keys())
    names.update((i, n.label) for i, n in loose.items())
    return Past(snap, graph, names, work.at)


def _member_tallies(
    dag_id: str, seq: int, known: groups.Grouping, folded: Collection[str]
) -> dict[str, groups.Tally]:
    """Each group's members that have a ``node_state`` at or before ``seq`` (those not
    ``folded``), counted by their last one's status, with their first start and last end.

    Per member, its last event's seq, then those events' statuses (by the ``(dag, seq)``
    key): counted by the database when there is one group (its times by two lookups of
    the log's first and last such event), else here, per member.
    """
    table = connection.ops.quote_name(Event._meta.db_table)
    finished = sorted(FINISHED_NODE_STATUSES)
    ended = f"status IN ({', '.join(['%s'] * len(finished))})"
    outside = f" AND node_id NOT IN ({', '.join(['%s'] * len(folded))})" if folded else ""
    members = f"FROM {table} WHERE dag_id = %s AND seq <= %s AND type = 'node_state'{outside}"
    scope: list[str | int] = [dag_id, seq, *folded]
    tallies: dict[str, groups.Tally] = {}
    with connection.cursor() as cursor:
        if len(known.members) == 1:
            (key,) = known.members
            tally = tallies[key] = groups.Tally()
            # The first start and the last end: the log's first such event and its last
            # (by seq, the order they were written in), found without a scan.
            cursor.execute(
                f"SELECT created_at {members} AND status = 'running' ORDER BY seq LIMIT 1", scope
            )
            first = next(iter(cursor.fetchall()), (None,))[0]
            cursor.execute(
                f"SELECT created_at {members} AND {ended} ORDER BY seq DESC LIMIT 1",
                [*scope, *finished],
            )
            last = next(iter(cursor.fetchall()), (None,))[0]
            cursor.execute(
                f"SELECT e.status, COUNT(*) FROM (SELECT MAX(seq) AS last_seq {members}"
                f" GROUP BY node_id) m JOIN {table} e ON e.dag_id = %s AND e.seq = m.last_seq"
                " GROUP BY e.status",
                [*scope, dag_id],
            )
            for status, n in cursor.fetchall():
                tally.add(status, None, None, n)
            tally.first, tally.last = _iso(first), _iso(last)
            return tallies
        cursor.execute(
            "SELECT e.node_id, e.status, m.first_start, m.last_end FROM (SELECT MAX(seq) AS"
            " last_seq, MIN(CASE WHEN status = 'running' THEN created_at END) AS first_start,"
            f" MAX(CASE WHEN {ended} THEN created_at END) AS last_end {members}"
            f" GROUP BY node_id) m JOIN {table} e ON e.dag_id = %s AND e.seq = m.last_seq",
            [*finished, *scope, dag_id],
        )
        for node_id, status, first, last in cursor.fetchall():
            member_of = known.group_of.get(node_id)
            if member_of is not None:
                tallies.setdefault(member_of, groups.Tally()).add(status, _iso(first), _iso(last))
    return tallies


def _iso(value: Any) -> str | None:
    return iso(raw_moment(value))
