"""The SQL of one flush: a multi-row INSERT of events and one UPDATE of the nodes it touched.

Written for SQLite (3.33+) and PostgreSQL alike; only :mod:`dagstream_app.services`
calls it, inside its transaction. The ORM would build a model instance per event
and a CASE per row and column; at event-storm rates that is most of the cost.
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
    """Append ``rows`` to the DAG's event log (multi-row INSERTs, as few as the driver allows)."""
    if not rows:
        return
    json = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    table = _q(Event._meta.db_table)
    columns = ", ".join(
        _q(c) for c in ("dag_id", "seq", "type", "payload", "created_at", "command")
    )
    moment = _moment(created_at)
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, 6):
            values = ", ".join([f"(%s, %s, %s, {json}, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for row in chunk:
                params += [dag_pk, row.seq, row.type, row.payload, moment, row.command]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)


def update_nodes(dag_pk: str, now: datetime, updates: Sequence[NodeUpdate]) -> None:
    """Apply each node's update in one statement per chunk (``UPDATE … FROM`` a VALUES list)."""
    if not updates:
        return
    pg = connection.vendor == "postgresql"
    text, json, flag = ("%s::text", "%s::jsonb", "%s::boolean") if pg else ("%s", "%s", "%s")
    table = _q(Node._meta.db_table)
    row_sql = f"({text}, {text}, {json}, {json}, {flag}, {flag})"
    sql_set = (
        "status = v.status, "
        "output = CASE WHEN v.output IS NULL THEN n.output ELSE v.output END, "
        "metrics = CASE WHEN v.metrics IS NULL THEN n.metrics ELSE v.metrics END, "
        "started_at = CASE WHEN v.started THEN COALESCE(n.started_at, %s) ELSE n.started_at END, "
        "finished_at = CASE WHEN v.finished THEN %s ELSE n.finished_at END"
    )
    moment = _moment(now)
    with connection.cursor() as cursor:
        for chunk in _chunks(updates, 6, fixed=3):
            values = ", ".join([row_sql] * len(chunk))
            params: list[Any] = []
            for u in chunk:
                params += [u.node_id, u.status, u.output, u.metrics, u.started, u.finished]
            cursor.execute(
                f"WITH v(node_id, status, output, metrics, started, finished) AS "
                f"(VALUES {values}) "
                f"UPDATE {table} AS n SET {sql_set} FROM v "
                f"WHERE n.dag_id = %s AND n.node_id = v.node_id",
                [*params, moment, moment, dag_pk],
            )
