"""The channel-layer messages, declared once: their shapes, who builds and who reads each.

Processes talk through the channel layer in dicts (what the layer serializes), so
each message is a :class:`~typing.TypedDict`: the type checker holds every builder
and reader to its shape, and the hot path builds and reads plain dicts as before.
The ``type`` of each is a literal, also naming the consumer method that handles it
(``dagstream.events`` -> ``dagstream_events``): a misspelt type is a type error.

Published by :mod:`~dagstream_app.broadcast` after a commit, heard by each
process's :class:`~dagstream_app.fanout.Hub`:

* :class:`EventsMessage` to the DAG's group: committed events, consecutive by seq.
* :class:`DeletedMessage` to the DAG's group, :class:`DagDeletedMessage` and
  :class:`DagChangedMessage` to the run list's group.
* :class:`WakeMessage` to the DAG's control group: its engine reads the database.

Made by the hub for its own consumers (never on the layer): the database tick's
:class:`ProgressMessage`, :class:`DeletedMessage`, :class:`TickMessage` and
:class:`DagChangedMessage`, :class:`LayerErrorMessage` when the layer fails, and the
:class:`RunMessage` that holds what viewers filling the same run from the log share.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "DagChangedMessage",
    "DagDeletedMessage",
    "DeletedMessage",
    "EventsMessage",
    "HubMessage",
    "LayerErrorMessage",
    "LayerMessage",
    "ProgressMessage",
    "PublishedEvent",
    "RunMessage",
    "Shareable",
    "TickMessage",
    "WakeMessage",
]


class PublishedEvent(TypedDict):
    """One committed event as published: its seq and type, its frame ready for the
    wire, and whether it ends the run."""

    seq: int
    event: str
    frame: str
    terminal: bool


class Shareable(TypedDict, total=False):
    """A message every consumer of a process gets as the same object: what they all
    send for it is built once and kept here (see ``consumers.shared``)."""

    _shared: dict[Hashable, Any]


class EventsMessage(Shareable):
    """``dagstream.events``: committed events of one DAG, consecutive by seq."""

    type: Literal["dagstream.events"]
    group: str
    events: Sequence[PublishedEvent]


class DeletedMessage(TypedDict):
    """``dagstream.deleted``: the DAG is gone (from the layer, or found by the tick)."""

    type: Literal["dagstream.deleted"]
    group: NotRequired[str]


class DagChangedMessage(TypedDict):
    """``dagstream.dag_changed``: for run lists, ``dag_id`` is at ``seq`` (1: a new run)."""

    type: Literal["dagstream.dag_changed"]
    group: NotRequired[str]
    dag_id: str
    seq: int


class DagDeletedMessage(TypedDict):
    """``dagstream.dag_deleted``: for run lists, ``dag_id`` was deleted."""

    type: Literal["dagstream.dag_deleted"]
    group: str
    dag_id: str


class WakeMessage(TypedDict):
    """``dagstream.wake``: to a DAG's engine, "read the database": a person acted."""

    type: Literal["dagstream.wake"]
    seq: int


class ProgressMessage(Shareable):
    """``dagstream.progress``: the hub's database tick, the DAG's last seq and status.

    Its viewers' re-checks of their credential share one read each (``_shared``)."""

    type: Literal["dagstream.progress"]
    seq: int
    status: str


class TickMessage(TypedDict):
    """``dagstream.tick``: the hub's database tick to run lists."""

    type: Literal["dagstream.tick"]


class LayerErrorMessage(TypedDict):
    """``dagstream.layer_error``: messages may have been lost; catch up from the log."""

    type: Literal["dagstream.layer_error"]


class RunMessage(Shareable):
    """``dagstream.run``: the holder of what viewers filling one run of events from the
    log all send (see ``Hub.shared_run``); never dispatched."""

    type: Literal["dagstream.run"]


# What a process's hub hears on its channel.
LayerMessage = EventsMessage | DeletedMessage | DagChangedMessage | DagDeletedMessage
# What a consumer's inbox holds: the layer's messages and the hub's own.
HubMessage = LayerMessage | ProgressMessage | TickMessage | LayerErrorMessage
