"""Who else is on a run's page, and who is writing feedback on a gate (``/ws/dags/<id>/presence/``).

Presence lives in the channel layer only: each page's socket says "here" to the
run's presence group every :data:`HEARTBEAT_SECONDS` (and at once when the
person starts or stops writing feedback), says "gone" when it closes, and
forgets a peer it has not heard from for :data:`GONE_AFTER_SECONDS` (a process
that died says nothing). Nothing is written to the database. The page gets
``{"type": "presence", "here": [...], "typing": {node_id: [...]}}`` whenever
that changes (dashboard/presence.js shows it).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from dagstream_app import broadcast
from dagstream_app.errors import DagstreamError
from dagstream_app.permissions import authorize
from dagstream_app.read_pool import read

__all__ = ["GONE_AFTER_SECONDS", "HEARTBEAT_SECONDS", "PresenceConsumer"]

HEARTBEAT_SECONDS = 2.0
GONE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS
_NODE_ID_LIMIT = 200


class PresenceConsumer(AsyncWebsocketConsumer):
    """One run page's presence: it announces its person, and shows the others."""

    username = ""
    typing = ""
    shown: Any = None
    beat: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.dag_id = str(self.scope["url_route"]["kwargs"]["dag_id"])
        user = self.scope.get("user")
        await self.accept()
        try:
            await read(authorize)(user, "view", self.dag_id)
        except DagstreamError as exc:
            await self.close(exc.close_code)
            return
        assert user is not None
        self.username = user.get_username()
        self.group = broadcast.presence_group_name(self.dag_id)
        self.peers: dict[str, tuple[str, str, float]] = {}  # channel -> (name, typing, heard)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.beat = asyncio.ensure_future(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        if self.beat is None:
            return
        self.beat.cancel()
        await self.channel_layer.group_send(
            self.group, {"type": "presence.gone", "channel": self.channel_name}
        )
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """``{"typing": "<node id>"}`` while writing feedback on that gate, ``""`` after."""
        try:
            typing = json.loads(text_data or "")["typing"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(typing, str) and len(typing) <= _NODE_ID_LIMIT and typing != self.typing:
            self.typing = typing
            await self._announce()

    async def presence_here(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        if channel == self.channel_name:
            return
        new = channel not in self.peers
        self.peers[channel] = (message["name"], message["typing"], time.monotonic())
        await self._show()
        if new:  # a page that just opened learns of this one now, not at its next beat
            await self._announce()

    async def presence_gone(self, message: dict[str, Any]) -> None:
        if self.peers.pop(message["channel"], None) is not None:
            await self._show()

    async def _announce(self) -> None:
        here = {"type": "presence.here", "channel": self.channel_name}
        await self.channel_layer.group_send(
            self.group, {**here, "name": self.username, "typing": self.typing}
        )

    async def _heartbeat(self) -> None:
        while True:
            await self._announce()
            await asyncio.sleep(HEARTBEAT_SECONDS)  # the heartbeat's period
            silent = time.monotonic() - GONE_AFTER_SECONDS
            for channel, (_, _, heard) in list(self.peers.items()):
                if heard < silent:
                    del self.peers[channel]
            await self._show()

    async def _show(self) -> None:
        """Send who else is here and who is writing where, if that changed."""
        others = [(n, t) for n, t, _ in self.peers.values() if n != self.username]
        typing: dict[str, list[str]] = {}
        for name, node_id in sorted(set(others)):
            if node_id:
                typing.setdefault(node_id, []).append(name)
        shown = {"type": "presence", "here": sorted({n for n, _ in others}), "typing": typing}
        if shown != self.shown:
            self.shown = shown
            await self.send(text_data=json.dumps(shown))
