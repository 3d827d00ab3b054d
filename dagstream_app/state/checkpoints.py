"""A fan-out's members' statuses after an event, worked out from the nearest checkpoint.

Counting a 50,000-task fan-out's members at an earlier event straight from the log reads
every ``node_state`` up to that event, so the history page would cost more the longer
the run. Instead the members' statuses (one byte each, compressed) and each group's
first start and last end are kept after every ``SPACING``-th event (up to ``_MARKS`` of
them a run): the first page asked past a checkpoint works it out forward from the one
before (or from the start), and every later page at any event reads at most ``SPACING``
events of the log. They are remembered per process, like the grouping, per structure
version (a random number each time a structure is written: a deleted run's never stands
for a new one's). The log is append-only and a checkpoint is kept only at or before an
event already written (the page never asks past ``Dag.last_seq``), so a kept one never
goes stale.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import zlib
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from dagstream_app import groups
from dagstream_app.models import Event
from dagstream_app.protocol import FINISHED_NODE_STATUSES, NODE_STATUSES

SPACING = 2048  # events between two checkpoints
_KEPT = 8  # runs whose checkpoints are remembered (about 4 MB of places a 50,000 members)
_MARKS = 1024  # checkpoints a run keeps (a few MB at most: runs of one status compress)
MAX_SEQS = 5000  # folded nodes' events named by seq; past it, the log is searched
_STATUSES = ("", *sorted(NODE_STATUSES))  # a member's byte: 0 until its first node_state
_CODE = {status: code for code, status in enumerate(_STATUSES)}


@dataclass(frozen=True)
class Mark:
    """The members' statuses after one event, each group's first start and last end (the
    seqs of those events, or absent), and the seqs of the folded nodes' ``node_state``
    events up to it."""

    codes: bytes  # zlib-compressed
    first: dict[str, int]
    last: dict[str, int]
    seqs: tuple[int, ...]


@dataclass(frozen=True)
class Counted:
    """A run after one event: each group's members counted (:class:`groups.Tally`, times
    as raw ``created_at`` values), and the seqs of the folded nodes' ``node_state`` events
    up to it (None past ``MAX_SEQS``)."""

    tallies: dict[str, groups.Tally]
    seqs: list[int] | None


@dataclass
class _Run:
    """One run's members, in the order their bytes go, and its checkpoints by seq."""

    where: dict[str, int]  # member -> its byte
    spans: dict[str, tuple[int, int]]  # group -> its members' bytes, in byte order
    starts: list[int]  # each group's first byte, in byte order
    folded: frozenset[str]
    marks: dict[int, Mark] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_runs: OrderedDict[tuple[int, frozenset[str]], _Run] = OrderedDict()
_lock = threading.Lock()


def counted(dag_id: str, seq: int, known: groups.Grouping, folded: Collection[str]) -> Counted:
    """Each group's members that have a ``node_state`` at or before ``seq`` (those not
    ``folded``), counted by their last one's status, with the group's first start and
    last end; and where the ``folded`` nodes' ``node_state`` events are."""
    run = _run(known, frozenset(folded))
    statuses, first, last, seqs = _after(dag_id, seq, run)
    moments = _moments(dag_id, {*first.values(), *last.values()})
    tallies: dict[str, groups.Tally] = {}
    for key, (start, end) in run.spans.items():
        tally = tallies[key] = groups.Tally()
        codes = statuses[start:end]
        for code, status in enumerate(_STATUSES[1:], 1):
            n = codes.count(code)
            if n:
                tally.add(status, None, None, n)
        tally.first, tally.last = (moments.get(found.get(key, 0)) for found in (first, last))
    return Counted(tallies, seqs if len(seqs) <= MAX_SEQS else None)


def _run(known: groups.Grouping, folded: frozenset[str]) -> _Run:
    key = (known.version, folded)
    with _lock:
        run = _runs.get(key)
        if run is not None:
            _runs.move_to_end(key)
            return run
    where: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    for group, members in known.members.items():  # in any order: the run keeps it
        start = len(where)
        kept = [m for m in members if m not in folded]
        where.update(zip(kept, itertools.count(start), strict=False))  # count never ends
        spans[group] = (start, len(where))
    run = _Run(where, spans, [start for start, _ in spans.values()], folded)
    if not known.version:  # a structure written without services: never remembered
        return run
    with _lock:
        run = _runs.setdefault(key, run)
        while len(_runs) > _KEPT:
            _runs.popitem(last=False)
    return run


def _after(
    dag_id: str, seq: int, run: _Run
) -> tuple[bytearray, dict[str, int], dict[str, int], list[int]]:
    """The statuses after event ``seq``: the checkpoint at or before it, brought forward
    by the events between (checkpoints passed on the way are kept)."""
    with run.lock:
        since = max((s for s in run.marks if s <= seq), default=0)
        mark = run.marks.get(since)
        if mark is None:
            codes, seqs = bytearray(len(run.where)), []
            first: dict[str, int] = {}
            last: dict[str, int] = {}
        else:
            codes = bytearray(zlib.decompress(mark.codes))
            first, last, seqs = dict(mark.first), dict(mark.last), list(mark.seqs)
        table = connection.ops.quote_name(Event._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT seq, node_id, status FROM {table} WHERE dag_id = %s"
                " AND type = 'node_state' AND seq > %s AND seq <= %s ORDER BY seq",
                [dag_id, since, seq],
            )
            rows = cursor.fetchall()
        due = since + SPACING
        groups_in_order = list(run.spans)
        for at, node_id, status in rows:
            while at > due:
                _keep(run, due, Mark(zlib.compress(codes, 1), dict(first), dict(last), tuple(seqs)))
                due += SPACING
            place = run.where.get(node_id)
            code = _CODE.get(status)
            if place is None or code is None:
                if node_id in run.folded:
                    seqs.append(at)
                continue
            codes[place] = code
            group = groups_in_order[bisect.bisect_right(run.starts, place) - 1]
            if status == "running" and group not in first:
                first[group] = at
            elif status in FINISHED_NODE_STATUSES:
                last[group] = at
        while due <= seq:
            _keep(run, due, Mark(zlib.compress(codes, 1), dict(first), dict(last), tuple(seqs)))
            due += SPACING
    return codes, first, last, seqs


def _moments(dag_id: str, seqs: Collection[int]) -> dict[int, Any]:
    """The ``created_at`` (raw) of the run's events ``seqs``."""
    if not seqs:
        return {}
    table = connection.ops.quote_name(Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT seq, created_at FROM {table} WHERE dag_id = %s"
            f" AND seq IN ({', '.join(['%s'] * len(seqs))})",
            [dag_id, *seqs],
        )
        return dict(cursor.fetchall())


def _keep(run: _Run, seq: int, mark: Mark) -> None:
    if len(run.marks) < _MARKS:
        run.marks[seq] = mark
