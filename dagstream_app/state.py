"""Every read query: snapshots, event frames, history, and what the dashboard shows.

Nothing here writes (that is :mod:`dagstream_app.services`). A DAG's state
comes back as the :mod:`dagstream_app.protocol` views; history and live
fragments fold events into it with :mod:`dagstream_app.replay`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dagstream_app import protocol, replay
from dagstream_app.conf import config
from dagstream_app.models import Dag, Edge, Event, Gate, Node
from dagstream_app.protocol import DagSnapshot, EdgeView, GateView, NodeStatus, NodeView, format_ts


def _iso(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment else None


def _raw_moment(value: datetime | str | None) -> datetime | None:
    """A datetime column from a raw query: SQLite gives Django's naive UTC text."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    return value


# ---------------------------------------------------------------- one DAG


def dag(dag_id: str) -> Dag | None:
    return Dag.objects.filter(pk=dag_id).first()


def engine_stale(status: str, seen_at: datetime | None, now: datetime | None = None) -> bool:
    """True if a live run's engine has been silent past ``ENGINE_STALE_SECONDS``."""
    if status not in protocol.LIVE_STATUSES:
        return False
    if seen_at is None:
        return True
    silent = ((now or timezone.now()) - seen_at).total_seconds()
    return silent > float(config().engine_stale_seconds)


def engine_health(dag_id: str) -> protocol.EngineHealth | None:
    """The run's engine as the dashboard describes it, or None if the DAG is unknown."""
    found = Dag.objects.filter(pk=dag_id).values_list("status", "engine_seen_at").first()
    if found is None:
        return None
    status, seen = found
    reporting = False
    if status == "paused":
        paused_at = (
            Event.objects.filter(dag_id=dag_id, type="execution_state")
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        reporting = (
            paused_at is not None
            and Event.objects.filter(dag_id=dag_id, seq__gt=paused_at, type="node_state").exists()
        )
    status = cast(protocol.ExecutionStatus, status)
    return protocol.EngineHealth(status, _iso(seen), engine_stale(status, seen), reporting)


def progress(dag_id: str) -> tuple[int, str] | None:
    """The DAG's (last seq, status), or None if it is unknown."""
    return Dag.objects.filter(pk=dag_id).values_list("last_seq", "status").first()


def progress_many(dag_ids: set[str]) -> dict[str, tuple[int, str]]:
    """(last seq, status) of each DAG of ``dag_ids`` that exists."""
    rows = Dag.objects.filter(pk__in=dag_ids).values_list("pk", "last_seq", "status")
    return {dag_id: (seq, status) for dag_id, seq, status in rows}


def changed_since(moment: datetime, limit: int = 500) -> list[tuple[str, int, bool]]:
    """(dag_id, last seq, created since) of the runs changed since ``moment``, newest first."""
    rows = (
        Dag.objects.filter(updated_at__gte=moment)
        .order_by("-updated_at")
        .values_list("pk", "last_seq", "created_at")[:limit]
    )
    return [(dag_id, seq, created >= moment) for dag_id, seq, created in rows]


def _gate_view(gate: Gate) -> GateView:
    return GateView(
        node_id=gate.node_id,
        presentation=gate.presentation,
        status=cast(protocol.GateStatus, gate.status),
        decision=gate.decision,
        feedback=gate.feedback,
        decided_by=gate.decided_by,
        decided_at=_iso(gate.decided_at),
    )


def gate_dict(gate: Gate) -> dict[str, Any]:
    """A gate as a snapshot's ``gates`` holds it, in JSON builtins."""
    data: dict[str, Any] = msgspec.to_builtins(_gate_view(gate))
    return data


def gate(dag_id: str, node_id: str) -> Gate | None:
    """The gate at ``node_id`` with its DAG, or None."""
    return Gate.objects.select_related("dag").filter(dag_id=dag_id, node_id=node_id).first()


def gate_view(dag_id: str, node_id: str) -> GateView | None:
    found = Gate.objects.filter(dag_id=dag_id, node_id=node_id).first()
    return None if found is None else _gate_view(found)


_NODE_FIELDS = ("node_id", "label", "status", "output", "metrics", "started_at", "finished_at")


def _node_view(
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
        started_at=_iso(started),
        finished_at=_iso(finished),
    )


def node(dag_id: str, node_id: str) -> NodeView | None:
    """One node with its output and metrics (the node panel), or None."""
    row = Node.objects.filter(dag_id=dag_id, node_id=node_id).values_list(*_NODE_FIELDS).first()
    return None if row is None else _node_view(*row)


def _edges(dag_id: str) -> list[EdgeView]:
    return [EdgeView(a, b) for a, b in Edge.objects.filter(dag_id=dag_id).values_list("src", "dst")]


def snapshot(dag_id: str) -> DagSnapshot | None:
    """The whole current state of a DAG (``last_seq`` included), or None if unknown.

    Read under the DAG's row lock (PostgreSQL) or in one read transaction
    (SQLite), so the state and ``last_seq`` agree.
    """
    with transaction.atomic():
        found = Dag.objects.select_for_update(no_key=True).filter(pk=dag_id).first()
        if found is None:
            return None
        nodes = [
            _node_view(*row) for row in Node.objects.filter(dag=found).values_list(*_NODE_FIELDS)
        ]
        edges = _edges(dag_id)
        gates = [_gate_view(g) for g in Gate.objects.filter(dag=found).order_by("created_at")]
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
        finished_at=_iso(found.finished_at),
        nodes=nodes,
        edges=edges,
        gates=gates,
        engine_seen_at=_iso(found.engine_seen_at),
        engine_stale=engine_stale(found.status, found.engine_seen_at),
    )


def node_counts(dag_id: str) -> replay.NodeCounts:
    """How many nodes the DAG has, and how many are done, failed and active."""
    # Raw SQL: a live dashboard asks this for every node event, and the ORM's
    # compiling of a filtered aggregate costs ten times the query.
    table = connection.ops.quote_name(Node._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status, COUNT(*) FROM {table} WHERE dag_id = %s GROUP BY status", [dag_id]
        )
        by_status = dict(cursor.fetchall())
    return replay.NodeCounts(
        total=sum(by_status.values()),
        done=sum(by_status.get(s, 0) for s in replay.DONE_STATUSES),
        failed=by_status.get("failed", 0),
        running=sum(by_status.get(s, 0) for s in replay.ACTIVE_STATUSES),
        unfinished=sum(n for s, n in by_status.items() if s not in protocol.FINISHED_NODE_STATUSES),
    )


def unfinished_count(dag_id: str) -> int:
    """How many of the DAG's nodes are still pending, running or waiting."""
    return (
        Node.objects.filter(dag_id=dag_id)
        .exclude(status__in=protocol.FINISHED_NODE_STATUSES)
        .count()
    )


# ------------------------------------------------------------------ gantt

# The Gantt view shows at most this many nodes: the first that started.
GANTT_ROWS = 200
# The live events after which the Gantt view is drawn again.
GANTT_EVENTS = frozenset(
    {"node_state", "execution_state", "human_gate_waiting", "gate_decided", "dag_mutated"}
)


def gantt(dag_id: str, limit: int = GANTT_ROWS) -> protocol.GanttView | None:
    """Where the run's time went (the Gantt view): four small queries."""
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
    gate_at = Gate.objects.filter(dag_id=dag_id, node_id=OuterRef("node_id")).values("created_at")
    rows = list(
        ran.annotate(begin=Coalesce("started_at", Subquery(gate_at[:1])))
        .order_by("begin", "id")
        .values_list("node_id", "label", "status", "started_at", "finished_at")[: limit + 1]
    )
    total = ran.count() if len(rows) > limit else len(rows)
    bars = []
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
                end=_iso(ended) if done else None,
                gate_opened=_iso(opened),
                gate_decided=_iso(gate[2]) if gate else None,
                gate_status=cast(protocol.GateStatus, gate[3]) if gate else None,
            )
        )
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
        end=_iso(finished),
        bars=bars,
        more=total - len(bars),
        pauses=pauses,
    )


# ----------------------------------------------------------------- events


def _event(seq: int, kind: str, created: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    """An event as clients receive it, without ``dag_id``."""
    return {"type": kind, "seq": seq, "ts": format_ts(created), **payload}


_EVENT_FIELDS = ("seq", "type", "created_at", "payload")


def event_frames(dag_id: str, after: int, upto: int | None = None) -> list[tuple[int, str]]:
    """(seq, JSON text) of the events with ``after < seq <= upto``, in order."""
    rows = Event.objects.filter(dag_id=dag_id, seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [
        (seq, protocol.event_frame(kind, dag_id, seq, format_ts(created), payload))
        for seq, kind, created, payload in rows.order_by("seq").values_list(*_EVENT_FIELDS)
    ]


def recent_events(dag_id: str, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` events (at or before ``upto``), newest first."""
    rows = Event.objects.filter(dag_id=dag_id)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [_event(*row) for row in rows.order_by("-seq").values_list(*_EVENT_FIELDS)[:limit]]


def can_replay(dag_id: str, after: int, current: int) -> bool:
    """True if the events after ``after`` are retained and within the replay window."""
    settings = config()
    # Never replay more than a consumer may catch up (MAX_LAG): it would close
    # with 4013 and the client would resume from the same seq, forever.
    if after > current or current - after > min(settings.replay_window, settings.max_lag):
        return False
    if after == current:
        return True
    return Event.objects.filter(dag_id=dag_id, seq=after + 1).exists()


def latest_command_seq(dag_id: str) -> int | None:
    """The seq of the DAG's latest pause / resume / cancel, or None."""
    return (
        Event.objects.filter(dag_id=dag_id)
        .exclude(command="")
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )


def commands_after(dag_id: str, cursor: int) -> tuple[list[tuple[int, str]], str | None]:
    """People's commands (seq, pause|resume|cancel) after ``cursor``, and the DAG's status."""
    # Status first: commands precede a terminal state, so they are visible then.
    status = Dag.objects.filter(pk=dag_id).values_list("status", flat=True).first()
    rows = list(
        Event.objects.filter(dag_id=dag_id, seq__gt=cursor)
        .exclude(command="")
        .order_by("seq")
        .values_list("seq", "command")
    )
    return rows, status


# ------------------------------------------------------- live and history


def live_state(dag_id: str, event: Mapping[str, Any]) -> replay.Working:
    """What one event's live fragment shows: the rows its frame lacks, with the event applied.

    The rows are read now, so they may be ahead of the event; the fields the
    event carries are its own.
    """
    work = replay.Working(dag_id=dag_id)
    # The timeline names nodes by their labels: read those the event names.
    mutation = event.get("mutation") or {}
    named = {
        value
        for value in (
            *(event.get(key) for key in ("from", "to")),
            *(mutation.get(key) for key in ("node_id", "from", "to")),
            event.get("node_id") if event["type"] != "node_state" else None,
        )
        if isinstance(value, str)
    }
    if named:
        work.labels = dict(
            Node.objects.filter(dag_id=dag_id, node_id__in=named).values_list("node_id", "label")
        )
    match event["type"]:
        case "node_state":
            node_id = event["node_id"]
            table = connection.ops.quote_name(Node._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT label, started_at FROM {table} WHERE dag_id = %s AND node_id = %s",
                    [dag_id, node_id],
                )
                found = cursor.fetchone()
            if found is not None:
                view = replay.new_node(node_id, found[0])
                view.started_at = _iso(_raw_moment(found[1]))
                work.nodes[node_id] = view
        case "dag_mutated":
            # The rows already hold the change (and any later one): no reducer.
            rows = Node.objects.filter(dag_id=dag_id).values_list(
                "node_id", "label", "status", "started_at", "finished_at"
            )
            for node_id, label, status, started, finished in rows:
                work.nodes[node_id] = _node_view(
                    node_id, label, status, None, {}, started, finished
                )
            work.edges = dict.fromkeys((e.src, e.dst) for e in _edges(dag_id))
            return work
        case "gate_decided":
            found_gate = gate_view(dag_id, event["node_id"])
            if found_gate is not None:
                work.gates[found_gate.node_id] = found_gate
        case "execution_state":
            created = Dag.objects.filter(pk=dag_id).values_list("created_at", flat=True).first()
            work.created_at = format_ts(created) if created else event["ts"]
    replay.apply(work, event)
    return work


def history(dag_id: str, seq: int) -> replay.Working | None:
    """The DAG after event ``seq``, rebuilt from its log, or None if it is unknown.

    Reads the events up to ``seq`` and, of those after it, only the
    ``dag_mutated`` ones (to undo today's structure back to ``seq``).
    """
    found = Dag.objects.filter(pk=dag_id).values_list("name", "created_at", "budget").first()
    if found is None:
        return None
    name, created, budget = found
    events = Event.objects.filter(dag_id=dag_id)
    upto = [
        _event(*row)
        for row in events.filter(seq__lte=seq).order_by("seq").values_list(*_EVENT_FIELDS)
    ]
    later = (
        events.filter(seq__gt=seq, type="dag_mutated")
        .order_by("seq")
        .values_list("payload", flat=True)
    )
    mutations = [e["mutation"] for e in upto if e["type"] == "dag_mutated"]
    mutations += [payload["mutation"] for payload in later]
    # A budget set at creation has no event: take the first update's (or today's).
    first_cost = next((e for e in upto if e["type"] == "cost_update"), None)
    if first_cost is None:
        first_cost = (
            events.filter(seq__gt=seq, type="cost_update")
            .order_by("seq")
            .values_list("payload", flat=True)
            .first()
        )
    if first_cost is not None:
        budget = first_cost.get("budget")
    labels = dict(Node.objects.filter(dag_id=dag_id).values_list("node_id", "label"))
    edges = Edge.objects.filter(dag_id=dag_id).values_list("src", "dst")
    start = replay.Working(dag_id=dag_id, name=name, budget=budget, created_at=format_ts(created))
    return replay.rebuild(start, labels, edges, mutations, upto)


# --------------------------------------------------------------- run list


class RunRow(msgspec.Struct):
    """One run of the run list, with its node counts and waiting gates."""

    dag_id: str
    name: str
    status: protocol.ExecutionStatus
    spent: float
    budget: float | None
    created_at: str
    finished_at: str | None
    total: int
    done: int
    waiting: int
    engine_stale: bool = False  # "engine not responding"


def runs(query: str = "", status: str = "") -> QuerySet[Dag]:
    """DAGs whose name or id contains ``query`` (and in ``status``), newest first."""
    dags = Dag.objects.order_by("-created_at")
    if query:
        dags = dags.filter(Q(name__icontains=query) | Q(dag_id__icontains=query))
    if status:
        dags = dags.filter(status=status)
    return dags


def run_rows(dag_ids: Sequence[str]) -> list[RunRow]:
    """Rows of these DAGs, newest first (counts by subquery: no join fan-out)."""
    waiting = (
        Gate.objects.filter(dag=OuterRef("pk"), status="pending")
        .order_by()
        .values("dag")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        Dag.objects.filter(pk__in=list(dag_ids))
        .annotate(
            n_total=Count("nodes"),
            n_done=Count("nodes", filter=Q(nodes__status__in=replay.DONE_STATUSES)),
            n_waiting=Coalesce(Subquery(waiting), 0),
        )
        .order_by("-created_at")
        .values_list(
            "dag_id",
            "name",
            "status",
            "spent",
            "budget",
            "created_at",
            "finished_at",
            "n_total",
            "n_done",
            "n_waiting",
            "engine_seen_at",
        )
    )
    now = timezone.now()
    return [
        RunRow(
            dag_id=row[0],
            name=row[1],
            status=cast(protocol.ExecutionStatus, row[2]),
            spent=row[3],
            budget=row[4],
            created_at=format_ts(row[5]),
            finished_at=_iso(row[6]),
            total=row[7],
            done=row[8],
            waiting=row[9],
            engine_stale=engine_stale(row[2], row[10], now),
        )
        for row in rows
    ]


def finished_before(moment: datetime, limit: int | None = None) -> list[str]:
    """Ids of runs that finished before ``moment``, oldest first (at most ``limit``)."""
    rows = Dag.objects.filter(
        status__in=protocol.TERMINAL_STATUSES, finished_at__lt=moment
    ).order_by("finished_at", "pk")
    ids = rows.values_list("pk", flat=True)
    return list(ids if limit is None else ids[:limit])
