"""The SQL of one flush: a multi-row INSERT of events and one UPDATE of the nodes it touched.

For SQLite (3.33+) a VALUES list, for PostgreSQL arrays (``unnest``); only
:mod:`dagstream_app.services` calls it, inside its transaction. The ORM would
build a model instance per event and a CASE per row and column; at event-storm
rates that is most of the cost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection

from dagstream_app.models import Event, Node


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    type: str
    payload: str  # JSON text
    command: str = ""


@dataclass(slots=True)
class NodeUpdate:
    """What one flush does to one node: its last status and what it carried."""

    node_id: str
    status: str
    output: str | None = None  # JSON text; None keeps the node's output
    metrics: str | None = None  # JSON text of the merged metrics; None keeps them
    started: bool = False  # went running: started_at is set if it was not
    finished: bool = False  # reached a finished status: finished_at is now


@cache
def _max_params() -> int:
    if connection.vendor == "sqlite":
        with sqlite3.connect(":memory:") as probe:
            return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 65_535


def _chunks(rows: Sequence[Any], per_row: int, fixed: int = 0) -> list[Sequence[Any]]:
    size = max(1, (_max_params() - fixed) // per_row)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _moment(value: datetime) -> Any:
    # SQLite keeps datetimes as text in Django's own format: compare as Django does.
    return connection.ops.adapt_datetimefield_value(value)


def insert_events(dag_pk: str, created_at: datetime, rows: Sequence[EventRow]) -> None:
    """Append ``rows`` to the DAG's event log in one statement (per driver limit)."""
    if not rows:
        return
    table = _q(Event._meta.db_table)
    names = ("dag_id", "seq", "type", "payload", "created_at", "command")
    columns = ", ".join(_q(c) for c in names)
    moment = _moment(created_at)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Arrays keep the statement's text the same whatever the row count,
            # so the driver parses it once, not a placeholder per value.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT %s, s, t, p, %s, c FROM "
                "unnest(%s::bigint[], %s::text[], %s::jsonb[], %s::text[]) AS r(s, t, p, c)",
                [
                    dag_pk,
                    moment,
                    [r.seq for r in rows],
                    [r.type for r in rows],
                    [r.payload for r in rows],
                    [r.command for r in rows],
                ],
            )
            return
        for chunk in _chunks(rows, 6):
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for row in chunk:
                params += [dag_pk, row.seq, row.type, row.payload, moment, row.command]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)


_SET_NODE = (
    "status = v.status, "
    "output = CASE WHEN v.output IS NULL THEN n.output ELSE v.output END, "
    "metrics = CASE WHEN v.metrics IS NULL THEN n.metrics ELSE v.metrics END, "
    "started_at = CASE WHEN v.started THEN COALESCE(n.started_at, %s) ELSE n.started_at END, "
    "finished_at = CASE WHEN v.finished THEN %s ELSE n.finished_at END"
)


def update_nodes(dag_pk: str, now: datetime, updates: Sequence[NodeUpdate]) -> None:
    """Apply each node's update in one statement (``UPDATE … FROM`` its new values)."""
    if not updates:
        return
    table = _q(Node._meta.db_table)
    moment = _moment(now)
    where = "WHERE n.dag_id = %s AND n.node_id = v.node_id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS n SET {_SET_NODE} FROM unnest("
                "%s::text[], %s::text[], %s::jsonb[], %s::jsonb[], %s::boolean[], %s::boolean[]"
                ") AS v(node_id, status, output, metrics, started, finished) " + where,
                [
                    moment,
                    moment,
                    [u.node_id for u in updates],
                    [u.status for u in updates],
                    [u.output for u in updates],
                    [u.metrics for u in updates],
                    [u.started for u in updates],
                    [u.finished for u in updates],
                    dag_pk,
                ],
            )
            return
        for chunk in _chunks(updates, 6, fixed=3):
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for u in chunk:
                params += [u.node_id, u.status, u.output, u.metrics, u.started, u.finished]
            cursor.execute(
                f"WITH v(node_id, status, output, metrics, started, finished) AS "
                f"(VALUES {values}) UPDATE {table} AS n SET {_SET_NODE} FROM v {where}",
                [*params, moment, moment, dag_pk],
            )
