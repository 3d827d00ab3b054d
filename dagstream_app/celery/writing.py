"""How one run's reports leave this worker process, and how its gates hear back.

A process where a task of the run runs reports through a
:class:`~dagstream_app.engine.SyncDagStream` on the process's shared
:class:`~dagstream_app.engine.LoopThread`: a task's reports wait
``report_window`` seconds for others to join them, then go to the stream's
``nowait`` together (one transaction for all of them). Elsewhere (a pool's
main process hearing of a lost worker) reports are applied at once, so a
process that forks pool children never runs the loop thread before it forks.

Django must be set up before this module is imported.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from dagstream_app import services
from dagstream_app.celery.options import options
from dagstream_app.conf import config
from dagstream_app.engine import BufferFull, DagStream, GateDecision, LoopThread, SyncDagStream
from dagstream_app.engine.decisions import Decision
from dagstream_app.services import DagstreamError, Delta

__all__ = ["RunWriter", "refused"]

log = logging.getLogger(__name__)


def refused(exc: DagstreamError) -> None:
    """Log a refused report: a late one for a run that has ended quietly, others loudly."""
    # A run that has ended refuses late reports (a task of a cancelled run that
    # finished anyway): expected, so quiet; anything else is worth a warning.
    level = logging.DEBUG if exc.code == "conflict" else logging.WARNING
    log.log(level, "dagstream: report refused: %s", exc.message)


class RunWriter:
    """One run's way out of this process: its stream here (once attached), or the database."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        # Set by attach(), once a task of the run runs in this process.
        self.stream: SyncDagStream | None = None
        self.engine: DagStream | None = None
        self.loop: LoopThread | None = None
        self._pending: list[Delta] = []  # reports waiting for the report window
        self._pending_lock = threading.Lock()

    def attach(self, loop: LoopThread) -> DagStream:
        """Report through a stream of the run on ``loop`` (shared by the process's runs)."""
        self.loop = loop
        self.engine = loop.run(DagStream.open(self.dag_id))
        self.stream = SyncDagStream(self.engine, loop)
        return self.engine

    def send(self, deltas: list[Delta]) -> None:
        """Report without waiting (through the stream) or at once (without one)."""
        if self.stream is None or self.loop is None:
            self.apply(deltas)
            return
        with self._pending_lock:
            wake = not self._pending
            self._pending.extend(deltas)
            full = len(self._pending) >= config().engine_buffer
        if full:
            self.flush()  # back-pressure: the task waits for the database
        elif wake:
            self.loop.loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        assert self.loop is not None
        self.loop.loop.call_later(
            options.report_window, lambda: asyncio.ensure_future(self._drain())
        )

    async def _drain(self) -> None:
        """Hand the waiting reports to the stream (on its loop)."""
        assert self.engine is not None
        with self._pending_lock:
            batch, self._pending = self._pending, []
        for delta in batch:
            for _ in range(3):
                try:
                    self.engine.nowait.submit(delta)
                    break
                except BufferFull:
                    await self._flush_engine()
                except DagstreamError as exc:  # an earlier report's refusal
                    refused(exc)

    async def _flush_engine(self) -> None:
        assert self.engine is not None
        try:
            await self.engine.flush()
        except DagstreamError as exc:
            refused(exc)

    async def drain_and_flush(self) -> None:
        """On the loop: hand the waiting reports to the stream and wait until they are durable."""
        await self._drain()
        await self._flush_engine()

    def flush(self) -> None:
        """Wait until every report made so far is durable."""
        if self.loop is not None and self.engine is not None:
            self.loop.run(self.drain_and_flush())

    def apply(self, deltas: Sequence[Delta]) -> None:
        """Write ``deltas`` at once, in one transaction, from this thread."""
        if not deltas:
            return
        try:
            results = services.apply(self.dag_id, deltas).results
        except DagstreamError as exc:
            refused(exc)
            return
        for result in results:
            if isinstance(result, DagstreamError):
                refused(result)

    def end(self, delta: Delta) -> None:
        """Complete or fail the run (durable); a run that already ended is left as it is."""
        if self.stream is None:
            self.apply([delta])
            return
        try:
            self.stream.submit(delta)
        except DagstreamError as exc:
            refused(exc)

    def gate(
        self,
        node_id: str,
        presentation: dict[str, Any],
        hold: float,
        *,
        timeout: float | None = None,
        default: Decision | None = None,
    ) -> GateDecision | None:
        """Open the gate at ``node_id`` (once) and wait up to ``hold`` s: its decision or None."""
        assert self.engine is not None and self.loop is not None
        opening = self.engine.gate(node_id, presentation, timeout=timeout, default=default)
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(opening, hold), self.loop.loop)
        try:
            return future.result()
        except (TimeoutError, FutureTimeout):
            return None
