"""The dashboard's live messages: read with :mod:`state`, render with :mod:`render`.

Each event's fragments are rendered once per (DAG, seq, frame, permission
variant) per process and cached, so a thousand viewers cost one render, and a
message whose fragments are all cached costs no query at all. A message for
several events (a viewer that fell behind) is conflated: each node's slot,
the progress line and the cost card only as of the last event, gates, errors,
the run's state and results all of them (:func:`render.conflate`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

from dagstream_app import protocol, render, state
from dagstream_app.protocol import DagSnapshot

# (dag_id, seq, frame, perms): the frame (with its timestamp) tells apart a DAG
# deleted and created again under the same id, whose seqs start over.
CacheKey = tuple[str, int, str, render.Perms]
Parts = tuple[render.Part, ...]
V = TypeVar("V")
K = TypeVar("K")


class FragmentCache(Generic[V, K]):
    """A small thread-safe LRU of rendered fragments."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


cache: FragmentCache[Parts, CacheKey] = FragmentCache()
# The regions drawn once per message (the progress line, the Gantt view), as of
# the message's last event: every viewer's message for those events ends with them.
MessageKey = tuple[str, int, str, str]
message_cache: FragmentCache[render.Part, MessageKey] = FragmentCache(2_000)


def cached_events_html(
    dag_id: str, events: Sequence[tuple[int, str]], perms: render.Perms
) -> str | None:
    """The message for ``events`` if every fragment is cached (no database), else None."""
    parts: list[render.Part] = []
    for seq, frame in events:
        cached = cache.get((dag_id, seq, frame, perms))
        if cached is None:
            return None
        parts.extend(cached)
    for region in _message_keys(dag_id, events):
        found = message_cache.get(region)
        if found is None:
            return None
        parts.append(found)
    return render.conflate(parts) + render.seq_marker(events[-1][0])


def events_html(dag_id: str, events: Sequence[tuple[int, str]], perms: render.Perms) -> str:
    """One message for ``events``: their fragments in order (conflated), then the seq marker."""
    parts: list[render.Part] = []
    for seq, frame in events:
        key = (dag_id, seq, frame, perms)
        cached = cache.get(key)
        if cached is None:
            event = json.loads(frame)
            work = state.live_state(dag_id, event)
            cached = tuple(render.event_parts(dag_id, seq, event, work, perms))
            cache.put(key, cached)
        parts.extend(cached)
    for region in _message_keys(dag_id, events):
        found = message_cache.get(region)
        if found is None:
            found = _message_part(dag_id, region[3])
            message_cache.put(region, found)
        parts.append(found)
    return render.conflate(parts) + render.seq_marker(events[-1][0])


def _message_keys(dag_id: str, events: Sequence[tuple[int, str]]) -> list[MessageKey]:
    """The once-per-message regions ``events`` change, keyed as of the last of them."""
    kinds = {protocol.frame_type(frame) for _, frame in events}
    seq, last = events[-1]
    return [
        (dag_id, seq, last, region)
        for region, changed_by in (
            ("progress", render.PROGRESS_EVENTS),
            ("gantt", state.GANTT_EVENTS),
        )
        if kinds & changed_by
    ]


def _message_part(dag_id: str, region: str) -> render.Part:
    # Read now: the regions may be a little ahead of the message, never behind.
    if region == "gantt":
        return ("gantt", render.gantt_html(state.gantt(dag_id), oob=True))
    found = state.progress(dag_id)
    status = found[1] if found else "running"
    return ("progress", render.progress_html(state.node_counts(dag_id), status, oob=True))


def snapshot_message(snap: DagSnapshot, perms: render.Perms) -> str:
    """Every region re-rendered out of band (a resume that could not replay)."""
    events = state.recent_events(snap.dag_id, render.TIMELINE_LENGTH, snap.last_seq)
    health = state.engine_health(snap.dag_id)
    gantt = state.gantt(snap.dag_id)
    return render.snapshot_message(snap, perms, events, health=health, gantt=gantt)


def index_message(pending: Mapping[str, int], new_runs: int) -> str:
    """Rows of the changed DAGs on a list page (out of band), and the new-runs notice."""
    # One query per throttle window per list page; rows are not cached, since
    # the list's messages carry no event to tell a re-created DAG apart.
    return render.index_message(state.run_rows(list(pending)), new_runs)
