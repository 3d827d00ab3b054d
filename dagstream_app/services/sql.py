"""The SQL of one flush: a multi-row INSERT of events and one UPDATE of the nodes it touched.

Also a new DAG's nodes and edges, one INSERT each.

For SQLite (3.33+) a VALUES list, for PostgreSQL one JSON array of rows; only
the flush (:mod:`.flush`, :mod:`.engine_deltas`) and DAG creation call it, inside
their transaction. The ORM would
build a model instance per event and a CASE per row and column; at event-storm
rates that is most of the cost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

import msgspec
from django.db import connection

from dagstream_app.models import Edge, Event, Node


class EventRow(NamedTuple):
    seq: int
    type: str
    payload: str  # JSON text
    command: str = ""
    node_id: str = ""  # a node_state event's node and status (columns history counts by)
    status: str = ""


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


# PostgreSQL gets the rows as one JSON array of arrays, one parameter: the
# statement's text is the same whatever the row count (the server plans it
# once), and encoding the rows is one call into msgspec, where dumping a
# Python list per column into a PostgreSQL array costs the driver ten times
# more. JSON columns go in as they are (their text is dagstream's own JSON).


@cache
def _pg_columns(columns: tuple[tuple[str, str], ...]) -> str:
    """The select list that reads one row ``e`` of :func:`_pg_rows` back, typed."""
    parts = []
    for index, (_, kind) in enumerate(columns):
        if kind == "jsonb":  # None went in as JSON null: it comes out as SQL NULL
            parts.append(f"NULLIF(e -> {index}, 'null'::jsonb)")
        elif kind == "text":
            parts.append(f"e ->> {index}")
        else:
            parts.append(f"(e ->> {index})::{kind}")
    return ", ".join(parts)


def _pg_rows(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> str:
    embed = [index for index, (_, kind) in enumerate(columns) if kind == "jsonb"]
    if embed:
        rows = [_embedded(row, embed) for row in rows]
    return _rows_encoder.encode(rows).decode()


def _embedded(row: Sequence[Any], embed: list[int]) -> list[Any]:
    values = list(row)
    for index in embed:
        if values[index] is not None:
            values[index] = msgspec.Raw(values[index])
    return values


_rows_encoder = msgspec.json.Encoder()


def _insert(
    table: str,
    columns: tuple[tuple[str, str], ...],
    rows: Sequence[Sequence[Any]],
    same: Sequence[tuple[str, str, Any]] = (),
) -> None:
    """INSERT ``rows`` (values in the order of ``columns``: name, PostgreSQL type) at once.

    ``same``: columns (name, PostgreSQL type, value) whose value is that of every
    row, bound once rather than once a row.
    """
    if not rows:
        return
    names = ", ".join(_q(name) for name, *_ in (*same, *columns))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            fixed = "".join(f"%s::{kind}, " for _, kind, _ in same)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {fixed}{_pg_columns(columns)} "
                "FROM jsonb_array_elements(%s::jsonb) AS e",
                [*(value for *_, value in same), _pg_rows(columns, rows)],
            )
            return
        fixed = "".join("%s, " for _ in same)
        varying = ", ".join(f"column{i}" for i in range(1, len(columns) + 1))
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for chunk in _chunks(rows, len(columns), fixed=len(same)):
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {fixed}{varying} "
                f"FROM (VALUES {', '.join([row] * len(chunk))})",
                [*(value for *_, value in same), *(value for values in chunk for value in values)],
            )


_EVENT_COLUMNS = (
    ("seq", "bigint"),
    ("type", "text"),
    ("payload", "jsonb"),
    ("command", "text"),
    ("node_id", "text"),
    ("status", "text"),
)


def insert_events(dag_pk: str, created_at: datetime, rows: Sequence[EventRow]) -> None:
    """Append ``rows`` to the DAG's event log in one statement (per driver limit)."""
    same = (("dag_id", "text", dag_pk), ("created_at", "timestamptz", _moment(created_at)))
    _insert(_q(Event._meta.db_table), _EVENT_COLUMNS, rows, same)


def insert_nodes(dag_pk: str, created_at: datetime, nodes: Sequence[tuple[str, str, str]]) -> None:
    """Add pending nodes, ``(node_id, label, group)`` each, in one statement (per driver limit)."""
    same = (
        ("dag_id", "text", dag_pk),
        ("status", "text", Node.Status.PENDING.value),
        ("metrics", "jsonb", "{}"),
        ("created_at", "timestamptz", _moment(created_at)),
    )
    columns = (("node_id", "text"), ("label", "text"), ("group", "text"))
    _insert(_q(Node._meta.db_table), columns, nodes, same)


def insert_edges(dag_pk: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Add edges ``(src, dst)`` in one statement (per driver limit)."""
    columns = (("src", "text"), ("dst", "text"))
    _insert(_q(Edge._meta.db_table), columns, pairs, (("dag_id", "text", dag_pk),))


def node_metrics(dag_pk: str, node_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The metrics of these nodes, by node id, in one query (no model per row)."""
    table = _q(Node._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT node_id, metrics FROM {table} WHERE dag_id = %s AND node_id = ANY(%s)",
                [dag_pk, list(node_ids)],
            )
        else:
            cursor.execute(
                f"SELECT node_id, metrics FROM {table} WHERE dag_id = %s AND node_id IN "
                "(SELECT value FROM json_each(%s))",
                [dag_pk, _ids_encoder.encode(list(node_ids)).decode()],
            )
        rows = cursor.fetchall()
    # The drivers hand jsonb and JSON text over as text (Django asks them to).
    return {
        node_id: json.loads(metrics) if isinstance(metrics, str | bytes) else metrics
        for node_id, metrics in rows
    }


_ids_encoder = msgspec.json.Encoder()


_SET_NODE = (
    "status = v.status, "
    "output = CASE WHEN v.output IS NULL THEN n.output ELSE v.output END, "
    "metrics = CASE WHEN v.metrics IS NULL THEN n.metrics ELSE v.metrics END, "
    "started_at = CASE WHEN v.started THEN COALESCE(n.started_at, %s) ELSE n.started_at END, "
    "finished_at = CASE WHEN v.finished THEN %s ELSE n.finished_at END"
)


_UPDATE_COLUMNS = (
    ("node_id", "text"),
    ("status", "text"),
    ("output", "jsonb"),
    ("metrics", "jsonb"),
    ("started", "boolean"),
    ("finished", "boolean"),
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
            rows = [
                (u.node_id, u.status, u.output, u.metrics, u.started, u.finished) for u in updates
            ]
            cursor.execute(
                f"UPDATE {table} AS n SET {_SET_NODE} FROM (SELECT {_pg_columns(_UPDATE_COLUMNS)} "
                "FROM jsonb_array_elements(%s::jsonb) AS e) "
                "AS v(node_id, status, output, metrics, started, finished) " + where,
                [moment, moment, _pg_rows(_UPDATE_COLUMNS, rows), dag_pk],
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
