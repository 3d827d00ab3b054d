"""``error``: something went wrong, at a node or in the run (it shows in the timeline only).

An error alone changes no state: a failure is a ``node_state`` or ``execution_state``.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from dagstream_app.events.registry import EventData, EventKind, Namer, Wording, no_change
from dagstream_app.vocabulary import EventPayload, NodeId


class ErrorEvent(EventPayload, tag="error"):
    message: str
    node_id: NodeId | None = None


def describe(event: EventData, name: Namer) -> Wording:
    node_id = event.get("node_id")
    return Wording(
        icon="alert",
        tone="failed",
        subject=name(node_id) if node_id else _("Run"),
        text=event["message"],
    )


# About a group's member: its group's timeline row ("groups").
KIND = EventKind(ErrorEvent, no_change, describe, redraws=frozenset({"groups"}))
