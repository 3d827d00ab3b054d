"""The history page's state at an earlier event: a fan-out's members counted from checkpoints.

Folding a 50,000-task fan-out's whole log up to an event in Python costs seconds. When
the structure has not changed since that event (no ``dag_mutated`` after it), the groups
are today's (:func:`~dagstream_app.state.groups.grouping`, remembered), and of a group's
members the page shows only how many are in each status, the first start and the last
end. Those come from the members' statuses kept every few thousand events
(:mod:`~dagstream_app.state.checkpoints`), brought forward by the ``node_state`` events
since (the ``node_id`` and ``status`` columns): a member's status is that of its last
one, the group's start its first ``running``, its end its last finished status. The rest
(the nodes outside groups, those a mutation added or removed, gates, cost, the run's
status) is folded from their events alone by the same reducers
(:func:`~dagstream_app.state.folded.fold`). Otherwise (the structure changed since, or
too many nodes outside groups) the whole log is folded
(:func:`~dagstream_app.state.folded.history`) and grouped as it comes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from dagstream_app import events as kinds
from dagstream_app import groups
from dagstream_app.dagviews import DagSnapshot, GraphView
from dagstream_app.events.registry import no_change
from dagstream_app.models import Event
from dagstream_app.render.timeline import timeline_names
from dagstream_app.state import checkpoints
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
    mutations = [payload["mutation"] for _, payload in found]
    current = all(at <= seq for at, _ in found)
    if current:
        known = grouping(dag_id)
        folded = _folded_nodes(known, mutations)
        if known.members and len(folded) <= MAX_FOLDED:
            return _bounded(dag_id, seq, known, mutations, folded, timeline)
    work = history(dag_id, seq, mutations)
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
    found = checkpoints.counted(dag_id, seq, known, folded)
    # Three reads, each by an index (an OR of them would read the run's whole log): the
    # events that change something else, the folded nodes' node_state events (by seq when
    # known, else searched for among every event up to this one), and this event.
    log = Event.objects.filter(dag_id=dag_id).order_by()
    if found.seqs is not None:
        folded_events = log.filter(seq__in=found.seqs)
    else:
        folded_events = log.filter(seq__lte=seq, type="node_state", node_id__in=folded)
    reads = (log.filter(seq__lte=seq, type__in=changing), folded_events, log.filter(seq=seq))
    first, *others = (read.values_list(*EVENT_FIELDS) for read in reads)
    rows = {row[0]: row for row in first.union(*others, all=True)}  # by seq: once each
    upto = [event_dict(*rows[at]) for at in sorted(rows)]
    work = fold(dag_id, seq, labels_of(dag_id, folded), (), mutations, upto)
    if work is None:
        return None
    tallies = found.tallies
    for tally in tallies.values():
        tally.first, tally.last = _iso(tally.first), _iso(tally.last)
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


def _iso(value: Any) -> str | None:
    return iso(raw_moment(value))
