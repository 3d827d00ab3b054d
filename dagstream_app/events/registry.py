"""What an event type is made of, and the table every other module looks types up in.

An :class:`EventKind` holds everything dagstream knows about one event type:
its payload struct (the wire format, validated and exported as JSON Schema by
:mod:`dagstream_app.protocol`), its reducer (:mod:`dagstream_app.replay`), its
timeline wording (:mod:`dagstream_app.render.timeline`), its live fragments and
the rows they need (:mod:`dagstream_app.live`, :mod:`dagstream_app.state`), and
the regions drawn once per live message that it changes. Each built-in type
declares its kind in its own module of :mod:`dagstream_app.events`.

This module imports no other part of dagstream at run time but the views and
the vocabulary, so anything may import it; the modules an event home imports
(``render.format``, ``render.graph``, ``render.regions``) import only this one
of :mod:`dagstream_app.events`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dagstream_app.vocabulary import EventPayload

if TYPE_CHECKING:
    from dagstream_app.dagviews import Working
    from dagstream_app.render.format import Part, Perms

# An event as clients receive it: ``type``, ``seq``, ``ts`` and its own fields.
EventData = Mapping[str, Any]
# The regions a live message draws once, as of its last event.
Redraw = Literal["progress", "gantt", "groups"]
# What an event's live fragments need read besides the event (see state.live_state):
# its node's row, its gate's row, the run's creation time, or the whole structure
# (the rows then already hold the change: the reducer is not applied).
LiveRead = Literal["node", "gate", "run", "structure"]


@dataclass(frozen=True)
class Wording:
    """One event in the timeline: an icon, a tone (its colour), who and what."""

    icon: str
    tone: str
    subject: str
    text: str


Namer = Callable[[str], str]  # a node id -> what people call the node
Reducer = Callable[["Working", EventData], None]
Describer = Callable[[EventData, Namer], Wording]
Fragments = Callable[[str, int, EventData, "Working", "Perms"], "list[Part]"]


def no_change(work: Working, event: EventData) -> None:
    """The reducer of an event that changes no state (only the seq)."""


def no_fragments(
    dag_id: str, seq: int, event: EventData, work: Working, perms: Perms
) -> list[Part]:
    """The fragments of an event that shows only in the timeline."""
    return []


@dataclass(frozen=True)
class EventKind:
    """Everything about one event type; its ``type`` is its struct's tag."""

    struct: type[EventPayload]  # its payload on the wire
    reduce: Reducer  # applies it to a DAG's state (history, live fragments)
    describe: Describer  # its timeline entry
    fragments: Fragments = no_fragments  # its live fragments, besides the timeline entry
    reads: frozenset[LiveRead] = frozenset()
    redraws: frozenset[Redraw] = frozenset()

    @property
    def name(self) -> str:
        return str(self.struct.__struct_config__.tag)


_kinds: dict[str, EventKind] = {}
# type -> payload struct: validating an engine's payload is one lookup.
STRUCTS: dict[str, type[EventPayload]] = {}


def register(kind: EventKind) -> EventKind:
    """Add an event type (after those registered already: the wire order)."""
    if kind.name in _kinds:
        raise ValueError(f"Event type {kind.name!r} is registered already.")
    _kinds[kind.name] = kind
    STRUCTS[kind.name] = kind.struct
    return kind


def unregister(name: str) -> None:
    """Remove an event type (tests that declare one of their own)."""
    del _kinds[name]
    del STRUCTS[name]


def kind_of(name: str) -> EventKind | None:
    """The event type called ``name``, or None if this process does not know it."""
    return _kinds.get(name)


def kinds() -> tuple[EventKind, ...]:
    """Every event type, in the order they were registered."""
    return tuple(_kinds.values())


def named_nodes(event: EventData) -> set[str]:
    """The nodes an event names (by ``node_id``, ``from``, ``to``, or in its mutation)."""
    mutation = event.get("mutation") or {}
    named = [event.get(key) for key in ("node_id", "from", "to")]
    named += [mutation.get(key) for key in ("node_id", "from", "to")]
    return {node_id for node_id in named if isinstance(node_id, str)}
