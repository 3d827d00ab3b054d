"""The base of every dagstream socket: a consumer fed by its process's hub.

A :class:`HubConsumer` gets layer messages from one inbox that its process's
:class:`~dagstream_app.fanout.Hub` fills (no channel of its own), sends through
:mod:`~dagstream_app.transport` (ready-made frames, bounded unsent bytes), and
re-reads its user's credential on the hub's tick. What the consumers of a
process all send for one message is built once and kept on it (:func:`shared`).

Its loop replaces Channels' ``AsyncConsumer.__call__``: one loop per source
instead of a task and an ``asyncio.wait`` per message, and no per-message
``aclose_old_connections`` thread hop (handlers reach the database only through
``database_sync_to_async``, which does that housekeeping itself). It does so only
while Channels' own loop does nothing more than it: :func:`fast_dispatch` checks
that once per process, and otherwise (with a warning) consumers run on Channels'
own ``__call__`` and ``dispatch``, fed from the same inbox.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from dagstream_app import fanout, transport
from dagstream_app.auth import CREDENTIAL, SIGNED_OUT, current_user
from dagstream_app.conf import config
from dagstream_app.consumers.limits import FrameGate, FrameVerdict
from dagstream_app.errors import (
    CLOSE_TOO_MANY_FRAMES,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
)
from dagstream_app.layer_messages import HubMessage, Shareable
from dagstream_app.read_pool import read

__all__ = ["INBOX_LIMIT", "HubConsumer", "fast_dispatch", "shared", "shared_result"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Layer messages a consumer may have queued; past it, it catches up from the log.
INBOX_LIMIT = 1_000
# The code a consumer's disconnect() gets when the socket went without a close.
CLOSE_ABNORMAL = 1006
# How many ticks before REVALIDATE_SECONDS runs out a socket's re-check comes due.
_TICKS_EARLY = 1.5

# The names Channels' own AsyncConsumer.__call__ and dispatch use (channels 4.3):
# HubConsumer's loop does that work (less the per-message thread hop). A name
# beyond these is work it would skip.
_CHANNELS_CALL = frozenset(
    {
        *("StopConsumer", "_sync", "async_to_sync", "await_many_dispatch", "base_send"),
        *("channel_layer", "channel_layer_alias", "channel_name", "channel_receive"),
        *("dispatch", "functools", "get_channel_layer", "new_channel", "partial"),
        *("receive", "scope"),
    }
)
_CHANNELS_DISPATCH = frozenset(
    {"ValueError", "aclose_old_connections", "get_handler_name", "getattr"}
)


@functools.cache
def fast_dispatch() -> bool:
    """May HubConsumer run its own loop? Checked once per process; if not, says why."""
    problem = _channels_mismatch()
    if problem is not None:
        log.warning("dagstream: %s; sockets use Channels' own dispatch (slower)", problem)
    return problem is None


def _channels_mismatch() -> str | None:
    """What in Channels' consumer loop differs from what HubConsumer's replaces, if anything."""
    if list(inspect.signature(AsyncConsumer.__call__).parameters) != [
        "self",
        "scope",
        "receive",
        "send",
    ]:
        return "Channels' AsyncConsumer.__call__ takes other arguments"
    for name, known in (("__call__", _CHANNELS_CALL), ("dispatch", _CHANNELS_DISPATCH)):
        code = getattr(getattr(AsyncConsumer, name), "__code__", None)
        if code is None:
            return f"Channels' AsyncConsumer.{name} is not a Python function"
        unknown = set(code.co_names) - known
        if unknown:
            return f"Channels' AsyncConsumer.{name} now also uses {', '.join(sorted(unknown))}"
    return None


class HubConsumer(AsyncWebsocketConsumer):
    """A consumer fed by its process's hub: one inbox instead of a channel of its own."""

    group: str | None = None
    last_send = 0.0
    unsent: Callable[[], int] | None = None  # bytes the server holds for this socket
    dropped = False  # nothing more is sent: the socket is closed or gone
    ended = False  # disconnect() has run
    ready = False  # streaming: connected, allowed, subscribed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        layer = get_channel_layer(self.channel_layer_alias)
        if layer is None:
            raise ImproperlyConfigured("dagstream needs CHANNEL_LAYERS to be configured.")
        self.hub = fanout.hub_for(layer)
        self.inbox = fanout.Inbox(INBOX_LIMIT)
        self.frame_send = transport.frame_send(send)
        self.unsent = transport.unsent_bytes(send)
        self.write_frames = transport.wire_writer(send)
        transport.close_malformed_with_a_code(send)
        self.frame_gate = FrameGate()
        self.last_send = time.monotonic()  # the keep-alive counts from the connect
        try:
            if fast_dispatch():
                self.scope, self.channel_layer, self.base_send = scope, layer, send
                await self._run(receive)
            else:  # Channels' own loop, which takes layer messages from channel_receive
                await super().__call__(scope, receive, send)
        finally:
            if not self.ended:
                # The socket went while a send was under way (StopConsumer), with no
                # websocket.disconnect to come: what disconnect() stops, it stops now.
                await self.disconnect(CLOSE_ABNORMAL)
            await self._leave()

    async def _run(self, receive: Callable[[], Awaitable[Mapping[str, Any]]]) -> None:
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

    async def _pump(
        self, source: Callable[[], Awaitable[Mapping[str, Any]]], turn: asyncio.Lock
    ) -> None:
        # A loop per source rather than Channels' await_many_dispatch, which
        # makes a task and an asyncio.wait per message: per viewer, per event.
        while True:
            message = await source()
            async with turn:
                handler = getattr(self, message["type"].replace(".", "_"), None)
                if handler is None:
                    raise ValueError(f"No handler for message type {message['type']}")
                await handler(message)

    async def _next_message(self) -> HubMessage:
        message = await self.inbox.get()
        return {"type": "dagstream.layer_error"} if message is None else message

    @property
    def channel_receive(self) -> Callable[[], Awaitable[HubMessage]]:
        """Where Channels' own loop (see :func:`fast_dispatch`) takes layer messages: the inbox."""
        return self._next_message

    @channel_receive.setter
    def channel_receive(self, value: object) -> None:
        """Channels sets its channel's receive here; the hub's inbox stands in for it."""

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

    async def websocket_receive(self, message: Mapping[str, Any]) -> None:
        """A client frame: read (``receive``) only if the frame gate lets it through.

        Past the rate a frame is dropped before anything looks at it, the first
        of a spell answered by :meth:`rate_limited`; a flooder is closed (4008).
        """
        if self.dropped:
            return  # closed: what the client still sends goes nowhere
        verdict = self.frame_gate.admit()
        if verdict is FrameVerdict.READ:
            await super().websocket_receive(message)
        elif verdict is FrameVerdict.REFUSED:
            await self.rate_limited()
        elif verdict is FrameVerdict.FLOOD:
            log.info("dagstream: closing a socket that floods (%s)", self.scope.get("client"))
            self.ready = False
            await self.close(CLOSE_TOO_MANY_FRAMES)
            transport.stop_reading(self.base_send)  # its frames in flight go unparsed

    async def rate_limited(self) -> None:
        """The client sent past the rate limit; its frames are dropped until it slows down."""

    async def websocket_disconnect(self, message: Mapping[str, Any]) -> None:
        self.ended = True
        await super().websocket_disconnect(message)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    # ------------------------------------------------------------ sending

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
            # The client left while we were sending: nothing to report, nothing to
            # keep. The consumer ends; its disconnect() runs on the way out.
            self.dropped = True
            raise StopConsumer() from None

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close with ``code`` and, for people, ``reason`` (cut to a close frame's 123 bytes)."""
        if reason and isinstance(code, int) and not isinstance(code, bool):
            if not transport.close_with_reason(self.frame_send, code, reason):
                await super().close(code, transport.close_reason(reason))
        else:
            await super().close(code, reason)
        self.dropped = True  # nothing is sent after a close

    async def _drop_non_reader(self) -> None:
        """Too much waits for a client that does not read: let it come back later (4013)."""
        log.info("dagstream: closing a socket that does not read (%s)", self.scope.get("client"))
        self.unsent = None
        self.ready = False
        await self.close(CLOSE_TRY_AGAIN_LATER)
        transport.abort(self.base_send)  # the close frame would wait behind the rest

    # ----------------------------------------------------- revalidation

    # When the credential was last read again on a tick. Only the tick's re-check
    # sets it: a client command must never put off the next one.
    checked = 0.0

    def recheck_due(self) -> bool:
        """Has the credential's re-check time come since it was last read?

        Re-checks run on the hub's ticks (every ``IDLE_CHECK_SECONDS``, and a
        tick runs late by the time its read takes), so a socket comes due a tick
        and a half early: two reads are never further apart than
        ``REVALIDATE_SECONDS``, the longest a revocation goes unnoticed.
        Each credential has its own phase within that: the sockets of one
        credential come due on the same tick (and share one read, see
        :meth:`DagStreamConsumer.still_viewer`), while those of many users who
        connected together are spread over the period instead of all read at once.
        """
        settings = config()
        period = settings.revalidate_seconds - _TICKS_EARLY * settings.idle_check_seconds
        if period <= 0:
            return True  # the period is shorter than a tick: every tick
        phase = zlib.crc32(repr(self.credential()).encode()) / 2**32 * period
        return (time.monotonic() + phase) // period > (self.checked + phase) // period

    def credential(self) -> tuple[str, str, Any]:
        """What authenticated this socket, and as whom: sockets alike in it are re-read alike."""
        kind, key = self.scope.get(CREDENTIAL, ("user", ""))
        return kind, key, getattr(self.scope.get("user"), "pk", None)

    async def recheck(self) -> bool:
        """On a tick: read the user again; False (and the socket closed with 4001)
        if their credential has gone: a revoked token, an ended session, a
        deactivated user.
        """
        self.checked = time.monotonic()
        fresh = await read(current_user)(self.scope)
        if fresh is None:
            self.ready = False
            await self.close(CLOSE_UNAUTHENTICATED, str(SIGNED_OUT))
            return False
        self.user = fresh
        return True


def shared(message: Shareable, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, made once for ``message`` and kept on it for every consumer it reaches."""
    memo = message.setdefault("_shared", {})
    if key not in memo:
        memo[key] = make()
    return memo[key]  # type: ignore[no-any-return]


async def shared_result(message: Shareable, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
    """The result of ``work()``, run once for ``message`` however many consumers ask.

    Each asker waits behind a shield: one that leaves does not cancel it for the rest.
    """
    task = shared(message, key, lambda: asyncio.ensure_future(work()))
    return await asyncio.shield(task)
