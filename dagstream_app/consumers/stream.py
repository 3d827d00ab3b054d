"""The stream of one DAG to a viewer: every event once, in order, from wherever it comes.

:class:`DagStreamConsumer` holds the delivery rules every stream shares; the
JSON protocol consumer (:mod:`.json_stream`) sends event frames as they are, and
the dashboard's HTML consumer (:mod:`.html_stream`) renders them into fragments.

Delivery: the consumer subscribes to the DAG's group (through its process's
:mod:`~dagstream_app.fanout` hub) *before* it reads the snapshot or replay from
the database, then tracks ``last_sent``. A layer message with an old seq is
dropped; one past a gap first fills the gap from the ``Event`` table. The hub's
database tick says the DAG's last seq each ``IDLE_CHECK_SECONDS``, so a lost
last event is noticed too; layer outages end no socket. The database is the
truth; the channel layer only says "look now".

``?batch=1`` JSON clients and dashboards get events through the hub's batch
window and send what came in it together: the clients one array frame,
dashboards one message whose node fragments are conflated (see
:mod:`dagstream_app.live`); one that fell behind sends its whole backlog so.
Every consumer level with the stream sends the same message as the others of
its kind: it is built and framed for the wire once per process (``shared``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, TypeGuard
from urllib.parse import parse_qs

from dagstream_app import broadcast, protocol, render, state
from dagstream_app.auth import ANONYMOUS_BECAUSE, NOT_SIGNED_IN, SIGNED_OUT, current_user
from dagstream_app.conf import config
from dagstream_app.consumers.base import HubConsumer, shared, shared_result
from dagstream_app.consumers.limits import replay_budget
from dagstream_app.errors import (
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
    DagstreamError,
    RateLimited,
    Unauthenticated,
)
from dagstream_app.layer_messages import (
    DeletedMessage,
    EventsMessage,
    HubMessage,
    LayerErrorMessage,
    ProgressMessage,
    PublishedEvent,
    RunMessage,
)
from dagstream_app.permissions import authorize, dashboard_perms
from dagstream_app.read_pool import read

__all__ = ["REPLAY_CHUNK", "DagStreamConsumer"]

log = logging.getLogger(__name__)

# A replay from the log is sent this many events at a time, yielding in between.
REPLAY_CHUNK = 500


def _query_int(query: dict[str, list[str]], key: str) -> int | None:
    values = query.get(key)
    if not values:
        return None
    try:
        number = int(values[0])
    except ValueError:
        return None
    return number if number >= 0 else None


class DagStreamConsumer(HubConsumer):
    """Authorizes a viewer and delivers every event of one DAG once, in order."""

    dag_id: str
    user: Any
    last_sent = 0
    terminal = False
    batch = False
    # Set by subclasses that send what queued up as one message.
    coalesce = False
    behind = 0  # the seq the last tick said the DAG was at, when this was behind it

    # ------------------------------------------------------------ connect

    async def connect(self) -> None:
        self.dag_id = self.scope["url_route"]["kwargs"]["dag_id"]
        self.user = self.scope.get("user")
        self.checked = time.monotonic()
        # What replays and snapshots may cost: shared by the credential's sockets.
        self.replays = replay_budget(self.credential())
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.batch = query.get("batch") == ["1"]
        self.coalesce = self.coalesce or self.batch
        # Accept, then close with a code: a close before accept reaches a
        # browser only as 1006, and the codes tell clients not to retry.
        await self.accept()
        refusal = await self._refusal()
        if refusal is not None:
            await self.close(*refusal)
            return
        await self.subscribe(broadcast.group_name(self.dag_id), self.dag_id, coalesce=self.coalesce)
        self.ready = True
        await self.start_stream(_query_int(query, "last_seq"))

    async def _refusal(self) -> tuple[int, str] | None:
        return await read(self._refusal_now)()

    def _refusal_now(self) -> tuple[int, str] | None:
        """The close code and reason refusing this socket, or None to let it in."""
        try:
            authorize(self.user, "view", self.dag_id)
        except DagstreamError as exc:
            assert exc.close_code is not None  # authorize's refusals end sockets
            why = self.scope.get(ANONYMOUS_BECAUSE, NOT_SIGNED_IN)
            return exc.close_code, str(why if isinstance(exc, Unauthenticated) else exc.message)
        return None

    async def disconnect(self, code: int) -> None:
        self.ready = False
        await self._leave()

    async def start_stream(self, last_seq: int | None, *, asked: bool = False) -> None:
        """Replay after ``last_seq`` when retained, else send a snapshot.

        Both are paid from the credential's replay budget
        (``REPLAY_BUDGET_PER_MINUTE`` events, a snapshot costing its nodes, edges
        and gates, see :func:`~.limits.replay_budget`): a client that resumes over
        and over is refused with ``rate_limited`` instead of making the server
        stream to it alone. The first stream of a connection (``asked`` False) is
        sent even if it costs more than is left, unless the budget is already
        spent: then the socket is closed with 4013 (try again later), before
        anything is read, so that reconnecting gets no more than resuming does.
        """
        if self.replays.spent():
            if asked:
                raise RateLimited("Too many replays; resume later.")
            self.ready = False
            await self.close(CLOSE_TRY_AGAIN_LATER)
            return
        progress = await read(state.progress)(self.dag_id)
        if progress is None:
            await self._gone()
            return
        current, status = progress
        if last_seq is not None and await read(state.can_replay)(self.dag_id, last_seq, current):
            if not self._afford(current - last_seq, asked):
                raise RateLimited("Too many replays; resume later.")
            self.last_sent = last_seq
            if await self._fill(current):
                self.terminal = status in protocol.TERMINAL_STATUSES
            return
        snap = await read(state.snapshot)(self.dag_id)
        if snap is None:
            await self._gone()
            return
        if not self._afford(1 + len(snap.nodes) + len(snap.edges) + len(snap.gates), asked):
            raise RateLimited("Too many snapshots; resume later.")
        self.last_sent = snap.last_seq
        self.terminal = snap.status in protocol.TERMINAL_STATUSES
        await self.send_snapshot(snap)

    def _afford(self, cost: int, asked: bool) -> bool:
        if self.replays.take(cost):
            return True
        if not asked:
            self.replays.charge(cost)  # the first stream is owed: what it lacks is a debt
        return not asked

    # ----------------------------------------------------------- delivery

    async def dagstream_events(self, message: EventsMessage) -> None:
        """Committed events, consecutive by seq: drop what was sent, fill any gap first."""
        if not self.ready:
            return
        if not (self.coalesce and len(self.inbox)) and _follows(message, self.last_sent):
            # Level with the stream, like most viewers in a storm: send what they all do.
            last = message["events"][-1]
            self.last_sent, self.terminal = last["seq"], last["terminal"]
            await self.send_events(shared(message, "pairs", lambda: _pairs(message)), message)
            return
        messages = [message]
        if self.coalesce:  # behind: what queued up goes in one message
            messages += self.inbox.take_while(_is_events)
        events = [e for m in messages for e in m["events"]]
        fresh = [e for e in events if e["seq"] > self.last_sent]
        if not fresh:
            return
        if fresh[0]["seq"] > self.last_sent + 1:
            if not await self._fill(fresh[0]["seq"] - 1):
                return
            if self.last_sent != fresh[0]["seq"] - 1:
                # The log cannot fill the gap: not an event of this database (a
                # Redis shared without distinct prefixes). The next tick resyncs.
                log.warning("dagstream: ignoring events of %s the log lacks", self.dag_id)
                return
            fresh = [e for e in fresh if e["seq"] > self.last_sent]
        if [e["seq"] for e in fresh] != list(range(self.last_sent + 1, fresh[-1]["seq"] + 1)):
            await self._fill(fresh[-1]["seq"])  # out of order or with holes: the log decides
            return
        self.last_sent = fresh[-1]["seq"]
        self.terminal = fresh[-1]["terminal"]
        await self.send_events([(e["seq"], e["frame"]) for e in fresh], None)

    async def dagstream_progress(self, message: ProgressMessage) -> None:
        """The hub's database tick: the DAG's last seq; time for a keep-alive and a re-check."""
        if not self.ready or (self.recheck_due() and not await self.still_viewer(message)):
            return
        behind, self.behind = self.behind, 0
        if message["seq"] > self.last_sent:
            # The layer gets a tick to bring it (a busy layer lags), and while
            # messages wait in the inbox it is still bringing them; after that
            # the events were lost, and the log has them.
            if behind > self.last_sent and not len(self.inbox):
                if await self._fill(message["seq"]):
                    self.terminal = message["status"] in protocol.TERMINAL_STATUSES
            else:
                self.behind = message["seq"]
        elif message["seq"] == self.last_sent:
            self.terminal = message["status"] in protocol.TERMINAL_STATUSES
        if self.ready and time.monotonic() - self.last_send >= config().keepalive_seconds:
            await self.send_keepalive()

    async def dagstream_deleted(self, message: DeletedMessage) -> None:
        """The run was deleted: say so with the terminal "unknown DAG" code."""
        if self.ready:
            await self._gone()

    async def dagstream_layer_error(self, message: LayerErrorMessage) -> None:
        if self.ready:
            await self._catch_up()

    async def still_viewer(self, tick: ProgressMessage) -> bool:
        """On the hub's tick: may the user still watch? If not, the socket is closed.

        One read per credential per ``tick`` (the hub's message to every viewer of
        this DAG in the process): a user's many tabs cost one.
        """
        self.checked = time.monotonic()
        found = await shared_result(tick, ("viewer", self.credential()), read(self._viewer_now))
        return await self._still(*found)

    async def still_allowed(self) -> bool:
        """Before a client's command: may the user, as they are now, still watch?

        Its own read, and it leaves the tick's re-check timer alone: a client that
        keeps talking is re-checked on the ticks all the same.
        """
        return await self._still(*await read(self._viewer_now)())

    async def _still(
        self, fresh: Any, refusal: tuple[int, str] | None, perms: render.Perms
    ) -> bool:
        if refusal is not None:
            self.ready = False
            await self.close(*refusal)
            return False
        self.user = fresh
        self.on_recheck(perms)
        return True

    def _viewer_now(self) -> tuple[Any, tuple[int, str] | None, render.Perms]:
        fresh = current_user(self.scope)
        if fresh is None:
            return None, (CLOSE_UNAUTHENTICATED, str(SIGNED_OUT)), NO_PERMS
        try:
            dag = authorize(fresh, "view", self.dag_id)
        except DagstreamError as exc:
            assert exc.close_code is not None  # authorize's refusals end sockets
            return fresh, (exc.close_code, exc.message), NO_PERMS
        return fresh, None, dashboard_perms(fresh, dag)

    def on_recheck(self, perms: render.Perms) -> None:
        """The user was read again, and may now do ``perms`` on the DAG."""

    async def _gone(self) -> None:
        self.ready = False
        await self.close(CLOSE_NOT_FOUND)

    async def _catch_up(self) -> None:
        progress = await read(state.progress)(self.dag_id)
        if progress is None:  # deleted, and its message was lost
            await self._gone()
            return
        current, status = progress
        if current <= self.last_sent or await self._fill(current):
            self.terminal = status in protocol.TERMINAL_STATUSES

    async def _fill(self, upto: int) -> bool:
        """Send the events after ``last_sent`` up to ``upto`` from the database."""
        if upto - self.last_sent > config().max_lag:
            # Too far behind to catch up by replay: let the client resume.
            self.ready = False
            await self.close(CLOSE_TRY_AGAIN_LATER)
            return False
        frames = await self.hub.frames_between(self.dag_id, self.last_sent, upto)
        for start in range(0, len(frames), REPLAY_CHUNK):
            if start:
                await asyncio.sleep(0)  # a long replay yields to the other consumers
            chunk = frames[start : start + REPLAY_CHUNK]
            self.last_sent = chunk[-1][0]
            await self.send_events(chunk, self.hub.shared_run(self.dag_id, chunk))
            if not self.ready:
                return False
        return True

    # Overridden by consumers that render events differently.

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        raise NotImplementedError

    async def send_events(
        self, events: Sequence[tuple[int, str]], message: EventsMessage | RunMessage | None
    ) -> None:
        """Send ``events``; ``message``, if given, is held by every consumer of this
        process that sends exactly these events (the layer message they came in
        whole, or the hub's holder for a run read from the log): :func:`shared`
        keeps on it what they all send."""
        raise NotImplementedError

    async def send_keepalive(self) -> None:
        raise NotImplementedError


NO_PERMS: render.Perms = (False, False)


def _is_events(message: HubMessage) -> TypeGuard[EventsMessage]:
    return message["type"] == "dagstream.events"


def _follows(message: EventsMessage, last_sent: int) -> bool:
    """Are ``message``'s events the ones after ``last_sent``, consecutive?"""
    events = message["events"]
    return bool(
        events
        and events[0]["seq"] == last_sent + 1
        and shared(message, "consecutive", lambda: _consecutive(events))
    )


def _consecutive(events: Sequence[PublishedEvent]) -> bool:
    return all(b["seq"] == a["seq"] + 1 for a, b in pairwise(events))


def _pairs(message: EventsMessage) -> list[tuple[int, str]]:
    return [(e["seq"], e["frame"]) for e in message["events"]]
