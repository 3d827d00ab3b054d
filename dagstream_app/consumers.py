"""WebSocket consumers: ordered, exactly-once delivery of a DAG's events.

:class:`DagStreamConsumer` holds the delivery rules every stream shares; the
JSON protocol consumer sends event frames as they are, and the dashboard's
HTML consumer renders them into fragments.

Delivery: the consumer joins the DAG's group *before* it reads the snapshot or
replay from the database, then tracks ``last_sent``. A layer message with an
old seq is dropped; one past a gap first fills the gap from the ``Event``
table. When idle it re-checks the DAG's last seq now and then, so a lost last
event is noticed too. Layer errors are caught: it rejoins and fills from the
database. The database is the truth; the channel layer only says "look now".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.core.exceptions import ImproperlyConfigured

from dagstream_app import broadcast, live, protocol, render, services, state
from dagstream_app.conf import get_config
from dagstream_app.permissions import Refused, allowed, authorize, visible_ids
from dagstream_app.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
)

log = logging.getLogger(__name__)

# Viewers of a finished run re-check it every this many idle intervals (deletion).
TERMINAL_CHECK_EVERY = 10
_CLOSE_FOR = {
    "unauthenticated": CLOSE_UNAUTHENTICATED,
    "forbidden": CLOSE_FORBIDDEN,
    "not_found": CLOSE_NOT_FOUND,
}


class TokenBucket:
    """Per-connection rate limit: ``rate`` frames a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
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


class DagStreamConsumer(AsyncWebsocketConsumer):
    """Authorizes a viewer and delivers every event of one DAG once, in order."""

    dag_id: str
    user: Any
    ready = False
    last_sent = 0
    terminal = False
    idle_ticks = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receive_task: asyncio.Future[Any] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._pending: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' own loop lets a layer error end the consumer; this one
        # survives it (see _next_layer_message).
        self.scope = scope
        layer = get_channel_layer(self.channel_layer_alias)
        if layer is None:
            raise ImproperlyConfigured("dagstream needs CHANNEL_LAYERS to be configured.")
        self.channel_layer = layer
        self.channel_name = await layer.new_channel()
        self.base_send = send
        try:
            await await_many_dispatch([receive, self._next_layer_message], self.dispatch)
        except StopConsumer:
            pass
        finally:
            if self._receive_task is not None:
                self._receive_task.cancel()
            if self._flush_task is not None:
                self._flush_task.cancel()

    async def _next_layer_message(self) -> dict[str, Any]:
        if self._receive_task is None:
            self._receive_task = asyncio.ensure_future(
                self.channel_layer.receive(self.channel_name)
            )
        interval = get_config()["IDLE_CHECK_SECONDS"]
        done, _ = await asyncio.wait({self._receive_task}, timeout=interval)
        if not done:
            return {"type": "dagstream.idle"}
        task, self._receive_task = self._receive_task, None
        try:
            message: dict[str, Any] = task.result()
        except Exception:  # a layer outage must not end the socket
            log.warning("dagstream: channel layer receive failed", exc_info=True)
            await asyncio.sleep(interval)  # pace retries while the layer is down
            return {"type": "dagstream.layer_error"}
        return message

    # ------------------------------------------------------------ connect

    async def connect(self) -> None:
        self.dag_id = self.scope["url_route"]["kwargs"]["dag_id"]
        self.user = self.scope.get("user")
        config = get_config()
        self.bucket = TokenBucket(config["RATE_LIMIT_PER_SECOND"], config["RATE_LIMIT_BURST"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.batch = query.get("batch") == ["1"]
        # Accept, then close with a code: a close before accept reaches a
        # browser only as 1006, and the codes tell clients not to retry.
        await self.accept()
        code = await self._refusal()
        if code is not None:
            await self.close(code)
            return
        await self.channel_layer.group_add(broadcast.group_name(self.dag_id), self.channel_name)
        self.ready = True
        await self.start_stream(_query_int(query, "last_seq"))

    @database_sync_to_async
    def _refusal(self) -> int | None:
        try:
            authorize(self.user, "view", self.dag_id)
        except Refused as exc:
            return _CLOSE_FOR[exc.reason]
        return None

    async def disconnect(self, code: int) -> None:
        if self.ready:
            self.ready = False
            try:
                await self.channel_layer.group_discard(
                    broadcast.group_name(self.dag_id), self.channel_name
                )
            except Exception:  # the layer may be down; the group entry expires
                log.warning("dagstream: group_discard failed", exc_info=True)

    async def start_stream(self, last_seq: int | None) -> None:
        """Replay after ``last_seq`` when retained, else send a snapshot."""
        progress = await database_sync_to_async(state.progress)(self.dag_id)
        if progress is None:
            await self.close(CLOSE_NOT_FOUND)
            return
        current, status = progress
        if last_seq is not None and await database_sync_to_async(state.can_replay)(
            self.dag_id, last_seq, current
        ):
            self.last_sent = last_seq
            if await self._fill(current):
                self.terminal = status in protocol.TERMINAL_STATUSES
            return
        snap = await database_sync_to_async(state.snapshot)(self.dag_id)
        if snap is None:
            await self.close(CLOSE_NOT_FOUND)
            return
        await self._flush()
        self.last_sent = snap.last_seq
        self.terminal = snap.status in protocol.TERMINAL_STATUSES
        await self.send_snapshot(snap)

    # ----------------------------------------------------------- delivery

    async def dagstream_events(self, message: dict[str, Any]) -> None:
        """Committed events, consecutive by seq: drop what was sent, fill any gap first."""
        if not self.ready:
            return
        fresh = [e for e in message["events"] if e["seq"] > self.last_sent]
        if not fresh:
            return
        if fresh[0]["seq"] > self.last_sent + 1:
            if not await self._fill(fresh[0]["seq"] - 1):
                return
            if self.last_sent != fresh[0]["seq"] - 1:
                # The log cannot fill the gap: not an event of this database (a
                # Redis shared without distinct prefixes). The idle check resyncs.
                log.warning("dagstream: ignoring events of %s the log lacks", self.dag_id)
                return
        self.last_sent = fresh[-1]["seq"]
        self.terminal = fresh[-1]["terminal"]
        await self.send_events([(e["seq"], e["frame"]) for e in fresh])

    async def dagstream_deleted(self, message: dict[str, Any]) -> None:
        """The run was deleted: say so with the terminal "unknown DAG" code."""
        if self.ready:
            self.ready = False
            await self.close(CLOSE_NOT_FOUND)

    async def dagstream_idle(self, message: dict[str, Any]) -> None:
        self.idle_ticks += 1
        # A finished run changes no more, but may be deleted: look less often.
        if self.ready and (not self.terminal or self.idle_ticks % TERMINAL_CHECK_EVERY == 0):
            await self._catch_up()

    async def dagstream_layer_error(self, message: dict[str, Any]) -> None:
        if self.ready:
            await self._catch_up()

    async def _catch_up(self) -> None:
        progress = await database_sync_to_async(state.progress)(self.dag_id)
        if progress is None:  # deleted, and its message was lost
            self.ready = False
            await self.close(CLOSE_NOT_FOUND)
            return
        current, status = progress
        if current <= self.last_sent:
            self.terminal = status in protocol.TERMINAL_STATUSES
            return
        # Messages were lost (or the layer restarted and forgot the group): rejoin.
        try:
            await self.channel_layer.group_add(broadcast.group_name(self.dag_id), self.channel_name)
        except Exception:  # still down; the next tick retries
            log.warning("dagstream: group_add failed", exc_info=True)
        if await self._fill(current):
            self.terminal = status in protocol.TERMINAL_STATUSES

    async def _fill(self, upto: int) -> bool:
        """Send the events after ``last_sent`` up to ``upto`` from the database."""
        if upto - self.last_sent > get_config()["MAX_LAG"]:
            # Too far behind to catch up by replay: let the client resume.
            self.ready = False
            await self.close(CLOSE_TRY_AGAIN_LATER)
            return False
        frames = await database_sync_to_async(state.event_frames)(self.dag_id, self.last_sent, upto)
        if frames:
            self.last_sent = frames[-1][0]
            await self.send_events(frames)
        return True

    # Overridden by consumers that render events differently.

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        raise NotImplementedError

    async def send_events(self, events: list[tuple[int, str]]) -> None:
        raise NotImplementedError

    async def send_frames(self, frames: list[str]) -> None:
        """Send JSON texts, one per frame, or coalesced into arrays with ``?batch=1``."""
        if not self.batch:
            for frame in frames:
                await self.send(text_data=frame)
            return
        self._pending.extend(frames)
        config = get_config()
        if len(self._pending) >= config["BATCH_MAX_EVENTS"]:
            await self._flush()
        elif self._flush_task is None:
            self._flush_task = asyncio.ensure_future(
                self._flush_later(config["BATCH_WINDOW_SECONDS"])
            )

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)  # the coalescing window, not synchronisation
        self._flush_task = None
        await self._flush()

    async def _flush(self) -> None:
        limit = get_config()["BATCH_MAX_EVENTS"]
        while self._pending:
            chunk, self._pending = self._pending[:limit], self._pending[limit:]
            text = chunk[0] if len(chunk) == 1 else "[" + ",".join(chunk) + "]"
            await self.send(text_data=text)


class DagJsonConsumer(DagStreamConsumer):
    """Protocol v1 over JSON text frames (``/ws/dags/<dag_id>/``)."""

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        await self.send(text_data=protocol.encode(protocol.Snapshot(dag=snap, seq=snap.last_seq)))

    async def send_events(self, events: list[tuple[int, str]]) -> None:
        await self.send_frames([frame for _, frame in events])

    async def reply(self, message: protocol.Ack | protocol.ErrorReply) -> None:
        await self.send(text_data=protocol.encode(message))

    async def reply_error(
        self,
        code: protocol.ErrorCode,
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
        limit = get_config()["MAX_FRAME_BYTES"]
        if len(text_data) > limit or len(text_data.encode()) > limit:
            await self.reply_error("too_large", f"Frames are limited to {limit} bytes.")
            return
        try:
            command = protocol.parse_command(text_data)
        except protocol.ProtocolError as exc:
            await self.reply_error(exc.code, exc.message, exc.command_id)
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
                await self.start_stream(command.last_seq)
            case _:  # pragma: no cover - parse_command admits only the types above
                raise services.InvalidDelta(f"Unhandled message {command!r}.")


class DagHtmlConsumer(DagStreamConsumer):
    """The dashboard's stream (``/ws/dags/<dag_id>/html/``): events as htmx OOB fragments.

    Each event is rendered once per process and permission variant (see
    :mod:`dagstream_app.live`); every message ends with the ``#ds-seq`` marker
    the page resumes from. Client frames are ignored: actions go by htmx POST.
    """

    perms: render.Perms | None = None

    async def _ensure_perms(self) -> render.Perms:
        if self.perms is None:
            self.perms = await database_sync_to_async(self._read_perms)()
        return self.perms

    def _read_perms(self) -> render.Perms:
        dag = state.dag(self.dag_id)
        return (allowed(self.user, "decide", dag), allowed(self.user, "control", dag))

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        perms = await self._ensure_perms()
        html = await database_sync_to_async(live.snapshot_message)(snap, perms)
        await self.send(text_data=html)

    async def send_events(self, events: list[tuple[int, str]]) -> None:
        if not events:
            return
        perms = await self._ensure_perms()
        html = live.cached_events_html(self.dag_id, events, perms)
        if html is None:
            html = await database_sync_to_async(live.events_html)(self.dag_id, events, perms)
        await self.send(text_data=html)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return


class DagIndexConsumer(AsyncWebsocketConsumer):
    """Live rows of the run list (``/ws/dags/?ids=a,b``), throttled per connection.

    Rows of the DAGs named in ``ids`` (the ones on the page) are re-rendered at
    most every ``THROTTLE`` seconds; a new run elsewhere raises a notice instead.
    Only runs the user may view count: each flush asks the permission rule.
    """

    THROTTLE = 0.5
    ids: frozenset[str] = frozenset()
    ready = False
    new_count = 0

    async def connect(self) -> None:
        await self.accept()
        self.user = user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(allowed)(user, "view"):  # no DAG: no hook asked
            await self.close(CLOSE_FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        raw = query.get("ids", [""])[0]
        self.ids = frozenset(i for i in raw.split(",")[:200] if protocol.DAG_ID_RE.match(i))
        self.pending: dict[str, int] = {}
        self.new_runs: set[str] = set()
        self.flush_task: asyncio.Task[None] | None = None
        await self.channel_layer.group_add(broadcast.INDEX_GROUP, self.channel_name)
        self.ready = True

    async def disconnect(self, code: int) -> None:
        if self.ready:
            self.ready = False
            if self.flush_task is not None:
                self.flush_task.cancel()
            try:
                await self.channel_layer.group_discard(broadcast.INDEX_GROUP, self.channel_name)
            except Exception:  # the layer may be down; the entry expires
                log.warning("dagstream: group_discard failed", exc_info=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def dagstream_dag_changed(self, message: dict[str, Any]) -> None:
        if not self.ready:
            return
        dag_id: str = message["dag_id"]
        if dag_id in self.ids:
            self.pending[dag_id] = max(message["seq"], self.pending.get(dag_id, 0))
        elif message["seq"] <= 1:
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

    async def _flush_rows(self) -> None:
        await asyncio.sleep(self.THROTTLE)  # the throttle window, not synchronisation
        self.flush_task = None
        pending, self.pending = self.pending, {}
        new, self.new_runs = self.new_runs, set()
        seen = await database_sync_to_async(visible_ids)(self.user, {*pending, *new})
        self.new_count += len(new & seen)
        rows = {dag_id: seq for dag_id, seq in pending.items() if dag_id in seen}
        html = await database_sync_to_async(live.index_message)(rows, self.new_count)
        if html and self.ready:
            await self.send(text_data=html)
