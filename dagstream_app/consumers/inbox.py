"""The gate inbox's live list (``/ws/gates/?run=``): gates come and go as runs change."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs

from dagstream_app import broadcast, render
from dagstream_app.conf import config
from dagstream_app.consumers.base import HubConsumer
from dagstream_app.errors import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from dagstream_app.inbox import Shown, inbox_update, run_filter
from dagstream_app.layer_messages import (
    DagChangedMessage,
    DagDeletedMessage,
    LayerErrorMessage,
    TickMessage,
)
from dagstream_app.permissions import allowed
from dagstream_app.read_pool import read

__all__ = ["GateInboxConsumer"]


class GateInboxConsumer(HubConsumer):
    """The gates waiting for this person, across runs, kept up to date (``/ws/gates/``).

    On connect it sends the whole list; then, when any run changes (a gate
    opens, is voted on, decided or closed), it reads the list again at most
    every ``THROTTLE`` seconds and sends what changed (:func:`inbox_update`).
    Changes come from the layer and, for engines it does not reach, from the
    hub's database tick, as for the run list.
    """

    THROTTLE = 0.5
    run = ""
    shown: Shown | None = None
    flush_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()
        self.user = user = self.scope.get("user")
        self.checked = time.monotonic()
        if user is None or not user.is_authenticated:
            await self.close(CLOSE_UNAUTHENTICATED)
            return
        if not await read(allowed)(user, "decide"):
            await self.close(CLOSE_FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.run = run_filter(query.get("run", [""])[0])
        self.language = render.language_of(self.scope)
        await self.subscribe(broadcast.INDEX_GROUP)
        self.ready = True
        await self._send_update()  # the whole list: a reconnect shows what it missed

    async def disconnect(self, code: int) -> None:
        self.ready = False
        if self.flush_task is not None:
            self.flush_task.cancel()
        await self._leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def dagstream_dag_changed(self, message: DagChangedMessage) -> None:
        self._soon()

    async def dagstream_dag_deleted(self, message: DagDeletedMessage) -> None:
        self._soon()

    async def dagstream_tick(self, message: TickMessage) -> None:
        if not self.ready:
            return
        if self.recheck_due():
            if not await self.recheck():
                return
            if not await read(allowed)(self.user, "decide"):
                self.ready = False
                await self.close(CLOSE_FORBIDDEN)
                return
        if time.monotonic() - self.last_send >= config().keepalive_seconds:
            await self.send(text_data=render.KEEPALIVE_HTML)

    async def dagstream_layer_error(self, message: LayerErrorMessage) -> None:
        return  # the hub's tick brings what the layer lost

    def _soon(self) -> None:
        if self.ready and self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(self.THROTTLE)  # the throttle window, not synchronisation
        self.flush_task = None
        await self._send_update()

    async def _send_update(self) -> None:
        html, self.shown = await read(inbox_update)(self.user, self.run, self.shown, self.language)
        if html and self.ready:
            await self.send(text_data=html)
