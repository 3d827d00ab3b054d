"""The gate inbox's live list (``/ws/gates/?run=``): gates come and go as runs change."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from dagstream_app import broadcast, render
from dagstream_app.consumers.listing import ListConsumer
from dagstream_app.inbox import Shown, inbox_update, run_filter
from dagstream_app.layer_messages import DagChangedMessage, DagDeletedMessage
from dagstream_app.read_pool import read

__all__ = ["GateInboxConsumer"]


class GateInboxConsumer(ListConsumer):
    """The gates waiting for this person, across runs, kept up to date (``/ws/gates/``).

    On connect it sends the whole list; then, when any run changes (a gate
    opens, is voted on, decided or closed), it reads the list again at most
    every ``THROTTLE`` seconds and sends what changed (:func:`inbox_update`).
    Changes come from the layer and, for engines it does not reach, from the
    hub's database tick, as for the run list.
    """

    PERMISSION = "decide"
    THROTTLE = 0.5
    run = ""
    shown: Shown | None = None

    async def connect(self) -> None:
        if not await self.admit():
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.run = run_filter(query.get("run", [""])[0])
        self.language = render.language_of(self.scope)
        await self.subscribe(broadcast.INDEX_GROUP)
        self.ready = True
        await self._send_update()  # the whole list: a reconnect shows what it missed

    async def dagstream_dag_changed(self, message: DagChangedMessage) -> None:
        self._soon()

    async def dagstream_dag_deleted(self, message: DagDeletedMessage) -> None:
        self._soon()

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
