"""A DAG's state folded from events: what one live event shows, and history at a seq."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection

from dagstream_app import events, groups, replay
from dagstream_app.dagviews import Pair, Working, new_node
from dagstream_app.models import Dag, Edge, Event, Node
from dagstream_app.protocol import format_ts
from dagstream_app.state.groups import grouping
from dagstream_app.state.log import EVENT_FIELDS, event_dict
from dagstream_app.state.shared import iso, raw_moment
from dagstream_app.state.snapshots import edges_of, gate_view, labels_of, node_view_of


def live_state(
    dag_id: str,
    event: events.EventData,
    grouped: groups.Grouping | None = None,
    named: set[str] | None = None,
) -> Working:
    """What one event's live fragments show: the rows they need, with the event applied.

    The rows are those its type says it ``reads`` (:class:`dagstream_app.events.EventKind`),
    read now, so they may be ahead of the event; the fields the event carries
    are its own. ``grouped``: the DAG's groups when the caller has read them (a live
    message reads them once for all its events), else read here when needed; ``named``:
    the nodes the event names when the caller found them (:func:`events.named_nodes`).
    """
    work = Working(dag_id=dag_id)
    kind = events.kind_of(event["type"])
    reads = kind.reads if kind is not None else frozenset()
    # The timeline names nodes by their labels: read those the event names
    # (its own node's comes with its row).
    if named is None:
        named = events.named_nodes(event)
    if "node" in reads:
        named = named - {event["node_id"]}
    work.labels = labels_of(dag_id, named)
    if "node" in reads:
        _read_node(work, event["node_id"], grouped)
    if "structure" in reads:
        # The rows already hold the change (and any later one): no reducer.
        _read_structure(work)
        return work
    if "gate" in reads:
        found_gate = gate_view(dag_id, event["node_id"])
        if found_gate is not None:
            work.gates[found_gate.node_id] = found_gate
    if "run" in reads:
        created = Dag.objects.filter(pk=dag_id).values_list("created_at", flat=True).first()
        work.created_at = format_ts(created) if created else event["ts"]
    replay.apply(work, event)
    return work


def _read_node(work: Working, node_id: str, grouped: groups.Grouping | None) -> None:
    table = connection.ops.quote_name(Node._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT label, started_at FROM {table} WHERE dag_id = %s AND node_id = %s",
            [work.dag_id, node_id],
        )
        found = cursor.fetchone()
    if found is not None:
        view = new_node(node_id, found[0])
        view.started_at = iso(raw_moment(found[1]))
        work.nodes[node_id] = view
        group = (grouped or grouping(work.dag_id)).group_of.get(node_id)
        if group is not None:
            work.group_of[node_id] = group


def _read_structure(work: Working) -> None:
    rows = Node.objects.filter(dag_id=work.dag_id).values_list(
        "node_id", "label", "status", "started_at", "finished_at", "group"
    )
    for node_id, label, status, started, finished, group in rows:
        work.nodes[node_id] = node_view_of(node_id, label, status, None, {}, started, finished)
        if group:
            work.declared[node_id] = group
    work.edges = dict.fromkeys((e.src, e.dst) for e in edges_of(work.dag_id))


def history(
    dag_id: str, seq: int, mutations: Sequence[Mapping[str, Any]] | None = None
) -> Working | None:
    """The DAG after event ``seq``, rebuilt from its log, or None if it is unknown.

    Reads the events up to ``seq`` and, of those after it, only the
    ``dag_mutated`` ones (to undo today's structure back to ``seq``), unless the
    caller read them: ``mutations``, those of all the run's ``dag_mutated`` events in
    order (:func:`dagstream_app.state.past` reads them first).
    """
    events = Event.objects.filter(dag_id=dag_id)
    rows = events.filter(seq__lte=seq).order_by("seq").values_list(*EVENT_FIELDS)
    upto = [event_dict(*row) for row in rows]
    if mutations is None:
        later = events.filter(seq__gt=seq, type="dag_mutated").order_by("seq")
        mutations = [e["mutation"] for e in upto if e["type"] == "dag_mutated"]
        mutations += [payload["mutation"] for payload in later.values_list("payload", flat=True)]
    labels = dict(Node.objects.filter(dag_id=dag_id).values_list("node_id", "label"))
    edges = Edge.objects.filter(dag_id=dag_id).values_list("src", "dst")
    return fold(dag_id, seq, labels, edges, mutations, upto)


def fold(
    dag_id: str,
    seq: int,
    labels: Mapping[str, str],
    edges: Iterable[Pair],
    mutations: Sequence[Mapping[str, Any]],
    upto: list[dict[str, Any]],
) -> Working | None:
    """The DAG as created (today's ``labels`` and ``edges`` with every one of its
    ``mutations`` undone) with ``upto`` applied: the events up to ``seq`` that change what
    is shown of these nodes, in order (:func:`dagstream_app.replay.rebuild`); None if the
    DAG is unknown."""
    found = Dag.objects.filter(pk=dag_id).values_list("name", "created_at", "budget").first()
    if found is None:
        return None
    name, created, budget = found
    # A budget set at creation has no event: take the first update's (or today's).
    first_cost = next((e for e in upto if e["type"] == "cost_update"), None)
    if first_cost is None:
        first_cost = (
            Event.objects.filter(dag_id=dag_id, seq__gt=seq, type="cost_update")
            .order_by("seq")
            .values_list("payload", flat=True)
            .first()
        )
    if first_cost is not None:
        budget = first_cost.get("budget")
    start = Working(dag_id=dag_id, name=name, budget=budget, created_at=format_ts(created))
    return replay.rebuild(start, labels, edges, mutations, upto)
