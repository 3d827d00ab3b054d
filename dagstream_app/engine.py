"""The engine API: how a pipeline, agent or ETL job reports a DAG and hears back.

Reports queue up in the stream and are written by one flusher task: every report
made while a flush is in the database goes into the next one, so any number of
concurrent calls share a transaction (:func:`services.apply`), and the events
are published from the event loop, not from the database thread. Awaited calls
return once their event is durable; ``stream.nowait`` reports without waiting,
with bounded buffering (``ENGINE_BUFFER``) and its errors raised by the next
call, by :meth:`DagStream.flush` or by :meth:`DagStream.close`.

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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from dagstream_app import broadcast, services, state
from dagstream_app.conf import config
from dagstream_app.layer_messages import PublishedEvent
from dagstream_app.models import Gate
from dagstream_app.protocol import TERMINAL_STATUSES
from dagstream_app.services import Delta, DeltaKind

__all__ = ["BufferFull", "Command", "DagStream", "GateDecision", "SyncDagStream"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
# Deltas coalesced into one transaction at most.
_BATCH_LIMIT = 1000


def _db(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    return database_sync_to_async(func)  # type: ignore[no-any-return]


class BufferFull(RuntimeError):
    """``stream.nowait`` refused a report: ``ENGINE_BUFFER`` reports wait for the database.

    Await a report or :meth:`DagStream.flush` to let it catch up.
    """


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

    def __init__(self, dag_id: str, *, command_cursor: int, last_seq: int = 0) -> None:
        self.dag_id = dag_id
        self._cursor = command_cursor
        # The DAG's last seq as of this stream's last flush: a flush that finds
        # it moved on (someone else wrote) brings back the commands too.
        self._known_seq = last_seq
        self._learned: list[tuple[int, str]] = []  # commands a flush brought back
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._channel: str | None = None
        self._queue: deque[tuple[Delta, asyncio.Future[Any] | None]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._flushed = asyncio.Event()  # set whenever a flush ends
        self._deferred: BaseException | None = None  # a nowait report's refusal
        self.nowait = Reporter(self._submit_nowait)
        self._heartbeat: asyncio.Task[None] | None = None
        self._reported_at = 0.0  # loop time of the last flush or heartbeat

    # ---------------------------------------------------------- the queue

    def _raise_deferred(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def _enqueue(self, delta: Delta, future: asyncio.Future[Any] | None) -> None:
        self._queue.append((delta, future))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def _submit(self, kind: DeltaKind, **args: Any) -> Any:
        """Queue one report and wait until it is durable; its result (a seq, a gate)."""
        self._raise_deferred()
        limit = config().engine_buffer
        while len(self._queue) >= limit:  # back-pressure: wait for the database
            self._flushed.clear()
            await self._flushed.wait()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(Delta(kind, args), future)
        return await future

    def _submit_nowait(self, kind: DeltaKind, **args: Any) -> None:
        self._raise_deferred()
        limit = config().engine_buffer
        if len(self._queue) >= limit:
            raise BufferFull(
                f"{limit} reports of DAG {self.dag_id!r} are waiting for the database; "
                "await a report or stream.flush() to let it catch up."
            )
        self._enqueue(Delta(kind, args), None)

    def _enqueue_tracked(self, delta: Delta, done: Callable[[], None]) -> None:
        """Queue a report from another thread's ``nowait``; ``done`` runs once it is written."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def finished(result: asyncio.Future[Any]) -> None:
            error = result.exception()
            if error is not None and self._deferred is None:
                self._deferred = error
            done()

        future.add_done_callback(finished)
        self._enqueue(delta, future)

    async def _flush_loop(self) -> None:
        try:
            while self._queue:
                count = min(len(self._queue), _BATCH_LIMIT)
                batch = [self._queue.popleft() for _ in range(count)]
                deltas = [delta for delta, _ in batch]
                events: list[PublishedEvent] = []
                wake = False
                try:
                    flushed = await _db(services.apply)(
                        self.dag_id,
                        deltas,
                        publish=False,
                        known_seq=self._known_seq,
                        command_cursor=self._cursor,
                    )
                    results: list[Any] = flushed.results
                    events, wake = flushed.events, flushed.wake_engine
                    if flushed.last_seq:
                        self._known_seq = flushed.last_seq
                        self._learned.extend(flushed.commands)
                except Exception as exc:  # noqa: BLE001 - the whole transaction failed
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future is None:
                        if isinstance(result, BaseException) and self._deferred is None:
                            self._deferred = result
                    elif not future.done():
                        if isinstance(result, BaseException):
                            future.set_exception(result)
                        else:
                            future.set_result(result)
                await broadcast.publish_async(self.dag_id, events, wake_engine=wake)
                self._reported_at = asyncio.get_running_loop().time()
                self._flushed.set()
        finally:
            self._flusher = None
            self._flushed.set()

    async def flush(self) -> None:
        """Wait until every report made so far is durable; raise a ``nowait`` refusal."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        self._raise_deferred()

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
        return cls(dag_id, command_cursor=dag.last_seq, last_seq=dag.last_seq)._start_heartbeat()

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
        return cls(dag_id, command_cursor=cursor, last_seq=last_seq)._start_heartbeat()

    # ---------------------------------------------------------- heartbeat

    def _start_heartbeat(self) -> DagStream:
        self._reported_at = asyncio.get_running_loop().time()
        self._heartbeat = asyncio.ensure_future(self._heartbeat_loop())
        return self

    async def _heartbeat_loop(self) -> None:
        """While the stream is open and quiet, tell the server the engine is alive."""
        loop = asyncio.get_running_loop()
        every = float(config().engine_heartbeat_seconds)
        while True:
            await asyncio.sleep(max(0.0, self._reported_at + every - loop.time()))
            if loop.time() - self._reported_at < every:
                continue  # a flush reported since: that was the heartbeat
            self._reported_at = loop.time()
            try:
                if not await _db(services.heartbeat)(self.dag_id):
                    return  # the run has ended: nothing left to watch
            except Exception:
                log.warning("dagstream engine: heartbeat failed", exc_info=True)

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
        seq: int = await self._submit(
            "node_state", node_id=node_id, status=status, output=output, metrics=metrics
        )
        return seq

    async def edge_active(self, src: str, dst: str) -> int:
        """Report data flowing along an edge; returns the event's seq."""
        seq: int = await self._submit("edge_active", src=src, dst=dst)
        return seq

    async def mutate(self, mutation: dict[str, Any]) -> int:
        """Apply ``add_node`` / ``remove_node`` / ``add_edge`` / ``remove_edge``."""
        seq: int = await self._submit("mutate", mutation=mutation)
        return seq

    async def cost(
        self, *, spent: float | None = None, budget: float | None = None, add: float | None = None
    ) -> int:
        """Report the total spent so far (absolute), or ``add`` to it, and/or a new budget."""
        seq: int = await self._submit("cost", spent=spent, budget=budget, add=add)
        return seq

    async def error(self, message: str, *, node_id: str | None = None) -> int:
        """Report an error without ending the run."""
        seq: int = await self._submit("error", message=message, node_id=node_id)
        return seq

    async def complete(self, results: Any = None) -> int:
        """End the run as completed with its results."""
        seq: int = await self._submit("complete", results=results)
        return seq

    async def fail(self, message: str, *, node_id: str | None = None) -> int:
        """End the run as failed, saying why."""
        seq: int = await self._submit("fail", message=message, node_id=node_id)
        return seq

    async def set_state(self, state_: Literal["paused", "running", "cancelled"]) -> int:
        """Engine-side transition: pause or resume on its own, or confirm a cancel."""
        seq: int = await self._submit("set_state", state=state_)
        return seq

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
        gate: Gate = await self._submit(
            "open_gate",
            node_id=node_id,
            presentation=presentation,
            timeout_at=timeout_at,
            default=default,
        )
        poll = config().idle_check_seconds
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
        poll = config().idle_check_seconds
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
        """The people's commands this stream has not returned yet, without waiting.

        While reports are queued or being written, that is what the last flush
        brought back: each flush tells whether anyone else wrote to the DAG
        since the previous one, and returns their commands (so the news is at
        most one flush old, a few milliseconds). With nothing to write, it
        reads the database.
        """
        if self._queue or self._flusher is not None:
            rows = [row for row in self._learned if row[0] > self._cursor]
        else:
            rows, _ = await _db(state.commands_after)(self.dag_id, self._cursor)
        self._learned.clear()
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
            self._wake.set()
            self._wake = asyncio.Event()

    async def close(self) -> None:
        """Write what is queued, stop listening and the heartbeat; raise a ``nowait``
        refusal not yet raised."""
        try:
            await self.flush()
        finally:
            await self._stop_listening()

    async def _stop_listening(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
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


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class Reporter:
    """``stream.nowait``: the reports of :class:`DagStream` that return at once.

    Each queues its report for the next flush (within milliseconds) and returns
    None; a refusal is raised by the stream's next call, ``flush()`` or
    ``close()``. With ``ENGINE_BUFFER`` reports waiting, it raises
    :class:`BufferFull` instead.
    """

    def __init__(self, submit: Callable[..., None]) -> None:
        self._submit = submit

    def node_state(
        self,
        node_id: str,
        status: str,
        *,
        output: Any = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self._submit("node_state", node_id=node_id, status=status, output=output, metrics=metrics)

    def edge_active(self, src: str, dst: str) -> None:
        self._submit("edge_active", src=src, dst=dst)

    def mutate(self, mutation: dict[str, Any]) -> None:
        self._submit("mutate", mutation=mutation)

    def cost(
        self, *, spent: float | None = None, budget: float | None = None, add: float | None = None
    ) -> None:
        self._submit("cost", spent=spent, budget=budget, add=add)

    def error(self, message: str, *, node_id: str | None = None) -> None:
        self._submit("error", message=message, node_id=node_id)


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
        if not self.thread.is_alive():
            self.loop.close()


class SyncDagStream:
    """The engine API for synchronous code; the same operations as :class:`DagStream`."""

    def __init__(self, stream: DagStream, loop: _LoopThread) -> None:
        self._stream = stream
        self._loop = loop
        self.dag_id = stream.dag_id
        # nowait blocks this thread while ENGINE_BUFFER reports wait: back-pressure.
        self._room = threading.BoundedSemaphore(config().engine_buffer)
        self.nowait = Reporter(self._submit_nowait)

    def _submit_nowait(self, kind: DeltaKind, **args: Any) -> None:
        error, self._stream._deferred = self._stream._deferred, None
        if error is not None:
            raise error
        self._room.acquire()
        self._loop.loop.call_soon_threadsafe(
            self._stream._enqueue_tracked, Delta(kind, args), self._room.release
        )

    def flush(self) -> None:
        """Wait until every report made so far is durable; raise a ``nowait`` refusal."""
        self._loop.run(self._stream.flush())

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
