"""The dashboard's live messages: read with :mod:`state`, render with :mod:`render`.

An event's fragments are its type's (:mod:`dagstream_app.events`), then its
timeline entry. They are rendered once per (DAG, seq, frame, permission variant)
per process and cached, so a thousand viewers cost one render, and a message
whose fragments are all cached costs no query at all. A message for several
events (a viewer that fell behind) is conflated (:func:`conflate`): each node's
slot, the progress line and the cost card only as of the last event, gates,
errors, the run's state and results all of them. The regions its events redraw
(the progress line, the Gantt view, the boxes and timeline rows of the groups whose
members they are about) are drawn once, as of the message's last event. What a
message's events and regions share (the DAG's groups, their counts) is read once for
the message, and a group's row, moved to the top by each of its members' events, is
rendered only for the event whose move the message sends (:class:`Deferred`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from django.conf import settings
from django.utils import translation

from dagstream_app import events, protocol, state
from dagstream_app.dagviews import DagSnapshot, GroupView, Working
from dagstream_app.groups import Grouping, event_group
from dagstream_app.render.format import TIMELINE_LENGTH, TIMELINE_SCAN, Perms
from dagstream_app.render.gantt import gantt_html
from dagstream_app.render.groups import group_slot_html
from dagstream_app.render.page import regions
from dagstream_app.render.regions import list_notice_html, progress_html, row_html, seq_marker
from dagstream_app.render.timeline import group_row_html, timeline_entry_html

# (dag_id, seq, frame, perms, language): the frame (with its timestamp) tells apart
# a DAG deleted and created again under the same id, whose seqs start over; each
# language its page was rendered in (render.stream_query) is rendered once.
CacheKey = tuple[str, int, str, Perms, str]


class Deferred:
    """A fragment rendered the first time a message sends it, then kept (thread-safe:
    two first renders give the same text).

    A group's row is moved to the top by each of its members' events, and a message
    sends only its last: the others are never rendered.
    """

    __slots__ = ("_html", "_language", "_render")

    def __init__(self, render: Callable[[], str]) -> None:
        self._render: Callable[[], str] | None = render
        self._language = translation.get_language()
        self._html = ""

    @property
    def rendered(self) -> bool:
        """True once rendered: reading it again costs nothing."""
        return self._render is None

    def __str__(self) -> str:
        render = self._render
        if render is not None:
            with translation.override(self._language):
                self._html = render()
            self._render = None
        return self._html


# One fragment of a live message with the slot it replaces (render.Part), or a deferred one.
LivePart = tuple[str | None, str | Deferred]
Parts = tuple[LivePart, ...]
V = TypeVar("V")
K = TypeVar("K")
TIMELINE_SLOT = "timeline"
# The regions drawn once per message, in the order they end it.
REDRAWN: tuple[events.Redraw, ...] = ("groups", "progress", "gantt")


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
MessageKey = tuple[str, int, str, str, str]
message_cache: FragmentCache[LivePart, MessageKey] = FragmentCache(2_000)


def cached_events_html(
    dag_id: str, frames: Sequence[tuple[int, str]], perms: Perms, language: str | None = None
) -> str | None:
    """The message for ``frames`` if every fragment is cached and rendered (no database,
    no template: it runs on the event loop), else None."""
    parts: list[LivePart] = []
    lang = language or settings.LANGUAGE_CODE
    for seq, frame in frames:
        cached = cache.get((dag_id, seq, frame, perms, lang))
        if cached is None:
            return None
        parts.extend(cached)
    for region in _message_keys(dag_id, frames, lang):
        found = message_cache.get(region)
        if found is None:
            return None
        parts.append(found)
    kept = _kept(parts)
    if any(isinstance(html, Deferred) and not html.rendered for html in kept):
        return None  # another batch's last for its group: rendered off the loop
    return "".join(str(html) for html in kept) + seq_marker(frames[-1][0])


def events_html(
    dag_id: str, frames: Sequence[tuple[int, str]], perms: Perms, language: str | None = None
) -> str:
    """One message for ``frames`` (in ``language``, default ``LANGUAGE_CODE``): their
    fragments in order (conflated), then the seq marker."""
    lang = language or settings.LANGUAGE_CODE
    with translation.override(lang):
        return _events_html(dag_id, frames, perms, lang)


class _Reads:
    """What a message's events and regions share, read at most once per message: the
    DAG's groups (one short query when remembered) and their counts."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self._grouping: Grouping | None = None
        self._views: dict[str, GroupView] | None = None

    def grouping(self) -> Grouping:
        if self._grouping is None:
            self._grouping = state.grouping(self.dag_id)
        return self._grouping

    def views(self) -> dict[str, GroupView]:
        """Every group's counts as they are now."""
        if self._views is None:
            self._views = state.group_views(self.dag_id, self.grouping())
        return self._views


def _events_html(dag_id: str, frames: Sequence[tuple[int, str]], perms: Perms, lang: str) -> str:
    parts: list[LivePart] = []
    reads = _Reads(dag_id)
    for seq, frame in frames:
        key = (dag_id, seq, frame, perms, lang)
        cached = cache.get(key)
        if cached is None:
            event = json.loads(frame)
            named = events.named_nodes(event)
            grouped = reads.grouping() if named else None
            work = state.live_state(dag_id, event, grouped, named)
            cached = tuple(event_parts(dag_id, seq, event, work, perms, grouped, named))
            cache.put(key, cached)
        parts.extend(cached)
    for region in _message_keys(dag_id, frames, lang):
        found = message_cache.get(region)
        if found is None:
            found = _message_part(dag_id, region[3], frames, reads)
            message_cache.put(region, found)
        parts.append(found)
    return conflate(parts) + seq_marker(frames[-1][0])


def event_parts(
    dag_id: str,
    seq: int,
    event: events.EventData,
    work: Working,
    perms: Perms,
    grouped: Grouping | None = None,
    named: set[str] | None = None,
) -> list[LivePart]:
    """One event as out-of-band fragments for only what it changed (without the seq marker).

    ``work`` is what the fragments show (:func:`dagstream_app.state.live_state`);
    ``grouped``, the DAG's groups if the caller read them (else read here); ``named``,
    the nodes the event names if the caller found them (:func:`dagstream_app.events.named_nodes`).
    Its type's fragments come first (node slots, the cost card and the edge
    flash are latest-wins; gates, the run's state and its results never drop),
    then its timeline entry. The progress line and the Gantt view are drawn
    once per message.
    """
    kind = events.kind_of(event["type"])
    parts: list[LivePart] = []
    if kind is not None:
        parts.extend(kind.fragments(dag_id, seq, event, work, perms))
    if named is None:
        named = events.named_nodes(event)
    labels = {node_id: work.label(node_id) for node_id in named}
    grouping = (grouped or state.grouping(dag_id)) if named else None
    group = event_group(event, grouping.group_of) if grouping else None
    if grouping is None or group is None:
        entry = timeline_entry_html(event, labels)
        parts.append((TIMELINE_SLOT, f'<ol hx-swap-oob="afterbegin:#timeline">{entry}</ol>'))
        return parts
    # A member's event: its group's row, at the top (the page drops the row it had);
    # the message's "groups" redraw fills in the group's counts.
    # Rendered only if it is the message's last for its group (conflate).
    label = grouping.labels.get(group, group)

    def moved() -> str:
        row = group_row_html(dag_id, group, event, labels, label=label)
        return f'<ol hx-swap-oob="afterbegin:#timeline">{row}</ol>'

    parts.append((f"tlg:{group}", Deferred(moved)))
    return parts


def conflate(parts: Sequence[LivePart]) -> str:
    """Fragments of several events in order, each slot's last only, the last timeline entries."""
    return "".join(str(html) for html in _kept(parts))


def _kept(parts: Sequence[LivePart]) -> list[str | Deferred]:
    """What :func:`conflate` sends of ``parts``, in order."""
    last: dict[str, int] = {}
    for index, (slot, _) in enumerate(parts):
        if slot is not None and slot != TIMELINE_SLOT:
            last[slot] = index
    entries = [i for i, (slot, _) in enumerate(parts) if slot == TIMELINE_SLOT]
    kept_entries = set(entries[-TIMELINE_LENGTH:])
    return [
        html
        for index, (slot, html) in enumerate(parts)
        if slot is None
        or (slot == TIMELINE_SLOT and index in kept_entries)
        or last.get(slot) == index
    ]


def _message_keys(dag_id: str, frames: Sequence[tuple[int, str]], lang: str) -> list[MessageKey]:
    """The once-per-message regions ``frames`` change, keyed as of the last of them."""
    redrawn: set[str] = set()
    for kind_name in {protocol.frame_type(frame) for _, frame in frames}:
        kind = events.kind_of(kind_name)
        if kind is not None:
            redrawn |= kind.redraws
    seq, last = frames[-1]
    # The groups drawn are those the message's events touch: keyed by its first seq too.
    named = {"groups": f"groups:{frames[0][0]}"}
    return [
        (dag_id, seq, last, named.get(region, region), lang)
        for region in REDRAWN
        if region in redrawn
    ]


def _message_part(
    dag_id: str, region: str, frames: Sequence[tuple[int, str]], reads: _Reads
) -> LivePart:
    # Read now: the regions may be a little ahead of the message, never behind.
    if region.startswith("groups"):
        return ("groups", _groups_part(dag_id, frames, reads))
    if region == "gantt":
        gantt = state.gantt(dag_id, groups=reads.views(), grouped=reads.grouping())
        return ("gantt", gantt_html(gantt, oob=True, dag_id=dag_id))
    found = state.progress(dag_id)
    status = found[1] if found else "running"
    return ("progress", progress_html(state.node_counts(dag_id), status, oob=True))


def _groups_part(dag_id: str, frames: Sequence[tuple[int, str]], reads: _Reads) -> str:
    """The boxes and timeline rows of the groups whose members the message's events are
    about: each once, as of the group's last event in it."""
    grouping = reads.grouping()
    if not grouping.members:
        return ""
    latest: dict[str, events.EventData] = {}
    for _, frame in frames:
        event = json.loads(frame)
        group = event_group(event, grouping.group_of)
        if group is not None:
            latest[group] = event
    if not latest:
        return ""
    views = {key: view for key, view in reads.views().items() if key in latest}
    named = set().union(*(events.named_nodes(event) for event in latest.values()))
    labels = state.labels_of(dag_id, named)
    seq = frames[-1][0]
    return "".join(
        group_slot_html(dag_id, view, seq)
        + group_row_html(dag_id, key, latest[key], labels, view=view, oob=True)
        for key, view in views.items()
    )


def snapshot_message(snap: DagSnapshot, perms: Perms, language: str | None = None) -> str:
    """Every region re-rendered out of band (a resume that could not replay)."""
    with translation.override(language or settings.LANGUAGE_CODE):
        return _snapshot_message(snap, perms)


def _snapshot_message(snap: DagSnapshot, perms: Perms) -> str:
    recent = state.recent_events(snap.dag_id, TIMELINE_SCAN, snap.last_seq)
    health = state.engine_health(snap.dag_id)
    gantt = state.gantt(snap.dag_id)
    snap, graph, labels = state.regroup(snap)
    parts = regions(
        snap, perms, recent, oob=True, health=health, gantt=gantt, graph=graph, labels=labels
    )
    return "".join(parts.values()) + seq_marker(snap.last_seq)


def index_message(pending: Mapping[str, int], new_runs: int, language: str | None = None) -> str:
    """Rows of the changed DAGs on a list page (out of band), and the new-runs notice."""
    with translation.override(language or settings.LANGUAGE_CODE):
        return _index_message(pending, new_runs)


def _index_message(pending: Mapping[str, int], new_runs: int) -> str:
    # One query per throttle window per list page; rows are not cached, since
    # the list's messages carry no event to tell a re-created DAG apart.
    parts = [row_html(row, oob=True) for row in state.run_rows(list(pending))]
    if new_runs:
        parts.append(list_notice_html(new_runs))
    return "".join(parts)
