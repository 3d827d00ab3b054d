"""The base of the live lists across runs (the run list, the gate inbox).

A :class:`ListConsumer` is for whoever holds one permission without a DAG
(:attr:`~ListConsumer.PERMISSION`): it admits on connect, asks again on the
hub's tick when the credential's re-check comes due, and keeps the socket alive.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from dagstream_app import render
from dagstream_app.conf import config
from dagstream_app.consumers.base import HubConsumer
from dagstream_app.errors import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from dagstream_app.layer_messages import LayerErrorMessage, TickMessage
from dagstream_app.permissions import allowed
from dagstream_app.read_pool import read

__all__ = ["ListConsumer"]


class ListConsumer(HubConsumer):
    """A live list across runs, shown to whoever holds :attr:`PERMISSION`."""

    PERMISSION: ClassVar[str]  # the permission asked with no DAG: no hook is asked
    flush_task: asyncio.Task[None] | None = None

    async def admit(self) -> bool:
        """Accept, then close (4001, 4003) unless a signed-in user holds :attr:`PERMISSION`."""
        await self.accept()
        self.user = user = self.scope.get("user")
        self.checked = time.monotonic()
        if user is None or not user.is_authenticated:
            await self.close(CLOSE_UNAUTHENTICATED)
            return False
        if not await read(allowed)(user, self.PERMISSION):
            await self.close(CLOSE_FORBIDDEN)
            return False
        return True

    async def disconnect(self, code: int) -> None:
        self.ready = False
        if self.flush_task is not None:
            self.flush_task.cancel()
        await self._leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return

    async def dagstream_tick(self, message: TickMessage) -> None:
        if not self.ready:
            return
        if self.recheck_due():
            if not await self.recheck():
                return
            if not await read(allowed)(self.user, self.PERMISSION):
                self.ready = False
                await self.close(CLOSE_FORBIDDEN)
                return
        if time.monotonic() - self.last_send >= config().keepalive_seconds:
            await self.send(text_data=render.KEEPALIVE_HTML)

    async def dagstream_layer_error(self, message: LayerErrorMessage) -> None:
        return  # the hub's tick brings what the layer lost
