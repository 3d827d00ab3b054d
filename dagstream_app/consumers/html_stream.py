"""The dashboard's stream (``/ws/dags/<dag_id>/html/``): events as htmx out-of-band fragments."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from dagstream_app import live, protocol, render, state, transport
from dagstream_app.consumers.base import shared_result
from dagstream_app.consumers.stream import DagStreamConsumer
from dagstream_app.layer_messages import EventsMessage, RunMessage
from dagstream_app.permissions import dashboard_perms
from dagstream_app.read_pool import read

__all__ = ["DagHtmlConsumer"]


class DagHtmlConsumer(DagStreamConsumer):
    """The dashboard's stream (``/ws/dags/<dag_id>/html/``): events as htmx OOB fragments.

    Each event is rendered once per process and permission variant (see
    :mod:`dagstream_app.live`); every message ends with the ``#ds-seq`` marker
    the page resumes from. Client frames are ignored: actions go by htmx POST.
    """

    perms: render.Perms | None = None
    coalesce = True

    @cached_property
    def language(self) -> str:
        """The language of the page that opened this stream (its fragments' language)."""
        return render.language_of(self.scope)

    def on_recheck(self, perms: render.Perms) -> None:
        self.perms = perms  # the buttons follow what the user may do now

    async def _ensure_perms(self) -> render.Perms:
        if self.perms is None:
            self.perms = await read(self._read_perms)()
        return self.perms

    def _read_perms(self) -> render.Perms:
        return dashboard_perms(self.user, state.dag(self.dag_id))

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        perms = await self._ensure_perms()
        html = await read(live.snapshot_message)(snap, perms, self.language)
        await self.send(text_data=html)

    async def send_events(
        self, events: Sequence[tuple[int, str]], message: EventsMessage | RunMessage | None
    ) -> None:
        if not events:
            return
        perms = await self._ensure_perms()
        if message is None:
            await self.send_frames(await self._render(events, perms))
            return
        # The first viewer of a permission variant (and language) renders; the others
        # await its result.
        key = ("html", perms, self.language)
        await self.send_frames(
            await shared_result(message, key, lambda: self._render(events, perms))
        )

    async def _render(
        self, events: Sequence[tuple[int, str]], perms: render.Perms
    ) -> transport.Frames:
        html = live.cached_events_html(self.dag_id, events, perms, self.language)
        if html is None:
            html = await read(live.events_html)(self.dag_id, events, perms, self.language)
        return transport.Frames((html,))

    async def send_keepalive(self) -> None:
        await self.send(text_data=render.KEEPALIVE_HTML)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return
