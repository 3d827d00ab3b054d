"""The async engine handle: :class:`DagStream`, its report queue, flusher and heartbeat.

Reports queue up in the stream and are written by one flusher task: every report
made while a flush is in the database goes into the next one, so any number of
concurrent calls share a transaction (:func:`services.apply`), and the events
are published from the event loop, not from the database thread. Awaited calls
return once their event is durable; ``stream.nowait`` reports without waiting,
with bounded buffering (``ENGINE_BUFFER``) and its errors raised by the next
call, by :meth:`DagStream.flush` or by :meth:`DagStream.close`. With
``stream.flush_window`` seconds, flushes of ``nowait`` reports start at most
that often: fewer, fuller transactions for engines that report a little at a
time (an awaited report, ``flush()`` or a full batch goes at once).

Gates and commands are read from the database, woken early by the DAG's
control group (:mod:`.control`).

When the database is away, reports and reads wait for it (:mod:`.outage`): a
flush that fails with a connection error is tried again, the same batch at
the head of the queue, for up to ``DB_RETRY_SECONDS``; one whose COMMIT went
unanswered is looked up first, so nothing is written twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import contextmanager, suppress
from datetime import timedelta
from functools import partial
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.utils import timezone

from dagstream_app import broadcast, services, state
from dagstream_app.conf import config
from dagstream_app.engine.control import ControlChannel, wait_for
from dagstream_app.engine.decisions import Command, Decision, GateDecision
from dagstream_app.engine.outage import DatabaseUnavailable, patiently, write_batch
from dagstream_app.engine.reporting import BufferFull, Reporter, RunReports
from dagstream_app.layer_messages import PublishedEvent
from dagstream_app.models import Gate
from dagstream_app.protocol import TERMINAL_STATUSES
from dagstream_app.services import Delta

__all__ = ["DagStream"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
# Deltas coalesced into one transaction at most.
_BATCH_LIMIT = 1000


def _db(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    return database_sync_to_async(func)  # type: ignore[no-any-return]


def _patient(what: str, func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """:func:`_db` of ``func``, tried again through a database outage (:func:`.patiently`)."""
    call = _db(func)

    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await patiently(what, lambda: call(*args, **kwargs))

    return run


class _Window:
    """A stream's flush window: with ``flush_window`` seconds, a flush of ``nowait``
    reports starts at most that long after the one before (more reports join it:
    fewer, fuller transactions), unless an awaited report, :meth:`DagStream.flush`
    or ``close()`` hurries it."""

    def __init__(self) -> None:
        self.hurry = asyncio.Event()
        self.urgent_calls = 0  # flush() calls waiting: no window meanwhile
        self.started = float("-inf")  # loop time the last flush started

    async def wait(self, seconds: float, queued: int) -> None:
        """Before a flush of ``queued`` reports: wait out the window, unless hurried."""
        loop = asyncio.get_running_loop()
        left = self.started + seconds - loop.time()
        if left > 0 and not self.urgent_calls and queued < _BATCH_LIMIT:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.hurry.wait(), left)
        self.hurry.clear()
        self.started = loop.time()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """While in it, every flush goes at once."""
        self.urgent_calls += 1
        self.hurry.set()
        try:
            yield
        finally:
            self.urgent_calls -= 1


class DagStream(RunReports[Coroutine[Any, Any, int]]):
    """Async handle on one DAG execution. Build it with :meth:`create` or :meth:`open`.

    Its reports (:class:`~.reporting.RunReports`) are coroutines that return
    the event's seq once it is durable.
    """

    def __init__(self, dag_id: str, *, command_cursor: int, last_seq: int = 0) -> None:
        self.dag_id = dag_id
        self._cursor = command_cursor
        # The DAG's last seq as of this stream's last flush: a flush that finds
        # it moved on (someone else wrote) brings back the commands too.
        self._known_seq = last_seq
        self._learned: list[tuple[int, str]] = []  # commands a flush brought back
        self._control = ControlChannel(dag_id)
        self._queue: deque[tuple[Delta, asyncio.Future[Any] | None]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._flushed = asyncio.Event()  # set whenever a flush ends
        self.flush_window = 0.0  # s a flush of nowait reports waits for more (_Window)
        self._window = _Window()
        self._deferred: BaseException | None = None  # a nowait report's refusal
        self.nowait = Reporter(self._submit_nowait)
        self._heartbeat: asyncio.Task[None] | None = None
        self._reported_at = 0.0  # loop time of the last flush or heartbeat

    # ---------------------------------------------------------- the queue

    def raise_deferred(self) -> None:
        """Raise the refusal of a ``nowait`` report not raised yet (once), if there is one."""
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def submit(self, delta: Delta) -> Coroutine[Any, Any, int]:
        """Queue one report; awaited, its event's seq once it is durable."""
        return self._report(delta)

    def _enqueue(self, delta: Delta, future: asyncio.Future[Any] | None) -> None:
        self._queue.append((delta, future))
        if len(self._queue) >= _BATCH_LIMIT:
            self._window.hurry.set()
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def _report(self, delta: Delta) -> Any:
        """Queue one report and wait until it is durable; its result (a seq, a gate)."""
        self.raise_deferred()
        limit = config().engine_buffer
        while len(self._queue) >= limit:  # back-pressure: wait for the database
            self._flushed.clear()
            await self._flushed.wait()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._window.hurry.set()
        self._enqueue(delta, future)
        return await future

    def _submit_nowait(self, delta: Delta) -> None:
        self.raise_deferred()
        limit = config().engine_buffer
        if len(self._queue) >= limit:
            raise BufferFull(
                f"{limit} reports of DAG {self.dag_id!r} are waiting for the database; "
                "await a report or stream.flush() to let it catch up."
            )
        self._enqueue(delta, None)

    def enqueue_tracked(self, delta: Delta, done: Callable[[], None]) -> None:
        """Queue a report made by another thread's ``nowait``; ``done`` runs once it is
        written. Call it on the stream's loop; a refusal is raised by its next call."""
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
                await self._window.wait(self.flush_window, len(self._queue))
                count = min(len(self._queue), _BATCH_LIMIT)
                batch = [self._queue.popleft() for _ in range(count)]
                events: list[PublishedEvent] = []
                wake = False
                try:
                    apply = _db(services.apply)
                    flushed = await write_batch(
                        self.dag_id,
                        count,
                        partial(
                            apply,
                            self.dag_id,
                            [delta for delta, _ in batch],
                            publish=False,
                            known_seq=self._known_seq,
                            command_cursor=self._cursor,
                        ),
                    )
                    results: list[Any] = flushed.results
                    events, wake = flushed.events, flushed.wake_engine
                    if flushed.last_seq:
                        self._known_seq = flushed.last_seq
                        self._learned.extend(flushed.commands)
                except DatabaseUnavailable as exc:
                    # Waited long enough: this batch and every report queued
                    # behind it fail, in order; the next report tries afresh.
                    batch.extend(self._queue)
                    self._queue.clear()
                    results = [exc] * len(batch)
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
        with self._window.urgent():
            while self._flusher is not None:
                await asyncio.shield(self._flusher)
        self.raise_deferred()

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
        progress = await _patient("DagStream.open", state.progress)(dag_id)
        if progress is None:
            raise services.NotFound(f"Unknown DAG {dag_id!r}.")
        last_seq, status = progress
        cursor = last_seq
        if status in ("paused", "cancelling"):
            # A person paused or cancelled while no engine was attached: the
            # command that put the run in this state is delivered first.
            latest = await _patient("DagStream.open", state.latest_command_seq)(dag_id)
            cursor = latest - 1 if latest is not None else last_seq
        return cls(dag_id, command_cursor=cursor, last_seq=last_seq)._start_heartbeat()

    # ---------------------------------------------------------- heartbeat

    def _start_heartbeat(self) -> DagStream:
        self._reported_at = asyncio.get_running_loop().time()
        self._heartbeat = asyncio.ensure_future(_heartbeat_loop(self))
        return self

    async def status(self) -> str:
        """The DAG's current execution status."""
        progress = await _patient("status()", state.progress)(self.dag_id)
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
        default: Decision | None = None,
        assignees: Sequence[str] = (),
        quorum: int = 1,
    ) -> GateDecision:
        """Open a human gate and wait for its decision (first decision wins).

        A gate decided earlier (say, while this engine was away) returns at once; if
        the run ends first, its gates close and this raises :class:`Conflict`. With
        ``timeout`` seconds, ``default`` is recorded if nobody decides in time.
        ``assignees`` (usernames, ``"group:<name>"``) may decide it; ``quorum=N`` needs
        N approvals from distinct people: the decision then has every vote (``votes``).
        """
        if (timeout is None) != (default is None):
            raise ValueError("timeout and default go together.")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative.")
        await self._control.listen()
        timeout_at = timezone.now() + timedelta(seconds=timeout) if timeout is not None else None
        wake = self._control.wake
        asked: dict[str, Any] = {
            "node_id": node_id,
            "presentation": presentation,
            "assignees": assignees,
        }
        asked |= {"quorum": quorum, "timeout_at": timeout_at, "default": default}
        gate: Gate = await self._report(Delta("open_gate", asked))
        poll = config().idle_check_seconds
        while True:
            if gate.status == Gate.Status.CLOSED:
                raise services.Conflict(
                    f"DAG {self.dag_id!r} has ended; gate {node_id!r} was closed undecided."
                )
            if gate.status != Gate.Status.PENDING:
                return GateDecision.from_gate(gate)
            wait = poll
            if gate.timeout_at is not None:
                left = (gate.timeout_at - timezone.now()).total_seconds()
                if left <= 0:
                    try:
                        gate = await _patient("gate()", services.decide_gate)(
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
                await wait_for(wake, wait)
            wake = self._control.wake  # taken before the read, so no wake-up falls between
            found = await _patient("gate()", state.gate)(self.dag_id, node_id)
            if found is None:
                raise services.NotFound(f"Gate {node_id!r} of DAG {self.dag_id!r} vanished.")
            gate = found

    async def commands(self) -> AsyncIterator[Command]:
        """Yield each pause / resume / cancel once, in order; ends when the run ends."""
        await self._control.listen()
        poll = config().idle_check_seconds
        while True:
            wake = self._control.wake
            rows, status = await _patient("commands()", state.commands_after)(
                self.dag_id, self._cursor
            )
            for seq, kind in rows:
                self._cursor = seq
                yield Command(type=kind, seq=seq)  # type: ignore[arg-type]
            if status in TERMINAL_STATUSES:
                return
            if not rows:
                await wait_for(wake, poll)

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
            rows, _ = await _patient("pending_commands()", state.commands_after)(
                self.dag_id, self._cursor
            )
        self._learned.clear()
        if rows:
            self._cursor = rows[-1][0]
        return [Command(type=kind, seq=seq) for seq, kind in rows]  # type: ignore[arg-type]

    async def close(self) -> None:
        """Write what is queued, stop listening and the heartbeat; raise a ``nowait``
        refusal not yet raised."""
        try:
            await self.flush()
        finally:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None
            await self._control.stop()


async def _heartbeat_loop(stream: DagStream) -> None:
    """While ``stream`` is open and quiet, tell the server the engine is alive.

    While a flush is under way (waiting for the database, maybe), it is the
    heartbeat; a heartbeat that fails is logged once until one succeeds, and
    not tried again before its next turn.
    """
    loop = asyncio.get_running_loop()
    every = float(config().engine_heartbeat_seconds)
    failing = False
    while True:
        await asyncio.sleep(max(0.0, stream._reported_at + every - loop.time()))
        if loop.time() - stream._reported_at < every:
            continue  # a flush reported since: that was the heartbeat
        stream._reported_at = loop.time()
        if stream._flusher is not None:
            continue  # a flush is under way: it will report, or is waiting
        try:
            if not await _db(services.heartbeat)(stream.dag_id):
                return  # the run has ended: nothing left to watch
            failing = False
        except Exception:
            if not failing:
                log.warning("dagstream engine: heartbeat failed", exc_info=True)
            failing = True
