"""The event log: frames to send, recent events, whether a resume can replay, commands."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from django.db import connection

from dagstream_app import protocol
from dagstream_app.conf import config
from dagstream_app.groups import event_group
from dagstream_app.models import Dag, Event
from dagstream_app.protocol import format_ts
from dagstream_app.state.shared import raw_moment


def event_dict(seq: int, kind: str, created: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    """An event as clients receive it, without ``dag_id``."""
    return {"type": kind, "seq": seq, "ts": format_ts(created), **payload}


EVENT_FIELDS = ("seq", "type", "created_at", "payload")


def event_frames(dag_id: str, after: int, upto: int | None = None) -> list[tuple[int, str]]:
    """(seq, JSON text) of the events with ``after < seq <= upto``, in order."""
    rows = Event.objects.filter(dag_id=dag_id, seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [
        (seq, protocol.event_frame(kind, dag_id, seq, format_ts(created), payload))
        for seq, kind, created, payload in rows.order_by("seq").values_list(*EVENT_FIELDS)
    ]


def recent_events(dag_id: str, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` events (at or before ``upto``), newest first.

    Raw SQL, payloads decoded by msgspec: a page's timeline reads a thousand events, and
    the ORM's converters and ``json.loads`` cost most of the read.
    """
    table = connection.ops.quote_name(Event._meta.db_table)
    before = "" if upto is None else " AND seq <= %s"
    params = [dag_id] if upto is None else [dag_id, upto]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT seq, type, created_at, payload FROM {table} WHERE dag_id = %s{before}"
            " ORDER BY seq DESC LIMIT %s",
            [*params, limit],
        )
        rows = cursor.fetchall()
    return [
        {"type": kind, "seq": seq, "ts": format_ts(_moment(created)), **_payload(payload)}
        for seq, kind, created, payload in rows
    ]


_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _payload(value: str | bytes | dict[str, Any]) -> dict[str, Any]:
    # The drivers hand jsonb and JSON text over as text (Django asks them to).
    return value if isinstance(value, dict) else _decode(value)


def _moment(value: datetime | str) -> datetime:
    moment = raw_moment(value)
    assert moment is not None  # created_at is never null
    return moment


# Events read a query at a time when looking for a group's members' events.
SCAN_CHUNK = 2_000


def group_events(
    dag_id: str,
    group_id: str,
    group_of: Mapping[str, str],
    *,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """The newest ``limit`` events of the group's members (``group_of``: member -> group;
    see :func:`dagstream_app.groups.event_group`) before seq ``before``, newest first, and
    the seq to read older ones before (None: there are none).

    The log has no column for an event's node: read back ``SCAN_CHUNK`` events at a time
    until the page is full (a fan-out's members' events are most of its log).
    """
    found: list[dict[str, Any]] = []
    cursor = before
    while True:
        rows = Event.objects.filter(dag_id=dag_id)
        if cursor is not None:
            rows = rows.filter(seq__lt=cursor)
        chunk = list(rows.order_by("-seq").values_list(*EVENT_FIELDS)[:SCAN_CHUNK])
        for row in chunk:
            event = event_dict(*row)
            if event_group(event, group_of) != group_id:
                continue
            if len(found) == limit:
                return found, found[-1]["seq"]
            found.append(event)
        if len(chunk) < SCAN_CHUNK:
            return found, None
        cursor = chunk[-1][0]


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
