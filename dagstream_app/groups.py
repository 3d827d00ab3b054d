"""Fan-outs as groups: siblings that share their parents and children, shown as one node.

Pure functions on ids. A node belongs to a group when its engine declared one (the
``group`` of its spec), or, when it declared none, when at least ``threshold`` nodes
share exactly its parents and its children (a fan-out: a Celery ``group``, a runner's
map, one task per chunk). Groups smaller than ``threshold`` are not groups: their
nodes show one by one. The dashboard draws a group as one box with counts per status
(:mod:`dagstream_app.render.graph`), and an edge between two groups, or a group and a
node, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagstream_app.dagviews import EdgeView, GraphView, GroupView, NodeView
from dagstream_app.vocabulary import FINISHED_NODE_STATUSES

# A group id made from a shape starts with this; declared groups keep their name.
SHAPE_PREFIX = "shape-"


@dataclass(frozen=True)
class Grouping:
    """Which node is in which group, and the graph as drawn: groups in their members' place."""

    group_of: dict[str, str] = field(default_factory=dict)  # member -> group id
    members: dict[str, list[str]] = field(default_factory=dict)  # group id -> members, in order
    labels: dict[str, str] = field(default_factory=dict)  # group id -> what it is called
    items: list[str] = field(default_factory=list)  # node and group ids, in the nodes' order
    edges: list[tuple[str, str]] = field(default_factory=list)  # between items, once each
    version: int = 0  # the DAG's structure version it was worked out at (0: not known)

    def item(self, node_id: str) -> str:
        """The id the graph draws ``node_id`` as: its group's, or its own."""
        return self.group_of.get(node_id, node_id)


def _shape_id(parents: Iterable[str], children: Iterable[str]) -> str:
    digest = hashlib.blake2b(digest_size=5)
    for side in (sorted(parents), sorted(children)):
        digest.update("\x00".join(side).encode())
        digest.update(b"\x01")
    return SHAPE_PREFIX + digest.hexdigest()


def group_label(members: Sequence[str], labels: Mapping[str, str]) -> str:
    """What a group is called: its members' common start (``chunk-*``), else its first's."""
    names = [labels.get(m) or m for m in members]
    # Numbered members (chunk-0001, chunk-0002): their number is not part of the name.
    common = names[0]
    for name in names[1:]:
        while not name.startswith(common):
            common = common[:-1]
    common = common.rstrip("0123456789 -_:./#")
    if len(common) >= 3:
        return f"{common}-*" if names[0][len(common) : len(common) + 1] in "-_:./#" else common
    return f"{names[0]}, …"


def group_nodes(
    node_ids: Sequence[str],
    edges: Iterable[tuple[str, str]],
    threshold: int,
    *,
    declared: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Grouping:
    """The groups of a DAG: declared (``declared``: node -> group) or by shape, past ``threshold``.

    ``threshold`` 0 (or less) turns grouping off.
    """
    edge_list = list(edges)
    if threshold <= 0 or len(node_ids) < threshold:
        return Grouping(items=list(node_ids), edges=edge_list)
    declared = declared or {}
    labels = labels or {}
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for src, dst in edge_list:
        children.setdefault(src, []).append(dst)
        parents.setdefault(dst, []).append(src)
    classes: dict[str, list[str]] = {}
    for node_id in node_ids:
        key = declared.get(node_id) or _shape_id(
            parents.get(node_id, ()), children.get(node_id, ())
        )
        classes.setdefault(key, []).append(node_id)
    members = {key: ids for key, ids in classes.items() if len(ids) >= threshold}
    named = set(declared.values())
    if not members:
        return Grouping(items=list(node_ids), edges=edge_list)
    group_of = {m: key for key, ids in members.items() for m in ids}
    items = list(dict.fromkeys(group_of.get(n, n) for n in node_ids))
    drawn = dict.fromkeys(
        (group_of.get(a, a), group_of.get(b, b))
        for a, b in edge_list
        if group_of.get(a, a) != group_of.get(b, b)
    )
    return Grouping(
        group_of=group_of,
        members=members,
        # A declared group is called by its name; one found by shape, by its members'.
        labels={
            key: key if key in named else group_label(ids, labels) for key, ids in members.items()
        },
        items=items,
        edges=list(drawn),
    )


# The fields naming the node an event is about, in the order that decides its group.
EVENT_NODE_KEYS = ("node_id", "to", "from")


def event_group(event: Mapping[str, Any], group_of: Mapping[str, str]) -> str | None:
    """The group whose timeline row stands for ``event``: that of the node it is about
    (``node_id``, else an edge's ``to``, else its ``from``), or None (its own row).

    Structure changes (``dag_mutated``) always have a row of their own.
    """
    if not group_of or event.get("type") == "dag_mutated":
        return None
    for key in EVENT_NODE_KEYS:
        node_id = event.get(key)
        if isinstance(node_id, str) and node_id in group_of:
            return group_of[node_id]
    return None


class Tally:
    """A group's members counted as they are read: per status, first start, last end."""

    __slots__ = ("counts", "first", "last", "open")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: Any = None
        self.last: Any = None
        self.open = 0  # members not finished

    def add(self, status: str, started: Any, finished: Any, n: int = 1) -> None:
        """``n`` members of ``status`` (their first start, their last end); the times
        compare in time order, or are None."""
        self.counts[status] = self.counts.get(status, 0) + n
        if started is not None and (self.first is None or started < self.first):
            self.first = started
        if status not in FINISHED_NODE_STATUSES:
            self.open += n
        elif finished is not None and (self.last is None or finished > self.last):
            self.last = finished


def group_views(
    grouping: Grouping, tallies: Mapping[str, Tally], moment: Callable[[Any], str | None]
) -> dict[str, GroupView]:
    """Each group's view from its tally (``moment`` turns a tallied time into ISO 8601)."""
    views = {}
    for key in grouping.members:
        tally = tallies.get(key) or Tally()
        views[key] = GroupView(
            id=key,
            label=grouping.labels[key],
            counts=dict(sorted(tally.counts.items())),
            started_at=moment(tally.first),
            finished_at=None if tally.open else moment(tally.last),
        )
    return views


def graph_view(
    grouping: Grouping, nodes: Mapping[str, NodeView], groups: Mapping[str, GroupView]
) -> GraphView:
    """What the graph draws, in the layout's order: ungrouped ``nodes`` and ``groups``."""
    return GraphView(
        nodes=[nodes[i] for i in grouping.items if i in nodes],
        groups=[groups[i] for i in grouping.items if i in groups],
        edges=[EdgeView(a, b) for a, b in grouping.edges],
        order=list(grouping.items),
        group_of=grouping.group_of,
    )


def fold(
    nodes: Sequence[NodeView],
    edges: Sequence[EdgeView],
    threshold: int,
    declared: Mapping[str, str] | None = None,
    *,
    known: Grouping | None = None,
) -> tuple[Grouping, GraphView]:
    """A whole snapshot's nodes grouped (history; a live re-render of the structure);
    ``known``: the grouping of this very structure, when already worked out."""
    by_id = {n.id: n for n in nodes}
    grouping = known or group_nodes(
        list(by_id),
        [(e.src, e.dst) for e in edges],
        threshold,
        declared=declared,
        labels={n.id: n.label for n in nodes},
    )
    tallies: dict[str, Tally] = {}
    for member, key in grouping.group_of.items():
        node = by_id[member]
        tallies.setdefault(key, Tally()).add(node.status, node.started_at, node.finished_at)
    loose = {i: n for i, n in by_id.items() if i not in grouping.group_of}
    return grouping, graph_view(grouping, loose, group_views(grouping, tallies, lambda t: t))
