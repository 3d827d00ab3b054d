"""An engine's ear on its DAG's control group: each message only means "look now".

People's decisions and commands are read from the database; the control group
only wakes whoever waits for them early, so a lost message costs at most one
poll (``IDLE_CHECK_SECONDS``) and nothing is delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.layers import get_channel_layer

from dagstream_app import broadcast
from dagstream_app.conf import config

__all__ = ["ControlChannel", "wait_for"]

log = logging.getLogger(__name__)


async def wait_for(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class ControlChannel:
    """Listens on one DAG's control group and sets :attr:`wake` for every message.

    A waiter takes :attr:`wake` before its database read and waits on that
    event: each message sets the current event and arms a fresh one, so no
    wake-up falls between a read and its wait.
    """

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self.wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._channel: str | None = None

    async def listen(self) -> None:
        """Start listening (once); without a channel layer, only the polls remain."""
        if self._listener is not None:
            return
        layer = get_channel_layer()
        if layer is None:
            self._listener = asyncio.ensure_future(asyncio.sleep(0))
            return
        self._channel = await layer.new_channel()
        self._listener = asyncio.ensure_future(self._listen_loop(layer))

    async def _listen_loop(self, layer: Any) -> None:
        renew = asyncio.ensure_future(self._renew(layer))
        try:
            await self._receive_loop(layer)
        finally:
            renew.cancel()

    async def _renew(self, layer: Any) -> None:
        # Memberships expire (channels-redis: group_expiry); an engine waiting
        # long at a gate renews its own well before that.
        group = broadcast.control_group_name(self.dag_id)
        period = min(float(getattr(layer, "group_expiry", 86_400)) / 3, 60.0)
        while True:
            await asyncio.sleep(period)  # the renewal period itself
            with contextlib.suppress(Exception):  # the receive loop reports outages
                await layer.group_add(group, self._channel)

    async def _receive_loop(self, layer: Any) -> None:
        group = broadcast.control_group_name(self.dag_id)
        assert self._channel is not None
        joined = down = False
        while True:
            try:
                if not joined:
                    await layer.group_add(group, self._channel)
                    joined = True
                await layer.receive(self._channel)
                if down:
                    down = False
                    log.warning("dagstream engine: the control channel is back")
            except asyncio.CancelledError:
                raise
            except Exception:
                if not down:  # once per outage; the database poll covers meanwhile
                    down = True
                    log.warning("dagstream engine: control channel failed", exc_info=True)
                joined = False
                await asyncio.sleep(config().idle_check_seconds)
            # Wake every waiter, then arm a fresh event: no wake-up is lost
            # between a waiter's database read and its wait.
            self.wake.set()
            self.wake = asyncio.Event()

    async def stop(self) -> None:
        """Stop listening and leave the group."""
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        if self._channel is not None:
            layer = get_channel_layer()
            try:
                await layer.group_discard(broadcast.control_group_name(self.dag_id), self._channel)
            except Exception:
                log.warning("dagstream engine: group_discard failed", exc_info=True)
            self._channel = None
