"""Protocol v1 over JSON text frames (``/ws/dags/<dag_id>/``): events as they are, and commands.

Each event's frame is ready in the layer message; a ``?batch=1`` client gets what
came together as one array frame. A client's commands (decisions, control,
resume) are authorized as the user is now; a refusal is answered from the error
itself (its ``code``, see :mod:`~dagstream_app.errors`) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from channels.db import database_sync_to_async

from dagstream_app import protocol, services, transport
from dagstream_app.conf import config
from dagstream_app.consumers.base import shared
from dagstream_app.consumers.stream import DagStreamConsumer
from dagstream_app.errors import Conflict, DagstreamError, InvalidDelta, RateLimited, TooLarge
from dagstream_app.layer_messages import EventsMessage, RunMessage

__all__ = ["DagJsonConsumer"]


class DagJsonConsumer(DagStreamConsumer):
    """Protocol v1 over JSON text frames (``/ws/dags/<dag_id>/``)."""

    async def send_snapshot(self, snap: protocol.DagSnapshot) -> None:
        await self.send(text_data=protocol.encode(protocol.Snapshot(dag=snap, seq=snap.last_seq)))

    async def send_events(
        self, events: Sequence[tuple[int, str]], message: EventsMessage | RunMessage | None
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

    async def refuse(self, exc: DagstreamError, command: protocol.CommandId | None = None) -> None:
        """Answer the refusal ``exc`` of ``command`` with its code and message (and a
        conflict's decision): the one mapping of refusals to replies."""
        decision = exc.decision if isinstance(exc, Conflict) else None
        await self.reply(
            protocol.ErrorReply(code=exc.code, message=exc.message, id=command, decision=decision)
        )

    async def rate_limited(self) -> None:
        if self.ready:
            await self.refuse(RateLimited("Too many messages; slow down."))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.ready:
            return
        if text_data is None:
            await self.refuse(InvalidDelta("Binary frames are not accepted; send JSON text."))
            return
        limit = config().max_frame_bytes
        if len(text_data) > limit or len(text_data.encode()) > limit:
            await self.refuse(TooLarge(f"Frames are limited to {limit} bytes."))
            return
        try:
            command = protocol.parse_command(text_data)
        except DagstreamError as exc:
            await self.refuse(exc, exc.command_id)
            return
        # Each command is authorized as the user is now, not as they connected:
        # one who may no longer watch is closed, whatever the command.
        if not await self.still_allowed():
            return
        try:
            await self.handle(command)
        except DagstreamError as exc:
            await self.refuse(exc, command.id)
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
                raise InvalidDelta(f"Unhandled message {command!r}.")


_KEEPALIVE = protocol.encode(protocol.Keepalive())


def _array(frames: list[str]) -> str:
    return frames[0] if len(frames) == 1 else "[" + ",".join(frames) + "]"
