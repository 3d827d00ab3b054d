"""Channel-layer group names, and publishing committed events to them.

Delivery is best effort: events are in the database before they are published,
and every reader fills gaps from there. A layer failure is logged, never raised.
The messages are declared in :mod:`~dagstream_app.layer_messages`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from dagstream_app.layer_messages import (
    DagChangedMessage,
    DagDeletedMessage,
    DeletedMessage,
    EventsMessage,
    PublishedEvent,
    WakeMessage,
)

log = logging.getLogger(__name__)

__all__ = [
    "INDEX_GROUP",
    "control_group_name",
    "group_name",
    "presence_group_name",
    "publish",
    "publish_async",
    "publish_deleted",
]

# Run-list pages listen here for "this DAG changed".
INDEX_GROUP = "dagstream.index"


def _group(dag_id: str, suffix: str = "") -> str:
    # Channels group names must stay under 100 characters; long ids are hashed.
    name = f"dagstream.{dag_id}{suffix}"
    if len(name) < 100:
        return name
    return f"dagstream.h{hashlib.sha256(dag_id.encode()).hexdigest()[:40]}{suffix}"


def group_name(dag_id: str) -> str:
    """Channel-layer group that receives every event of ``dag_id``."""
    return _group(dag_id)


def control_group_name(dag_id: str) -> str:
    """Channel-layer group the engine of ``dag_id`` listens on for decisions and commands."""
    return _group(dag_id, ".control")


def presence_group_name(dag_id: str) -> str:
    """Channel-layer group of the run's open pages, saying who is there (consumers.presence)."""
    return _group(dag_id, ".presence")


def publish(dag_id: str, events: Sequence[PublishedEvent], *, wake_engine: bool) -> None:
    """:func:`publish_async` for synchronous callers (it runs on a fresh event loop)."""
    if events and get_channel_layer() is not None:
        async_to_sync(publish_async)(dag_id, events, wake_engine=wake_engine)


async def publish_async(
    dag_id: str, events: Sequence[PublishedEvent], *, wake_engine: bool
) -> None:
    """Send committed events, consecutive by seq, to the DAG's group in one message.

    Also wakes the DAG's engine when asked, and tells list pages the DAG changed.
    """
    layer = get_channel_layer()
    if layer is None or not events:
        return
    try:
        await _publish(layer, dag_id, events, wake_engine)
    except Exception:
        log.warning("dagstream: publishing events of %s failed", dag_id, exc_info=True)


async def _publish(
    layer: Any, dag_id: str, events: Sequence[PublishedEvent], wake_engine: bool
) -> None:
    # One layer message per flush, not per event: each group_send costs round
    # trips to Redis, and consumers then send the run as one batch.
    # Each message names its group: a process's hub hears many on one channel.
    group = group_name(dag_id)
    published: EventsMessage = {"type": "dagstream.events", "group": group, "events": events}
    await layer.group_send(group, published)
    last = events[-1]["seq"]
    if wake_engine:
        wake: WakeMessage = {"type": "dagstream.wake", "seq": last}
        await layer.group_send(control_group_name(dag_id), wake)
    changed: DagChangedMessage = {
        "type": "dagstream.dag_changed",
        "group": INDEX_GROUP,
        "dag_id": dag_id,
        "seq": last,
    }
    await layer.group_send(INDEX_GROUP, changed)


def publish_deleted(dag_id: str) -> None:
    """Tell viewers and list pages that ``dag_id`` was deleted (after its rows are gone)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_publish_deleted)(layer, dag_id)
    except Exception:
        log.warning("dagstream: publishing the deletion of %s failed", dag_id, exc_info=True)


async def _publish_deleted(layer: Any, dag_id: str) -> None:
    group = group_name(dag_id)
    deleted: DeletedMessage = {"type": "dagstream.deleted", "group": group}
    await layer.group_send(group, deleted)
    row_deleted: DagDeletedMessage = {
        "type": "dagstream.dag_deleted",
        "group": INDEX_GROUP,
        "dag_id": dag_id,
    }
    await layer.group_send(INDEX_GROUP, row_deleted)
