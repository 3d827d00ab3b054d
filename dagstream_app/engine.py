"""The engine API: how a pipeline, agent or ETL job reports a DAG and hears back.

Every call goes through :mod:`dagstream_app.services` (persist, then publish).
Decisions and commands come back over the DAG's control group; the engine
treats each layer message only as "look now" and reads the database, so a lost
message delays nothing more than one poll (``IDLE_CHECK_SECONDS``) and nothing
is delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from dagstream_app import services, state
from dagstream_app.conf import get_config
from dagstream_app.models import Gate
from dagstream_app.protocol import TERMINAL_STATUSES

__all__ = ["Command", "DagStream", "GateDecision", "SyncDagStream"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
# Deltas coalesced into one transaction at most.
_BATCH_LIMIT = 200


def _db(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    return database_sync_to_async(func)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class GateDecision:
    """What a person (or a timeout's default) decided at a gate."""

    node_id: str
    decision: Literal["approve", "reject", "modify"]
    feedback: str
    decided_by: str
    decided_at: datetime | None

    @classmethod
    def from_gate(cls, gate: Gate) -> GateDecision:
        assert gate.decision is not None
        return cls(
            node_id=gate.node_id,
            decision=gate.decision,
            feedback=gate.feedback,
            decided_by=gate.decided_by,
            decided_at=gate.decided_at,
        )


@dataclass(frozen=True)
class Command:
    """A person's pause / resume / cancel, delivered once through ``commands()``."""

    type: Literal["pause", "resume", "cancel"]
    seq: int


class DagStream:
    """Async handle on one DAG execution. Build it with :meth:`create` or :meth:`open`."""

    def __init__(self, dag_id: str, *, command_cursor: int) -> None:
        self.dag_id = dag_id
        self._cursor = command_cursor
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._channel: str | None = None
        self._queue: list[
            tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]
        ] = []
        self._flusher: asyncio.Task[None] | None = None

    async def _apply(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a services call; calls made concurrently share one transaction."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((func, (self.dag_id, *args), kwargs, future))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:_BATCH_LIMIT], self._queue[_BATCH_LIMIT:]
                try:
                    results = await _db(services.apply_batch)([c[:3] for c in batch])
                except Exception as exc:  # noqa: BLE001 - the whole transaction failed
                    results = [exc] * len(batch)
                for (*_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flusher = None

    @classmethod
    async def create(
        cls,
        dag_id: str,
        *,
        name: str = "",
        nodes: Iterable[Any] = (),
        edges: Iterable[Any] = (),
        budget: float | None = None,
    ) -> DagStream:
        """Create and start a DAG. ``nodes``: ids or ``{"id", "label"}``; ``edges``: (src, dst)."""
        dag = await _db(services.create_dag)(
            dag_id, name=name, nodes=list(nodes), edges=list(edges), budget=budget
        )
        return cls(dag_id, command_cursor=dag.last_seq)

    @classmethod
    async def open(cls, dag_id: str) -> DagStream:
        """Reattach to an existing DAG (after an engine restart)."""
        progress = await _db(state.progress)(dag_id)
        if progress is None:
            raise services.NotFound(f"Unknown DAG {dag_id!r}.")
        last_seq, status = progress
        cursor = last_seq
        if status in ("paused", "cancelling"):
            # A person paused or cancelled while no engine was attached: the
            # command that put the run in this state is delivered first.
            latest = await _db(state.latest_command_seq)(dag_id)
            cursor = latest - 1 if latest is not None else last_seq
        return cls(dag_id, command_cursor=cursor)

    # ---------------------------------------------------------- deltas

    async def node_state(
        self,
        node_id: str,
        status: str,
        *,
        output: Any = None,
        metrics: dict[str, Any] | None = None,
    ) -> int:
        """Report a node's status; returns the event's seq."""
        event = await self._apply(
            services.node_state, node_id, status, output=output, metrics=metrics
        )
        return int(event.seq)

    async def edge_active(self, src: str, dst: str) -> int:
        return int((await self._apply(services.edge_active, src, dst)).seq)

    async def mutate(self, mutation: dict[str, Any]) -> int:
        """Apply ``add_node`` / ``remove_node`` / ``add_edge`` / ``remove_edge``."""
        return int((await self._apply(services.mutate, mutation)).seq)

    async def cost(self, *, spent: float | None = None, budget: float | None = None) -> int:
        """Report the total spent so far (absolute) and/or a new budget."""
        return int((await self._apply(services.cost, spent=spent, budget=budget)).seq)

    async def error(self, message: str, *, node_id: str | None = None) -> int:
        """Report an error without ending the run."""
        return int((await self._apply(services.report_error, message, node_id=node_id)).seq)

    async def complete(self, results: Any = None) -> int:
        return int((await self._apply(services.complete, results)).seq)

    async def fail(self, message: str, *, node_id: str | None = None) -> int:
        return int((await self._apply(services.fail, message, node_id=node_id)).seq)

    async def set_state(self, state_: Literal["paused", "running", "cancelled"]) -> int:
        """Engine-side transition: pause or resume on its own, or confirm a cancel."""
        return int((await self._apply(services.set_state, state_)).seq)

    async def status(self) -> str:
        """The DAG's current execution status."""
        progress = await _db(state.progress)(self.dag_id)
        if progress is None:
            raise services.NotFound(f"Unknown DAG {self.dag_id!r}.")
        return progress[1]

    # ------------------------------------------------ decisions, commands

    async def gate(
        self,
        node_id: str,
        presentation: dict[str, Any],
        *,
        timeout: float | None = None,
        default: Literal["approve", "reject", "modify"] | None = None,
    ) -> GateDecision:
        """Open a human gate and wait for its decision (first decision wins).

        A gate decided earlier (say, while this engine was away) returns at once.
        With ``timeout`` seconds, ``default`` is recorded as a system decision
        if nobody decides in time.
        """
        if (timeout is None) != (default is None):
            raise ValueError("timeout and default go together.")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative.")
        await self._listen()
        timeout_at = timezone.now() + timedelta(seconds=timeout) if timeout is not None else None
        wake = self._wake
        gate = await _db(services.open_gate)(
            self.dag_id, node_id, presentation, timeout_at=timeout_at, default=default
        )
        poll = get_config()["IDLE_CHECK_SECONDS"]
        while True:
            if gate.status != Gate.Status.PENDING:
                return GateDecision.from_gate(gate)
            wait = poll
            if gate.timeout_at is not None:
                left = (gate.timeout_at - timezone.now()).total_seconds()
                if left <= 0:
                    try:
                        gate = await _db(services.decide_gate)(
                            self.dag_id, node_id, gate.default_decision or "reject"
                        )
                    except services.Conflict as exc:
                        if exc.decision is None:
                            raise  # the DAG has finished: nobody can decide this gate now
                        # someone decided first; read it below
                    wait = 0
                else:
                    wait = min(poll, left)
            if wait:
                await _wait(wake, wait)
            wake = self._wake  # taken before the read, so no wake-up falls between
            found = await _db(state.gate)(self.dag_id, node_id)
            if found is None:
                raise services.NotFound(f"Gate {node_id!r} of DAG {self.dag_id!r} vanished.")
            gate = found
            if gate.status == Gate.Status.PENDING and gate.dag.is_terminal:
                raise services.Conflict(
                    f"DAG {self.dag_id!r} is {gate.dag.status}; gate {node_id!r} stays undecided."
                )

    async def commands(self) -> AsyncIterator[Command]:
        """Yield each pause / resume / cancel once, in order; ends when the run ends."""
        await self._listen()
        poll = get_config()["IDLE_CHECK_SECONDS"]
        while True:
            wake = self._wake
            rows, status = await _db(state.commands_after)(self.dag_id, self._cursor)
            for seq, kind in rows:
                self._cursor = seq
                yield Command(type=kind, seq=seq)  # type: ignore[arg-type]
            if status in TERMINAL_STATUSES:
                return
            if not rows:
                await _wait(wake, poll)

    async def pending_commands(self) -> list[Command]:
        """The commands that arrived since the last look, without waiting."""
        rows, _ = await _db(state.commands_after)(self.dag_id, self._cursor)
        if rows:
            self._cursor = rows[-1][0]
        return [Command(type=kind, seq=seq) for seq, kind in rows]  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self._listener is not None:
            return
        layer = get_channel_layer()
        if layer is None:
            self._listener = asyncio.ensure_future(asyncio.sleep(0))
            return
        self._channel = await layer.new_channel()
        self._listener = asyncio.ensure_future(self._listen_loop(layer))

    async def _listen_loop(self, layer: Any) -> None:
        group = services.control_group_name(self.dag_id)
        assert self._channel is not None
        joined = False
        while True:
            try:
                if not joined:
                    await layer.group_add(group, self._channel)
                    joined = True
                await layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("dagstream engine: control channel failed", exc_info=True)
                joined = False
                await asyncio.sleep(get_config()["IDLE_CHECK_SECONDS"])
            # Wake every waiter, then arm a fresh event: no wake-up is lost
            # between a waiter's database read and its wait.
            self._wake.set()
            self._wake = asyncio.Event()

    async def close(self) -> None:
        """Stop listening for decisions and commands."""
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        if self._channel is not None:
            layer = get_channel_layer()
            try:
                await layer.group_discard(services.control_group_name(self.dag_id), self._channel)
            except Exception:
                log.warning("dagstream engine: group_discard failed", exc_info=True)
            self._channel = None


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class _LoopThread:
    """A private event loop on a daemon thread, for the synchronous facade."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class SyncDagStream:
    """The engine API for synchronous code; the same operations as :class:`DagStream`."""

    def __init__(self, stream: DagStream, loop: _LoopThread) -> None:
        self._stream = stream
        self._loop = loop
        self.dag_id = stream.dag_id

    @classmethod
    def create(cls, dag_id: str, **kwargs: Any) -> SyncDagStream:
        loop = _LoopThread()
        return cls(loop.run(DagStream.create(dag_id, **kwargs)), loop)

    @classmethod
    def open(cls, dag_id: str) -> SyncDagStream:
        loop = _LoopThread()
        return cls(loop.run(DagStream.open(dag_id)), loop)

    def node_state(self, node_id: str, status: str, **kwargs: Any) -> int:
        return self._loop.run(self._stream.node_state(node_id, status, **kwargs))

    def edge_active(self, src: str, dst: str) -> int:
        return self._loop.run(self._stream.edge_active(src, dst))

    def mutate(self, mutation: dict[str, Any]) -> int:
        return self._loop.run(self._stream.mutate(mutation))

    def cost(self, **kwargs: Any) -> int:
        return self._loop.run(self._stream.cost(**kwargs))

    def error(self, message: str, **kwargs: Any) -> int:
        return self._loop.run(self._stream.error(message, **kwargs))

    def complete(self, results: Any = None) -> int:
        return self._loop.run(self._stream.complete(results))

    def fail(self, message: str, **kwargs: Any) -> int:
        return self._loop.run(self._stream.fail(message, **kwargs))

    def set_state(self, state_: Literal["paused", "running", "cancelled"]) -> int:
        return self._loop.run(self._stream.set_state(state_))

    def status(self) -> str:
        return self._loop.run(self._stream.status())

    def gate(self, node_id: str, presentation: dict[str, Any], **kwargs: Any) -> GateDecision:
        return self._loop.run(self._stream.gate(node_id, presentation, **kwargs))

    def commands(self) -> Iterator[Command]:
        """Block for each command in turn; ends when the run ends."""
        iterator = self._stream.commands()
        while True:
            try:
                yield self._loop.run(_anext(iterator))
            except StopAsyncIteration:
                return

    def pending_commands(self) -> list[Command]:
        """The commands that arrived since the last look, without waiting."""
        return self._loop.run(self._stream.pending_commands())

    def close(self) -> None:
        self._loop.run(self._stream.close())
        self._loop.stop()


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()
