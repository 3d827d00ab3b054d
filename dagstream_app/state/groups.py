"""A DAG's groups (:mod:`dagstream_app.groups`) as read for the dashboard.

Which node is in which group depends only on the structure, so it is worked out
once per ``Dag.structure_version`` per process (a 50,000-node fan-out: its ids,
labels and edges read once). What changes with every event, the members' statuses,
is read in one light query (ids, status and times, no output or metrics) and
counted per group; only the nodes outside groups are read whole. So a page for a
50,000-task fan-out reads 50,000 short rows and draws one box.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec
from django.db import connection

from dagstream_app import groups
from dagstream_app.conf import config
from dagstream_app.dagviews import DagSnapshot, GraphView, GroupView
from dagstream_app.models import Dag, Edge, Node
from dagstream_app.state.shared import iso, raw_moment

_KEPT = 64
_groupings: OrderedDict[tuple[str, int, int], groups.Grouping] = OrderedDict()
_lock = threading.Lock()


def _table(model: type[Dag] | type[Node] | type[Edge]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def structure_version(dag_id: str) -> int | None:
    """The DAG's ``structure_version``, or None if it is unknown (raw SQL: a live message
    asks it once, and the ORM's compiling costs several times the query)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT structure_version FROM {_table(Dag)} WHERE dag_id = %s", [dag_id])
        found = cursor.fetchone()
    return None if found is None else int(found[0])


def grouping(dag_id: str, version: int | None = None) -> groups.Grouping:
    """The DAG's groups at its structure ``version`` (read when not given): remembered, or
    worked out from its nodes and edges (two queries)."""
    if version is None:
        version = structure_version(dag_id)
        if version is None:
            return groups.Grouping()
    threshold = config().group_threshold
    # A version of 0 is a structure written without services (fixtures): never remembered.
    key = (dag_id, version, threshold)
    with _lock:
        known = _groupings.get(key)
        if known is not None:
            _groupings.move_to_end(key)
            return known
    ids: list[str] = []
    labels: dict[str, str] = {}
    declared: dict[str, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT node_id, label, {connection.ops.quote_name('group')}"
            f" FROM {_table(Node)} WHERE dag_id = %s ORDER BY id",
            [dag_id],
        )
        for node_id, label, group in cursor.fetchall():
            ids.append(node_id)
            if label:
                labels[node_id] = label
            if group:
                declared[node_id] = group
        cursor.execute(f"SELECT src, dst FROM {_table(Edge)} WHERE dag_id = %s", [dag_id])
        edges = cursor.fetchall()
    found = groups.group_nodes(ids, edges, threshold, declared=declared, labels=labels)
    found = dataclasses.replace(found, version=version)
    if version:
        with _lock:
            _groupings[key] = found
            while len(_groupings) > _KEPT:
                _groupings.popitem(last=False)
    return found


def _moment(value: Any) -> str | None:
    return iso(raw_moment(value))


# Up to this many nodes outside groups, the counts are the database's (see group_views).
_SQL_LOOSE = 500


def group_views(
    dag_id: str, grouping: groups.Grouping, only: Collection[str] | None = None
) -> dict[str, GroupView]:
    """The groups' counts as they are now; ``only`` some of them.

    Counted by the database (one ``GROUP BY``, nothing per node comes back) when it can
    tell the groups apart: every group but at most one was declared by its engine (the
    ``group`` column), and few nodes are outside groups (left out by id). Otherwise
    every node's status is read (one light query) and counted here.
    """
    if not grouping.members:
        return {}
    by_shape = [k for k in grouping.members if k.startswith(groups.SHAPE_PREFIX)]
    loose = loose_ids(grouping) or []
    if len(by_shape) <= 1 and len(loose) <= _SQL_LOOSE:
        tallies = _counted_by_database(dag_id, grouping, loose, by_shape[0] if by_shape else "")
    else:
        tallies = _counted_here(dag_id, grouping, only)
    views = groups.group_views(grouping, tallies, _moment)
    return views if only is None else {k: v for k, v in views.items() if k in only}


def _counted_by_database(
    dag_id: str, grouping: groups.Grouping, loose: list[str], shape: str
) -> dict[str, groups.Tally]:
    """Counts per (declared group, status) from the ``(dag, group, status)`` index alone, less
    the nodes outside groups (read by id); the times as :func:`_group_times` finds them."""
    group = connection.ops.quote_name("group")
    counts: dict[tuple[str, str], int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {group}, status, COUNT(*) FROM {_table(Node)}"
            f" WHERE dag_id = %s GROUP BY {group}, status",
            [dag_id],
        )
        counts.update(((g, status), n) for g, status, n in cursor.fetchall())
        if loose:
            cursor.execute(
                f"SELECT {group}, status FROM {_table(Node)} WHERE dag_id = %s"
                f" AND node_id IN ({', '.join(['%s'] * len(loose))})",
                [dag_id, *loose],
            )
            for pair in cursor.fetchall():
                counts[pair] -= 1
    tallies: dict[str, groups.Tally] = {}
    for (declared, status), n in counts.items():
        key = declared if declared in grouping.members else shape
        if key and n:
            tallies.setdefault(key, groups.Tally()).add(status, None, None, n)
    for key, tally in tallies.items():
        outside = loose if key == shape else []
        tally.first, tally.last = _group_times(dag_id, grouping.version, key, outside, tally)
    return tallies


# A group's first start never changes once it has one (per structure version).
_first_starts: OrderedDict[tuple[str, str, int], Any] = OrderedDict()


def _group_times(
    dag_id: str, version: int, key: str, loose: list[str], tally: groups.Tally
) -> tuple[Any, Any]:
    """A group's first start (remembered once known) and, once every member has finished,
    its last end: a scan of the group's rows (a group by shape: less the ``loose`` nodes,
    which share its empty ``group``), so read only when needed."""
    remembered = (dag_id, key, version)
    with _lock:
        first = _first_starts.get(remembered)
    ended = tally.open == 0
    if first is not None and not ended:
        return first, None
    group = connection.ops.quote_name("group")
    outside = f" AND node_id NOT IN ({', '.join(['%s'] * len(loose))})" if loose else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MIN(started_at), MAX(finished_at) FROM {_table(Node)}"
            f" WHERE dag_id = %s AND {group} = %s AND status != 'pending'{outside}",
            [dag_id, "" if key.startswith(groups.SHAPE_PREFIX) else key, *loose],
        )
        first, last = cursor.fetchone()
    if first is not None:
        with _lock:
            _first_starts[remembered] = first
            while len(_first_starts) > _KEPT * 8:
                _first_starts.popitem(last=False)
    return first, last if ended else None


def _counted_here(
    dag_id: str, grouping: groups.Grouping, only: Collection[str] | None
) -> dict[str, groups.Tally]:
    tallies: dict[str, groups.Tally] = {}
    group_of = grouping.group_of
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT node_id, status, started_at, finished_at FROM {_table(Node)}"
            " WHERE dag_id = %s",
            [dag_id],
        )
        for node_id, status, started, finished in cursor.fetchall():
            key = group_of.get(node_id)
            if key is not None and (only is None or key in only):
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = groups.Tally()
                tally.add(status, started, finished)
    return tallies


def loose_ids(grouping_: groups.Grouping) -> list[str] | None:
    """The ids of the nodes outside groups, or None when no node is in one (read them all)."""
    if not grouping_.members:
        return None
    return [i for i in grouping_.items if i not in grouping_.members]


# A group's panel lists failures first, then what is going on, then the rest.
PANEL_ORDER = ("failed", "running", "waiting", "pending", "cancelled", "skipped", "completed")


@dataclass(frozen=True)
class Found:
    """One page of the nodes a group panel or a search lists, and how many there are."""

    rows: list[tuple[str, str, str, str | None]]  # node id, label, status, its group or None
    total: int


def find_nodes(
    dag_id: str, *, group: str | None = None, q: str = "", offset: int = 0, limit: int = 50
) -> Found | None:
    """The nodes of ``group`` (None: of the run) whose id or label holds ``q`` (any case),
    failures first, one page of them; None if there is no such group.

    One light query (ids, labels, statuses): a group found by shape is known only here.
    """
    grouping_ = grouping(dag_id)
    members = None
    if group is not None:
        if group not in grouping_.members:
            return None
        members = set(grouping_.members[group])
    needle = q.casefold()
    rank = {status: i for i, status in enumerate(PANEL_ORDER)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT node_id, label, status FROM {_table(Node)} WHERE dag_id = %s ORDER BY id",
            [dag_id],
        )
        matched = [
            (node_id, label, status)
            for node_id, label, status in cursor.fetchall()
            if (members is None or node_id in members)
            and (not needle or needle in node_id.casefold() or needle in label.casefold())
        ]
    matched.sort(key=lambda row: rank.get(row[2], len(rank)))
    page = matched[offset : offset + limit]
    return Found([(*row, grouping_.group_of.get(row[0])) for row in page], len(matched))


def declared(dag_id: str) -> dict[str, str]:
    """The groups engines declared for the DAG's nodes: node -> group."""
    rows = Node.objects.filter(dag_id=dag_id).exclude(group="").values_list("node_id", "group")
    return dict(rows)


def regroup(
    snap: DagSnapshot, *, current: bool = False
) -> tuple[DagSnapshot, GraphView, dict[str, str]]:
    """A whole snapshot (history, a live resume) as the page draws it: its nodes outside
    groups, the graph with its groups, and every node's label (for the timeline).

    ``current``: the snapshot has today's structure (no ``dag_mutated`` after it), so the
    grouping remembered for it is used instead of working it out again.
    """
    known = grouping(snap.dag_id) if current else None
    threshold = config().group_threshold
    graph = groups.fold(
        snap.nodes, snap.edges, threshold, None if known else declared(snap.dag_id), known=known
    )[1]
    labels = {n.id: n.label for n in snap.nodes}
    return msgspec.structs.replace(snap, nodes=graph.nodes), graph, labels
