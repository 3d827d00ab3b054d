"""The timeline: each event in words (its type's :class:`~dagstream_app.events.Wording`).

A group's members' events (a fan-out's, :func:`dagstream_app.groups.event_group`) share
one row: the group's, showing its newest member event and the group's counts, which a
live message moves to the top and redraws once however many members changed. The row
opens the group's events, newest first, paged (:func:`group_events_html`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from dagstream_app.dagviews import GroupView
from dagstream_app.events.registry import Wording, kind_of, named_nodes
from dagstream_app.groups import event_group
from dagstream_app.render.format import TIMELINE_LENGTH, dom_id, fragment
from dagstream_app.render.groups import counts_text, group_url


def describe(event: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> Wording:
    """Icon, tone and text of one event for the timeline; nodes named by their labels."""
    labels = labels or {}
    kind = kind_of(event["type"])
    if kind is None:  # pragma: no cover - every stored event's type is registered
        return Wording(icon="pending", tone="info", subject=event["type"], text="")
    return kind.describe(event, lambda node_id: labels.get(node_id) or node_id)


def _when(event: Mapping[str, Any]) -> dict[str, Any]:
    ts = event.get("ts") or ""
    return {"seq": event["seq"], "type": event["type"], "ts": ts, "time": ts[11:19]}


def timeline_entry_html(
    event: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> SafeString:
    return fragment("timeline_entry.html", {"e": describe(event, labels), **_when(event)})


def group_row_id(group_id: str) -> str:
    """The DOM id of a group's timeline row."""
    return dom_id("tlg", group_id)


def group_events_url(dag_id: str, group_id: str) -> str:
    """The group's events, newest first, paged."""
    base = reverse("dagstream:detail", args=[dag_id])
    return f"{base}timeline/{quote(group_id, safe='')}/"


def group_row_html(
    dag_id: str,
    group_id: str,
    event: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    *,
    view: GroupView | None = None,
    label: str = "",
    oob: bool = False,
) -> SafeString:
    """A group's row: its newest member ``event`` and, with ``view``, the group's status and
    counts (without, those of the event: a live message's row, whose counts follow in it)."""
    status = view.status if view is not None else str(event.get("status") or "running")
    context = {
        "e": describe(event, labels),
        **_when(event),
        "dom_id": group_row_id(group_id),
        "group_id": group_id,
        "label": view.label if view is not None else label or group_id,
        "status": status,
        "counts": counts_text(view) if view is not None else "",
        "url": group_events_url(dag_id, group_id) if dag_id else "",
        "oob": oob,
    }
    return fragment("timeline_group.html", context)


def timeline_rows(
    events: Sequence[Mapping[str, Any]], group_of: Mapping[str, str] | None
) -> list[tuple[str | None, Mapping[str, Any]]]:
    """The timeline's rows from ``events`` (newest first): (None, an event), or (a group,
    its members' newest event); at most ``TIMELINE_LENGTH``."""
    rows: list[tuple[str | None, Mapping[str, Any]]] = []
    seen: set[str] = set()
    for event in events:
        if len(rows) >= TIMELINE_LENGTH:
            break
        group = event_group(event, group_of or {})
        if group is None or group not in seen:
            rows.append((group, event))
        if group is not None:
            seen.add(group)
    return rows


def timeline_names(
    events: Sequence[Mapping[str, Any]], group_of: Mapping[str, str] | None
) -> set[str]:
    """The nodes the timeline's rows name (their labels are read for it)."""
    return set().union(*(named_nodes(event) for _, event in timeline_rows(events, group_of)))


def timeline_html(
    events: Sequence[Mapping[str, Any]],
    *,
    oob: bool = False,
    labels: Mapping[str, str] | None = None,
    group_of: Mapping[str, str] | None = None,
    groups: Mapping[str, GroupView] | None = None,
    dag_id: str = "",
) -> SafeString:
    """``events`` newest first, nodes named by ``labels``: at most ``TIMELINE_LENGTH`` rows,
    the events of a group's members (``group_of``: member -> group) in one row per group,
    with its counts (``groups``); with ``dag_id``, a group's row opens its events."""
    views = groups or {}
    rows = timeline_rows(events, group_of)
    entries = [
        timeline_entry_html(event, labels)
        if group is None
        else group_row_html(dag_id, group, event, labels, view=views.get(group))
        for group, event in rows
    ]
    grouped = any(group is not None for group, _ in rows)
    context = {"entries": entries, "limit": TIMELINE_LENGTH, "oob": oob, "grouped": grouped}
    return fragment("timeline.html", context)


def group_events_html(
    dag_id: str,
    view: GroupView,
    events: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    *,
    url: str,
    older_url: str,
    newest_url: str,
) -> SafeString:
    """A group's panel of its members' events (newest first, a page of them); ``url``: this
    page's, ``older_url``: the next page's ("" at the first event), ``newest_url``: the first
    page's when this is not it."""
    context = {
        "group": view,
        "slot": dom_id("gs", view.id),
        "url": url,
        "counts": counts_text(view),
        "entries": [timeline_entry_html(event, labels) for event in events],
        "older_url": older_url,
        "newest_url": newest_url,
        "members_url": group_url(dag_id, view.id),
    }
    return mark_safe(render_to_string("dagstream_app/group_events.html", context))
