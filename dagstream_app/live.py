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


class FragmentCache(Generic[V]):
    """A small thread-safe LRU of rendered fragments."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._data: OrderedDict[CacheKey, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: CacheKey, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


cache: FragmentCache[Parts] = FragmentCache()
# The progress line as of a seq, one part each: every viewer's message ends with it.
progress_cache: FragmentCache[render.Part] = FragmentCache(2_000)


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
    progress = _progress_key(dag_id, events)
    if progress is not None:
        found = progress_cache.get(progress)
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
    progress = _progress_key(dag_id, events)
    if progress is not None:
        found = progress_cache.get(progress)
        if found is None:
            found = ("progress", render.progress_html(state.node_counts(dag_id), oob=True))
            progress_cache.put(progress, found)
        parts.append(found)
    return render.conflate(parts) + render.seq_marker(events[-1][0])


def _progress_key(dag_id: str, events: Sequence[tuple[int, str]]) -> CacheKey | None:
    """The progress line's cache key as of the message's last event, if it needs one."""
    for _, frame in events:
        if protocol.frame_type(frame) in render.PROGRESS_EVENTS:
            seq, last = events[-1]
            return (dag_id, seq, last, (True, True))
    return None


def snapshot_message(snap: DagSnapshot, perms: render.Perms) -> str:
    """Every region re-rendered out of band (a resume that could not replay)."""
    events = state.recent_events(snap.dag_id, render.TIMELINE_LENGTH, snap.last_seq)
    return render.snapshot_message(snap, perms, events)


def index_message(pending: Mapping[str, int], new_runs: int) -> str:
    """Rows of the changed DAGs on a list page (out of band), and the new-runs notice."""
    # One query per throttle window per list page; rows are not cached, since
    # the list's messages carry no event to tell a re-created DAG apart.
    return render.index_message(state.run_rows(list(pending)), new_runs)
