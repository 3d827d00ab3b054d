"""One subscription per process: each channel-layer group is joined once, its messages shared.

Every consumer of a DAG in a process used to hold its own channel in the DAG's
group, so a publish cost one copy per viewer in the layer (and in Redis), and a
mass disconnect meant as many ``group_discard`` calls. Instead a :class:`Hub`
(one per event loop and layer) joins each group once with one channel, and hands
each message — the same object — to the :class:`Inbox` of every local consumer.

Consumers that send what queued up as one message (``?batch=1`` clients,
dashboards) are fed through the hub's batch window: the events messages that
arrive within ``BATCH_WINDOW_SECONDS`` of the first are merged into one, and
every such consumer gets that same message. Each viewer level with the stream
then sends what all the others do, built and framed once for the process
(see :class:`~dagstream_app.transport.Frames`), instead of each waiting its own
window and joining its own array.

The hub also watches the database for its consumers, once per
``IDLE_CHECK_SECONDS`` for all of them (one query): each DAG consumer gets the
DAG's last seq (so a lost *last* message is still noticed, and a deleted run is
found), and run-list consumers get the runs that changed (so a list is live even
when the engine writes from a process the layer does not reach). Its channel's
group memberships are refreshed well within the layer's ``group_expiry``, so a
crashed process's channel drops out of every group soon.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeGuard, TypeVar

from django.utils import timezone

from dagstream_app import broadcast, state
from dagstream_app.conf import config
from dagstream_app.layer_messages import (
    DagChangedMessage,
    EventsMessage,
    HubMessage,
    LayerMessage,
    RunMessage,
)
from dagstream_app.read_pool import read

log = logging.getLogger(__name__)

__all__ = ["Hub", "Inbox", "hub_for"]

LOOK_BACK = timedelta(seconds=5)
RECENT_RUNS = 16  # runs of log frames whose shared sends a hub keeps (see shared_run)

M = TypeVar("M", bound=HubMessage)


class Inbox:
    """A consumer's queue of layer messages, bounded: past the bound it drops and says so.

    Dropping loses nothing: the consumer sees ``overflowed`` and fills what it
    missed from the event log (or, too far behind, closes with 4013).
    """

    def __init__(self, limit: int, *, coalesce: bool = False) -> None:
        self.limit = limit
        self.coalesce = coalesce  # fed events through the hub's batch window
        self.overflowed = False
        self._items: deque[HubMessage] = deque()
        self._ready = asyncio.Event()

    def put(self, message: HubMessage) -> None:
        if len(self._items) >= self.limit:
            self.overflowed = True
        else:
            self._items.append(message)
        self._ready.set()

    async def get(self) -> HubMessage | None:
        """The next message; None once after an overflow (catch up from the log)."""
        while not self._items and not self.overflowed:
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            self.overflowed = False
            self._items.clear()
            return None
        return self._items.popleft()

    def take_while(self, keep: Callable[[HubMessage], TypeGuard[M]]) -> list[M]:
        """The messages at the head that ``keep`` accepts, taken without waiting."""
        taken: list[M] = []
        while self._items:
            head = self._items[0]
            if not keep(head):
                break
            taken.append(head)
            self._items.popleft()
        return taken

    def __len__(self) -> int:
        return len(self._items)


class Hub:
    """Joins each group once for this process and fans its messages out to local inboxes."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[Inbox]] = {}
        self.dag_of: dict[str, str] = {}  # group -> the DAG it streams
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._down = False  # the layer is failing; logged once per outage
        self._refreshed = time.monotonic()
        self._list_seen: datetime | None = None
        # Recent frames per DAG read from the log: consumers that fall behind
        # together fill their gaps with one query, not one each.
        self.frames: dict[str, dict[int, str]] = {}
        self._filling: dict[str, asyncio.Lock] = {}
        self._runs: OrderedDict[tuple[str, int, int, str], RunMessage] = OrderedDict()
        # Events messages held for coalescing inboxes, per group, until the window ends.
        self._windows: dict[str, _Window] = {}

    # ------------------------------------------------------- membership

    async def join(self, group: str, inbox: Inbox, *, dag_id: str | None = None) -> None:
        """Deliver ``group``'s messages to ``inbox`` (and, for a DAG, its database ticks)."""
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
            if not self._tasks:
                self._tasks = [
                    asyncio.ensure_future(self._receive_loop()),
                    asyncio.ensure_future(self._watch_loop()),
                ]
            members = self.members.get(group)
            if group == broadcast.INDEX_GROUP and self._list_seen is None:
                self._list_seen = timezone.now()
            if members is None:
                members = self.members[group] = set()
                if dag_id is not None:
                    self.dag_of[group] = dag_id
                await self._add(group)
            members.add(inbox)

    async def leave(self, group: str, inbox: Inbox) -> None:
        async with self._lock:
            members = self.members.get(group)
            if members is None:
                return
            members.discard(inbox)
            if members:
                return
            del self.members[group]
            self._release(group)  # to no one: the timer goes
            dag_id = self.dag_of.pop(group, None)
            if dag_id is not None:
                self.frames.pop(dag_id, None)
                self._filling.pop(dag_id, None)
            if self.channel is not None:
                try:
                    await self.layer.group_discard(group, self.channel)
                except Exception:  # noqa: BLE001 - logged once per outage; the entry expires
                    self._failed("group_discard")
            if not self.members:
                for task in self._tasks:
                    task.cancel()
                self._tasks = []

    async def _add(self, group: str) -> None:
        assert self.channel is not None
        try:
            await self.layer.group_add(group, self.channel)
        except Exception:  # noqa: BLE001 - logged once; the tick delivers from the log
            self._failed("group_add")
        else:
            self._recovered()

    # ---------------------------------------------------------- delivery

    def _deliver(self, group: str, message: HubMessage) -> None:
        members = self.members.get(group, ())
        if message["type"] != "dagstream.events":
            self._release(group)  # what the window holds came first
            for inbox in members:
                inbox.put(message)
            return
        coalescing = False
        for inbox in members:
            if inbox.coalesce:
                coalescing = True
            else:
                inbox.put(message)
        if coalescing:
            self._hold(group, message)

    def _hold(self, group: str, message: EventsMessage) -> None:
        window = self._windows.get(group)
        if window is None:
            closes = asyncio.get_running_loop().call_later(
                config().batch_window_seconds, self._release, group
            )
            window = self._windows[group] = _Window(closes)
        window.held.append(message)
        window.events += len(message["events"])
        if window.events >= config().batch_max_events:
            self._release(group)  # a full frame's worth: no reason to wait

    def _release(self, group: str) -> None:
        """Hand what the window holds for ``group`` to its coalescing inboxes, as one message."""
        window = self._windows.pop(group, None)
        if window is None:
            return
        window.closes.cancel()
        held = window.held
        merged = held[0]
        if len(held) > 1:
            events = [event for message in held for event in message["events"]]
            merged = {"type": "dagstream.events", "group": group, "events": events}
        for inbox in self.members.get(group, ()):
            if inbox.coalesce:
                inbox.put(merged)

    def _deliver_all(self, message: HubMessage) -> None:
        for group in self.members:
            self._deliver(group, message)

    async def _receive_loop(self) -> None:
        assert self.channel is not None
        pause = config().idle_check_seconds
        while True:
            try:
                message: LayerMessage = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged once; rejoin, fill from the log
                self._failed("receive")
                self._deliver_all({"type": "dagstream.layer_error"})
                await asyncio.sleep(pause)  # pace retries while the layer is down
                for joined in list(self.members):
                    await self._add(joined)
                continue
            self._recovered()
            target = message.get("group")
            if isinstance(target, str):
                if message["type"] == "dagstream.deleted" and target in self.dag_of:
                    # The frames read from the log are of a run that is gone. (Only those
                    # are kept: a layer message may come from another deployment sharing
                    # the Redis, see consumers.stream.)
                    self.frames.pop(self.dag_of[target], None)
                self._deliver(target, message)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(config().idle_check_seconds)  # the tick itself
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be down: consumers wait, the next tick retries
                log.warning("dagstream: watching the database failed", exc_info=True)

    async def _watch(self) -> None:
        dags = {group: dag_id for group, dag_id in self.dag_of.items() if group in self.members}
        lists = broadcast.INDEX_GROUP in self.members
        # A transaction stamps its rows before it commits: look back a little.
        since = None if self._list_seen is None else self._list_seen - LOOK_BACK
        now = timezone.now()
        progress, changed = await read(_read)(set(dags.values()), since if lists else None)
        # The tick's own copies of "changed" are harmless: a list re-renders rows
        # at most once per throttle window and counts a new run once.
        for group, dag_id in dags.items():
            found = progress.get(dag_id)
            known = self.frames.get(dag_id)
            if found is None or (known and max(known) > found[0]):
                self.frames.pop(dag_id, None)  # deleted (perhaps created again since)
            if found is None:
                self._deliver(group, {"type": "dagstream.deleted"})
            else:
                seq, status = found
                self._deliver(group, {"type": "dagstream.progress", "seq": seq, "status": status})
        if lists:
            self._list_seen = now
            self._deliver(broadcast.INDEX_GROUP, {"type": "dagstream.tick"})
            for dag_id, seq, new in changed:
                changed_row: DagChangedMessage = {
                    "type": "dagstream.dag_changed",
                    "dag_id": dag_id,
                    "seq": 1 if new else seq,
                }
                self._deliver(broadcast.INDEX_GROUP, changed_row)
        await self._refresh()

    # ------------------------------------------------------------- frames

    @staticmethod
    def _trim(known: dict[int, str]) -> None:
        keep = config().max_lag
        if len(known) > 2 * keep:
            newest = max(known)
            for seq in [s for s in known if s <= newest - keep]:
                del known[seq]

    async def frames_between(self, dag_id: str, after: int, upto: int) -> list[tuple[int, str]]:
        """(seq, frame) of the events after ``after`` up to ``upto``: from memory, or the log."""
        lock = self._filling.setdefault(dag_id, asyncio.Lock())
        async with lock:  # the first filler reads; the others find its rows
            known = self.frames.setdefault(dag_id, {})
            if any(seq not in known for seq in range(after + 1, upto + 1)):
                rows = await read(state.event_frames)(dag_id, after, upto)
                known.update(rows)
                self._trim(known)
            return [(seq, known[seq]) for seq in range(after + 1, upto + 1) if seq in known]

    def shared_run(self, dag_id: str, frames: list[tuple[int, str]]) -> RunMessage:
        """A holder for what consumers sending this run of ``frames`` from the log all send.

        Viewers that fell behind together fill the same runs: like the messages
        of the live stream, each run is then built and framed once, not per viewer.
        """
        # The last frame (with its timestamp) tells apart a DAG deleted and created again.
        key = (dag_id, frames[0][0], frames[-1][0], frames[-1][1])
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = {"type": "dagstream.run"}
            if len(self._runs) > RECENT_RUNS:
                self._runs.popitem(last=False)
        return run

    async def _refresh(self) -> None:
        # Memberships expire (channels-redis: group_expiry); live ones are renewed.
        expiry = float(getattr(self.layer, "group_expiry", 86_400))
        if time.monotonic() - self._refreshed < min(expiry / 3, 300.0):
            return
        self._refreshed = time.monotonic()
        for group in list(self.members):
            await self._add(group)

    # ------------------------------------------------------------ outages

    def _failed(self, what: str) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "dagstream: the channel layer failed (%s); delivering from the database "
                "until it is back",
                what,
                exc_info=True,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("dagstream: the channel layer is back")


@dataclass
class _Window:
    """A group's open batch window: what it holds, and the timer that closes it."""

    closes: asyncio.TimerHandle
    held: list[EventsMessage] = field(default_factory=list)
    events: int = 0  # in ``held``, against BATCH_MAX_EVENTS


def _read(
    dag_ids: set[str], since: datetime | None
) -> tuple[dict[str, tuple[int, str]], list[tuple[str, int, bool]]]:
    progress = state.progress_many(dag_ids) if dag_ids else {}
    changed = state.changed_since(since) if since is not None else []
    return progress, changed


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Hub]] = (
    weakref.WeakKeyDictionary()
)


def hub_for(layer: Any) -> Hub:
    """The hub of this event loop for ``layer``."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = hubs.get(id(layer))
    if hub is None or hub.layer is not layer:
        hub = hubs[id(layer)] = Hub(layer)
    return hub
