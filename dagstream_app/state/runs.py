"""The runs: one DAG's row, the run list and its rows, what changed, what finished."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

import msgspec
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from dagstream_app import protocol
from dagstream_app.dagviews import DONE_STATUSES
from dagstream_app.models import Dag, Event, Gate
from dagstream_app.protocol import format_ts
from dagstream_app.state.shared import engine_stale, iso


def dag(dag_id: str) -> Dag | None:
    return Dag.objects.filter(pk=dag_id).first()


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
    return protocol.EngineHealth(status, iso(seen), engine_stale(status, seen), reporting)


def progress(dag_id: str, using: BaseDatabaseWrapper | None = None) -> tuple[int, str] | None:
    """The DAG's (last seq, status), or None if it is unknown.

    ``using``: a connection of the caller's own (a Celery worker's, which Celery
    does not close around every task) instead of the thread's Django one. One
    plain query: a worker asks this before every task starts.
    """
    db = using or connection
    seq, status, key = (db.ops.quote_name(name) for name in ("last_seq", "status", "dag_id"))
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT {seq}, {status} FROM {db.ops.quote_name(Dag._meta.db_table)} WHERE {key} = %s",
            [dag_id],
        )
        found = cursor.fetchone()
    return None if found is None else (int(found[0]), str(found[1]))


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
            n_done=Count("nodes", filter=Q(nodes__status__in=DONE_STATUSES)),
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
            finished_at=iso(row[6]),
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
