"""``edge_active``: data is flowing along an edge (the graph flashes it; no state changes)."""

from __future__ import annotations

import msgspec
from django.utils.translation import gettext as _

from dagstream_app.dagviews import Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording, no_change
from dagstream_app.render.format import Part, Perms, edge_dom_id
from dagstream_app.vocabulary import EventPayload, NodeId


class EdgeActive(EventPayload, tag="edge_active"):
    src: NodeId = msgspec.field(name="from")
    dst: NodeId = msgspec.field(name="to")


def describe(event: EventData, name: Namer) -> Wording:
    return Wording(
        icon="flow",
        tone="info",
        subject=f"{name(event['from'])} → {name(event['to'])}",
        text=_("data flowing"),
    )


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The flash marker ``dashboard/swaps.js`` lights the edge by (latest wins)."""
    marker = (
        f'<div id="ds-flash" hidden hx-swap-oob="true" data-seq="{seq}"'
        f' data-edge="{edge_dom_id(event["from"], event["to"])}"></div>'
    )
    return [("flash", marker)]


# An edge to or from a group's member: its group's timeline row ("groups").
KIND = EventKind(EdgeActive, no_change, describe, fragments, redraws=frozenset({"groups"}))
