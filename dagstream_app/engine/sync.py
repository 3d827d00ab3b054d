"""The engine API for synchronous code: :class:`SyncDagStream`, a blocking DagStream.

Each call runs the :class:`~dagstream_app.engine.DagStream` operation on a
:class:`~dagstream_app.engine.LoopThread` and blocks until it is done. The stream
either makes its own loop thread (``create`` / ``open``), which ``close()`` stops,
or runs on one it is given and shares, which ``close()`` leaves running.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from dagstream_app.conf import config
from dagstream_app.engine.decisions import Command, Decision, GateDecision
from dagstream_app.engine.loop import LoopThread
from dagstream_app.engine.reporting import Reporter, RunReports
from dagstream_app.engine.stream import DagStream
from dagstream_app.services import Delta

__all__ = ["SyncDagStream"]

T = TypeVar("T")


class SyncDagStream(RunReports[int]):
    """The engine API for synchronous code; the same operations as :class:`DagStream`.

    Its reports (:class:`~.reporting.RunReports`) block until the event is
    durable and return its seq. Built on a shared ``loop``, ``close()`` leaves
    that loop running; ``create`` / ``open`` without one make a loop the
    stream owns and stops on ``close()``.
    """

    def __init__(self, stream: DagStream, loop: LoopThread, *, owns_loop: bool = False) -> None:
        self.stream = stream
        self._loop = loop
        self._owns_loop = owns_loop
        self.dag_id = stream.dag_id
        # nowait blocks this thread while ENGINE_BUFFER reports wait: back-pressure.
        self._room = threading.BoundedSemaphore(config().engine_buffer)
        self.nowait = Reporter(self._submit_nowait)

    @classmethod
    def create(
        cls,
        dag_id: str,
        *,
        name: str = "",
        nodes: Iterable[Any] = (),
        edges: Iterable[Any] = (),
        budget: float | None = None,
        loop: LoopThread | None = None,
    ) -> SyncDagStream:
        """:meth:`DagStream.create`; on ``loop`` if given (shared), else on a loop of its own."""
        making = DagStream.create(dag_id, name=name, nodes=nodes, edges=edges, budget=budget)
        return cls._on(loop, making)

    @classmethod
    def open(cls, dag_id: str, *, loop: LoopThread | None = None) -> SyncDagStream:
        """:meth:`DagStream.open`; on ``loop`` if given (shared), else on a loop of its own."""
        return cls._on(loop, DagStream.open(dag_id))

    @classmethod
    def _on(cls, loop: LoopThread | None, making: Coroutine[Any, Any, DagStream]) -> SyncDagStream:
        """The stream ``making`` makes, on ``loop`` (shared) or on a loop of its own."""
        running = loop or LoopThread()
        try:
            stream = running.run(making)
        except BaseException:
            if loop is None:
                running.stop()
            raise
        return cls(stream, running, owns_loop=loop is None)

    def submit(self, delta: Delta) -> int:
        """Report ``delta`` and block until it is durable; its event's seq."""
        return self._loop.run(self.stream.submit(delta))

    def _submit_nowait(self, delta: Delta) -> None:
        self.stream.raise_deferred()
        self._room.acquire()
        self._loop.loop.call_soon_threadsafe(self.stream.enqueue_tracked, delta, self._room.release)

    def flush(self) -> None:
        """Wait until every report made so far is durable; raise a ``nowait`` refusal."""
        self._loop.run(self.stream.flush())

    def status(self) -> str:
        """The DAG's current execution status."""
        return self._loop.run(self.stream.status())

    def gate(
        self,
        node_id: str,
        presentation: dict[str, Any],
        *,
        timeout: float | None = None,
        default: Decision | None = None,
        assignees: Sequence[str] = (),
        quorum: int = 1,
    ) -> GateDecision:
        """Open a human gate and block until its decision (see :meth:`DagStream.gate`)."""
        return self._loop.run(
            self.stream.gate(
                node_id,
                presentation,
                timeout=timeout,
                default=default,
                assignees=assignees,
                quorum=quorum,
            )
        )

    def commands(self) -> Iterator[Command]:
        """Block for each command in turn; ends when the run ends."""
        iterator = self.stream.commands()
        while True:
            try:
                yield self._loop.run(_anext(iterator))
            except StopAsyncIteration:
                return

    def pending_commands(self) -> list[Command]:
        """The commands that arrived since the last look, without waiting."""
        return self._loop.run(self.stream.pending_commands())

    def close(self) -> None:
        """Write what is queued and stop listening; stop the loop if this stream made it."""
        try:
            self._loop.run(self.stream.close())
        finally:
            if self._owns_loop:
                self._loop.stop()


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()
