"""WebSocket consumers: ordered, exactly-once delivery of a DAG's events.

:class:`DagStreamConsumer` holds the delivery rules every stream shares; the
JSON protocol consumer sends event frames as they are, and the dashboard's
HTML consumer renders them into fragments.

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
import zlib
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, TypeVar
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from dagstream_app import broadcast, fanout, live, protocol, render, services, state, transport
from dagstream_app.auth import CREDENTIAL, current_user
from dagstream_app.conf import config
from dagstream_app.errors import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
    DagstreamError,
    ErrorCode,
)
from dagstream_app.permissions import allowed, authorize, dashboard_perms, visible_ids

log = logging.getLogger(__name__)
T = TypeVar("T")

# Layer messages a consumer may have queued; past it, it catches up from the log.
INBOX_LIMIT = 1_000
# A replay from the log is sent this many events at a time, yielding in between.
REPLAY_CHUNK = 500


class TokenBucket:
    """Per-connection budget: ``rate`` units a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self, cost: float = 1) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


def _query_int(query: dict[str, list[str]], key: str) -> int | None:
    values = query.get(key)
    if not values:
        return None
    try:
        number = int(values[0])
    except ValueError:
        return None
    return number if number >= 0 else None


class HubConsumer(AsyncWebsocketConsumer):
    """A consumer fed by its process's hub: one inbox instead of a channel of its own.

    Messages are dispatched without Channels' per-message
    ``aclose_old_connections`` thread hop: handlers reach the database only
    through ``database_sync_to_async``, which does that housekeeping itself.
    """

    group: str | None = None
    last_send = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        layer = get_channel_layer(self.channel_layer_alias)
        if layer is None:
            raise ImproperlyConfigured("dagstream needs CHANNEL_LAYERS to be configured.")
        self.channel_layer = layer
        self.hub = fanout.hub_for(layer)
        self.inbox = fanout.Inbox(INBOX_LIMIT)
        self.base_send = send
        self.frame_send = transport.frame_send(send)
        self.unsent = transport.unsent_bytes(send)
        self.write_frames = transport.wire_writer(send)
        self.last_send = time.monotonic()  # the keep-alive counts from the connect
        turn = asyncio.Lock()  # one handler at a time, as Channels runs them
        pumps = [
            asyncio.ensure_future(self._pump(receive, turn)),
            asyncio.ensure_future(self._pump(self._next_message, turn)),
        ]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for pump in done:
                error = pump.exception()
                if error is not None and not isinstance(error, StopConsumer):
                    raise error
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await self._leave()

    async def _pump(self, source: Any, turn: asyncio.Lock) -> None:
        # A loop per source rather than Channels' await_many_dispatch, which
        # makes a task and an asyncio.wait per message: per viewer, per event.
        while True:
            message = await source()
            async with turn:
                await self.dispatch(message)

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _next_message(self) -> dict[str, Any]:
        message = await self.inbox.get()
        return {"type": "dagstream.layer_error"} if message is None else message

    async def subscribe(
        self, group: str, dag_id: str | None = None, *, coalesce: bool = False
    ) -> None:
        self.group = group
        self.inbox.coalesce = coalesce
        await self.hub.join(group, self.inbox, dag_id=dag_id)

    async def _leave(self) -> None:
        group, self.group = self.group, None
        if group is not None:
            await self.hub.leave(group, self.inbox)

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        if text_data is not None and not close:  # the hot path, past every wrapper
            await self.send_frames(transport.Frames((text_data,)))
        elif not self.dropped:
            with self._quiet_if_gone():
                await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def send_frames(self, frames: transport.Frames) -> None:
        """Send each of ``frames``' texts as a frame: on daphne, as one write of ready bytes."""
        if self.dropped:
            return  # the socket is gone: what was still to send goes nowhere
        self.last_send = time.monotonic()
        with self._quiet_if_gone():
            if self.write_frames is not None:
                self.write_frames(frames)
            else:
                for text in frames.texts:
                    await self.frame_send({"type": "websocket.send", "text": text})
        if self.unsent is not None and self.unsent() > config().max_unsent_bytes:
            await self._drop_non_reader()

    @contextmanager
    def _quiet_if_gone(self) -> Iterator[None]:
        try:
            yield
        except transport.GONE:
            # The client left while we were sending: nothing to report, nothing to keep.
            self.dropped = True
            raise StopConsumer() from None

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await super().close(code, reason)
        self.dropped = True  # nothing is sent after a close

    unsent: Any = None  # () -> bytes the server holds for this socket, if it can tell
    dropped = False

    async def _drop_non_reader(self) -> None:
        """Too much waits for a client that does not read: let it come back later (4013)."""
        log.info("dagstream: closing a socket that does not read (%s)", self.scope.get("client"))
        self.unsent = None
        self.ready = False
        await self.close(CLOSE_TRY_AGAIN_LATER)
        transport.abort(self.base_send)  # the close frame would wait behind the rest

    async def disconnect(self, code: int) -> None:
        await self._leave()

    # ----------------------------------------------------- revalidation

    checked = 0.0  # when the credential was last read again

    def recheck_due(self) -> bool:
        """Has the credential's re-check time come since it was last read?

        Each credential has its own phase within ``REVALIDATE_SECONDS``: the
        sockets of one credential come due on the same tick (and share one read,
        see :meth:`DagStreamConsumer.still_viewer`), while those of many users who
        connected together are spread over the period instead of all read at once.
        """
        period = float(config().revalidate_seconds)
        phase = zlib.crc32(repr(self.credential()).encode()) / 2**32 * period
        return (time.monotonic() + phase) // period > (self.checked + phase) // period

    def credential(self) -> tuple[str, str, Any]:
        """What authenticated this socket, and as whom: sockets alike in it are re-read alike."""
        kind, key = self.scope.get(CREDENTIAL, ("user", ""))
        return kind, key, getattr(self.scope.get("user"), "pk", None)

    async def recheck(self) -> bool:
        """Read the user again; False (and the socket closed with 4001) if their
        credential has gone: a revoked token, an ended session, a deactivated user.
        """
        self.checked = time.monotonic()
        fresh = await fanout.read(current_user)(self.scope)
        if fresh is None:
            self.ready = False
            await self.close(CLOSE_UNAUTHENTICATED)
            return False
        self.user = fresh
        return True


class DagStreamConsumer(HubConsumer):
    """Authorizes a viewer and delivers every event of one DAG once, in order."""

    dag_id: str
    user: Any
    ready = False
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
        settings = config()
        self.bucket = TokenBucket(settings.rate_limit_per_second, settings.rate_limit_burst)
        # What replays and snapshots may cost this connection: a minute's worth.
        budget = settings.replay_budget_per_minute
        self.replays = TokenBucket(budget / 60, budget)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.batch = query.get("batch") == ["1"]
        self.coalesce = self.coalesce or self.batch
        # Accept, then close with a code: a close before accept reaches a
        # browser only as 1006, and the codes tell clients not to retry.
        await self.accept()
        code = await self._refusal()
        if code is not None:
            await self.close(code)
            return
        await self.subscribe(broadcast.group_name(self.dag_id), self.dag_id, coalesce=self.coalesce)
        self.ready = True
        await self.start_stream(_query_int(query, "last_seq"))

    async def _refusal(self) -> int | None:
        return await fanout.read(self._refusal_now)()

    def _refusal_now(self) -> int | None:
        try:
            authorize(self.user, "view", self.dag_id)
        except DagstreamError as exc:
            return exc.close_code
        return None

    async def disconnect(self, code: int) -> None:
        self.ready = False
        await self._leave()

    async def start_stream(self, last_seq: int | None, *, asked: bool = False) -> None:
        """Replay after ``last_seq`` when retained, else send a snapshot.

        Both are paid from the connection's replay budget
        (``REPLAY_BUDGET_PER_MINUTE`` events, a snapshot costing its nodes, edges
        and gates): a client that resumes over and over is refused with
        ``rate_limited`` instead of making the server stream to it alone. The
        first stream of a connection (``asked`` False) is always sent.
        """
        progress = await fanout.read(state.progress)(self.dag_id)
        if progress is None:
            await self._gone()
            return
        current, status = progress
        if last_seq is not None and await fanout.read(state.can_replay)(
            self.dag_id, last_seq, current
        ):
            if not self._afford(current - last_seq, asked):
                raise services.RateLimited("Too many replays; resume later.")
            self.last_sent = last_seq
            if await self._fill(current):
                self.terminal = status in protocol.TERMINAL_STATUSES
            return
        snap = await fanout.read(state.snapshot)(self.dag_id)
        if snap is None:
            await self._gone()
            return
        if not self._afford(1 + len(snap.nodes) + len(snap.edges) + len(snap.gates), asked):
            raise services.RateLimited("Too many snapshots; resume later.")
        self.last_sent = snap.last_seq
        self.terminal = snap.status in protocol.TERMINAL_STATUSES
        await self.send_snapshot(snap)

    def _afford(self, cost: int, asked: bool) -> bool:
        if self.replays.take(cost):
            return True
        if not asked:
            self.replays.tokens = 0.0  # the first stream is owed; it uses the budget up
        return not asked

    # ----------------------------------------------------------- delivery

    async def dagstream_events(self, message: dict[str, Any]) -> None:
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

    async def dagstream_progress(self, message: dict[str, Any]) -> None:
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

    async def dagstream_deleted(self, message: dict[str, Any]) -> None:
        """The run was deleted: say so with the terminal "unknown DAG" code."""
        if self.ready:
            await self._gone()

    async def dagstream_layer_error(self, message: dict[str, Any]) -> None:
        if self.ready:
            await self._catch_up()

    async def still_viewer(self, tick: dict[str, Any]) -> bool:
        """Read the user again: may they still watch? If not, the socket is closed.

        One read per credential per ``tick`` (the hub's message to every viewer of
        this DAG in the process): a user's many tabs cost one.
        """
        self.checked = time.monotonic()
        fresh, refusal, perms = await shared_result(
            tick, ("viewer", self.credential()), fanout.read(self._viewer_now)
        )
        if refusal is not None:
            self.ready = False
            await self.close(refusal)
            return False
        self.user = fresh
        self.on_recheck(perms)
        return True

    def _viewer_now(self) -> tuple[Any, int | None, render.Perms]:
        fresh = current_user(self.scope)
        if fresh is None:
            return None, CLOSE_UNAUTHENTICATED, NO_PERMS
        try:
            dag = authorize(fresh, "view", self.dag_id)
        except DagstreamError as exc:
            return fresh, exc.close_code, NO_PERMS
        return fresh, None, dashboard_perms(fresh, dag)

    def on_recheck(self, perms: render.Perms) -> None:
        """The user was read again, and may now do ``perms`` on the DAG."""

    async def _gone(self) -> None:
        self.ready = False
        await self.close(CLOSE_NOT_FOUND)

    async def _catch_up(self) -> None:
        progress = await fanout.read(state.progress)(self.dag_id)
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
        self, events: Sequence[tuple[int, str]], message: dict[str, Any] | None
    ) -> None:
        """Send ``events``; ``message``, if given, is held by every consumer of this
        process that sends exactly these events (the layer message they came in
        whole, or the hub's holder for a run read from the log): :func:`shared`
        keeps on it what they all send."""
        raise NotImplementedError

    async def send_keepalive(self) -> None:
        raise NotImplementedError


NO_PERMS: render.Perms = (False, False)


def _is_events(message: dict[str, Any]) -> bool:
    return bool(message["type"] == "dagstream.events")


def shared(message: dict[str, Any], key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, made once for ``message`` and kept on it for every consumer it reaches."""
    memo: dict[Hashable, Any] = message.setdefault("_shared", {})
    if key not in memo:
        memo[key] = make()
    return memo[key]  # type: ignore[no-any-return]


async def shared_result(
    message: dict[str, Any], key: Hashable, work: Callable[[], Awaitable[T]]
) -> T:
    """The result of ``work()``, run once for ``message`` however many consumers ask.

    Each asker waits behind a shield: one that leaves does not cancel it for the rest.
    """
    task = shared(message, key, lambda: asyncio.ensure_future(work()))
    return await asyncio.shield(task)


def _follows(message: dict[str, Any], last_sent: int) -> bool:
    """Are ``message``'s events the ones after ``last_sent``, consecutive?"""
    events = message["events"]
    return bool(
        events
        and events[0]["seq"] == last_sent + 1
        and shared(message, "consecutive", lambda: _consecutive(events))
    )


def _consecutive(events: list[dict[str, Any]]) -> bool:
    return all(b["seq"] == a["seq"] + 1 for a, b in pairwise(events))


def _pairs(message: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["seq"], e["frame"]) for e in message["events"]]


class DagJsonConsumer(DagStreamConsumer):
    """Protocol v1 over JSON text frames (``/ws/dags/<dag_id>/``)."""

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        await self.send(text_data=protocol.encode(protocol.Snapshot(dag=snap, seq=snap.last_seq)))

    async def send_events(
        self, events: Sequence[tuple[int, str]], message: dict[str, Any] | None
    ) -> None:
        if message is not None:
            kind = "batch" if self.batch else "plain"
            await self.send_frames(shared(message, kind, lambda: self._frames(events)))
        else:
            await self.send_frames(self._frames(events))

    def _frames(self, events: Sequence[tuple[int, str]]) -> transport.Frames:
        if not self.batch:
            return transport.Frames([frame for _, frame in events])
        limit = config().batch_max_events
        return transport.Frames(
            [
                _array([frame for _, frame in events[start : start + limit]])
                for start in range(0, len(events), limit)
            ]
        )

    async def send_keepalive(self) -> None:
        await self.send(text_data=_KEEPALIVE)

    async def reply(self, message: protocol.Ack | protocol.ErrorReply) -> None:
        await self.send(text_data=protocol.encode(message))

    async def reply_error(
        self,
        code: ErrorCode,
        message: str,
        command_id: Any = None,
        decision: dict[str, Any] | None = None,
    ) -> None:
        await self.reply(
            protocol.ErrorReply(code=code, message=message, id=command_id, decision=decision)
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.ready:
            return
        if not self.bucket.take():
            await self.reply_error("rate_limited", "Too many messages; slow down.")
            return
        if text_data is None:
            await self.reply_error(
                "invalid_message", "Binary frames are not accepted; send JSON text."
            )
            return
        limit = config().max_frame_bytes
        if len(text_data) > limit or len(text_data.encode()) > limit:
            await self.reply_error("too_large", f"Frames are limited to {limit} bytes.")
            return
        try:
            command = protocol.parse_command(text_data)
        except DagstreamError as exc:
            await self.reply_error(exc.code, exc.message, exc.command_id)
            return
        # Each command is authorized as the user is now, not as they connected.
        if not isinstance(command, protocol.Resume) and not await self.recheck():
            return
        try:
            await self.handle(command)
        except services.DagstreamError as exc:
            decision = exc.decision if isinstance(exc, services.Conflict) else None
            await self.reply_error(exc.code, exc.message, command.id, decision)
            return
        await self.reply(protocol.Ack(id=command.id))

    async def handle(self, command: protocol.ClientCommand) -> None:
        match command:
            case protocol.HumanDecision():
                await database_sync_to_async(services.decide_gate)(
                    self.dag_id,
                    command.node_id,
                    command.decision,
                    feedback=command.feedback,
                    actor=self.user,
                    command_id=command.id,
                )
            case (
                protocol.PauseExecution() | protocol.ResumeExecution() | protocol.CancelExecution()
            ):
                action = protocol.CONTROL_ACTIONS[command.__struct_config__.tag]  # type: ignore[index]
                await database_sync_to_async(services.control)(
                    self.dag_id, action, actor=self.user, command_id=command.id
                )
            case protocol.Resume():
                await self.start_stream(command.last_seq, asked=True)
            case _:  # pragma: no cover - parse_command admits only the types above
                raise services.InvalidDelta(f"Unhandled message {command!r}.")


_KEEPALIVE = protocol.encode(protocol.Keepalive())


def _array(frames: list[str]) -> str:
    return frames[0] if len(frames) == 1 else "[" + ",".join(frames) + "]"


class DagHtmlConsumer(DagStreamConsumer):
    """The dashboard's stream (``/ws/dags/<dag_id>/html/``): events as htmx OOB fragments.

    Each event is rendered once per process and permission variant (see
    :mod:`dagstream_app.live`); every message ends with the ``#ds-seq`` marker
    the page resumes from. Client frames are ignored: actions go by htmx POST.
    """

    perms: render.Perms | None = None
    coalesce = True

    def on_recheck(self, perms: render.Perms) -> None:
        self.perms = perms  # the buttons follow what the user may do now

    async def _ensure_perms(self) -> render.Perms:
        if self.perms is None:
            self.perms = await fanout.read(self._read_perms)()
        return self.perms

    def _read_perms(self) -> render.Perms:
        return dashboard_perms(self.user, state.dag(self.dag_id))

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        perms = await self._ensure_perms()
        html = await fanout.read(live.snapshot_message)(snap, perms)
        await self.send(text_data=html)

    async def send_events(
        self, events: Sequence[tuple[int, str]], message: dict[str, Any] | None
    ) -> None:
        if not events:
            return
        perms = await self._ensure_perms()
        if message is None:
            await self.send_frames(await self._render(events, perms))
            return
        # The first viewer of a permission variant renders; the others await its result.
        await self.send_frames(
            await shared_result(message, ("html", perms), lambda: self._render(events, perms))
        )

    async def _render(
        self, events: Sequence[tuple[int, str]], perms: render.Perms
    ) -> transport.Frames:
        html = live.cached_events_html(self.dag_id, events, perms)
        if html is None:
            html = await fanout.read(live.events_html)(self.dag_id, events, perms)
        return transport.Frames((html,))

    async def send_keepalive(self) -> None:
        await self.send(text_data=render.KEEPALIVE_HTML)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return


class DagIndexConsumer(HubConsumer):
    """Live rows of the run list (``/ws/dags/?ids=a,b``), throttled per connection.

    Rows of the DAGs named in ``ids`` (the ones on the page) are re-rendered at
    most every ``THROTTLE`` seconds; a new run elsewhere raises a notice instead.
    Only runs the user may view count: each flush asks the permission rule.
    Changes come from the layer and, for engines it does not reach, from the
    hub's database tick.
    """

    THROTTLE = 0.5
    ids: frozenset[str] = frozenset()
    ready = False
    new_count = 0
    flush_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()
        self.user = user = self.scope.get("user")
        self.checked = time.monotonic()
        if user is None or not user.is_authenticated:
            await self.close(CLOSE_UNAUTHENTICATED)
            return
        if not await fanout.read(allowed)(user, "view"):  # no DAG: no hook asked
            await self.close(CLOSE_FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        raw = query.get("ids", [""])[0]
        self.ids = frozenset(i for i in raw.split(",")[:200] if protocol.DAG_ID_RE.match(i))
        self.pending: dict[str, int] = {}
        self.new_runs: set[str] = set()
        self.seen_new: set[str] = set()
        self.rendered: dict[str, int] = {}  # the seq each row was last rendered at
        await self.subscribe(broadcast.INDEX_GROUP)
        self.ready = True

    async def disconnect(self, code: int) -> None:
        self.ready = False
        if self.flush_task is not None:
            self.flush_task.cancel()
        await self._leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def dagstream_dag_changed(self, message: dict[str, Any]) -> None:
        if not self.ready:
            return
        dag_id: str = message["dag_id"]
        if dag_id in self.ids:
            if message["seq"] <= self.rendered.get(dag_id, 0):
                return  # the tick's copy of a change already shown
            self.pending[dag_id] = max(message["seq"], self.pending.get(dag_id, 0))
        elif message["seq"] <= 1 and dag_id not in self.seen_new:
            self.new_runs.add(dag_id)
        else:
            return
        if self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush_rows())

    async def dagstream_dag_deleted(self, message: dict[str, Any]) -> None:
        dag_id: str = message["dag_id"]
        if self.ready and dag_id in self.ids:
            self.pending.pop(dag_id, None)
            await self.send(text_data=render.row_deleted_html(dag_id))

    async def dagstream_tick(self, message: dict[str, Any]) -> None:
        if not self.ready:
            return
        if self.recheck_due():
            if not await self.recheck():
                return
            if not await fanout.read(allowed)(self.user, "view"):
                self.ready = False
                await self.close(CLOSE_FORBIDDEN)
                return
        if time.monotonic() - self.last_send >= config().keepalive_seconds:
            await self.send(text_data=render.KEEPALIVE_HTML)

    async def dagstream_layer_error(self, message: dict[str, Any]) -> None:
        return  # the hub's tick brings what the layer lost

    async def _flush_rows(self) -> None:
        await asyncio.sleep(self.THROTTLE)  # the throttle window, not synchronisation
        self.flush_task = None
        pending, self.pending = self.pending, {}
        new, self.new_runs = self.new_runs, set()
        seen = await fanout.read(visible_ids)(self.user, {*pending, *new})
        counted = new & seen
        self.seen_new |= counted  # the layer and the tick both report a new run
        self.new_count += len(counted)
        rows = {dag_id: seq for dag_id, seq in pending.items() if dag_id in seen}
        self.rendered.update(rows)
        html = await fanout.read(live.index_message)(rows, self.new_count)
        if html and self.ready:
            await self.send(text_data=html)
