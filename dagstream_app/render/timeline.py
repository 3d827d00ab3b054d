"""The timeline: each event in words (its type's :class:`~dagstream_app.events.Wording`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.safestring import SafeString

from dagstream_app.events.registry import Wording, kind_of
from dagstream_app.render.format import TIMELINE_LENGTH, fragment


def describe(event: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> Wording:
    """Icon, tone and text of one event for the timeline; nodes named by their labels."""
    labels = labels or {}
    kind = kind_of(event["type"])
    if kind is None:  # pragma: no cover - every stored event's type is registered
        return Wording(icon="pending", tone="info", subject=event["type"], text="")
    return kind.describe(event, lambda node_id: labels.get(node_id) or node_id)


def timeline_entry_html(
    event: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> SafeString:
    ts = event.get("ts") or ""
    return fragment(
        "timeline_entry.html",
        {
            "e": describe(event, labels),
            "seq": event["seq"],
            "type": event["type"],
            "ts": ts,
            "time": ts[11:19],
        },
    )


def timeline_html(
    events: Sequence[Mapping[str, Any]],
    *,
    oob: bool = False,
    labels: Mapping[str, str] | None = None,
) -> SafeString:
    """``events`` newest first (at most ``TIMELINE_LENGTH``); nodes named by ``labels``."""
    entries = [timeline_entry_html(e, labels) for e in events]
    return fragment("timeline.html", {"entries": entries, "limit": TIMELINE_LENGTH, "oob": oob})
