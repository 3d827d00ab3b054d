"""This worker process's runs: the registry, its one event-loop thread, and each run's watcher.

A process keeps one :class:`~dagstream_app.celery.runs.Run` per DAG its tasks
belong to. The first task of a run to run here attaches the run's stream to the
process's :class:`~dagstream_app.engine.LoopThread` (shared by every run's stream)
and starts a watcher on that loop that follows the DAG's status (pause, resume,
cancel) for the tasks waiting to start. A pool child forgets its parent's.

Django must be set up before this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

from dagstream_app import services, state
from dagstream_app.celery.connections import forget_own
from dagstream_app.celery.runs import Run
from dagstream_app.conf import config
from dagstream_app.engine import DagStream, LoopThread
from dagstream_app.engine.control import wait_for
from dagstream_app.protocol import TERMINAL_STATUSES

__all__ = ["Registry", "registry", "reset_after_fork"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Registry:
    """This process's runs, its event-loop thread, and the tasks running here."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, Run] = {}
        self.loop: LoopThread | None = None

    def run(self, dag_id: str, *, here: bool) -> Run | None:
        """The run of ``dag_id``; ``here``: a task of it starts in this process (report
        through a stream, follow its status; the task claims the run until its
        postrun :meth:`~Run.unclaim` s it). None if the DAG is gone."""
        while True:
            run = self._run(dag_id, here=here)
            if run is None or not here or run.claim():
                return run
            # Retired by its watcher a moment ago: read it again.

    def _run(self, dag_id: str, *, here: bool) -> Run | None:
        with self.lock:
            run = self.runs.get(dag_id)
            if run is not None and run.retired:
                run = None
            if run is not None and (
                run.writer.stream is not None or not here or run.status in TERMINAL_STATUSES
            ):
                return run
            snapshot = state.snapshot(dag_id)
            if snapshot is None:
                return None
            if run is None:
                run = self.runs[dag_id] = Run(snapshot)
            if here and snapshot.status not in TERMINAL_STATUSES:
                if self.loop is None:
                    self.loop = LoopThread()
                engine = run.writer.attach(self.loop)
                asyncio.run_coroutine_threadsafe(_watch(run, engine), self.loop.loop)
            return run

    def forget(self, dag_id: str, run: Run) -> None:
        """Forget ``run`` (its watcher ended), unless ``dag_id`` has a newer run already.

        Called on the loop thread, so it never takes :attr:`lock`: :meth:`run`
        holds it while it waits for this very loop to open a stream (a deadlock
        that hung a worker process: a run's watcher ended as a task of another
        run started). A dict operation needs no lock under the GIL.
        """
        if self.runs.get(dag_id) is run:
            self.runs.pop(dag_id, None)

    def flush_all(self) -> None:
        for run in list(self.runs.values()):
            run.flush()


async def _watch(run: Run, stream: DagStream) -> None:
    """Follow the run's status: pause holds new tasks, cancel is carried out here too.

    People's commands wake it at once (the DAG's control group); other changes (a
    budget pause by another process) are read every ``IDLE_CHECK_SECONDS``. Ends
    with the run, or once it is parked (:func:`_parked`): a run that waits for a
    person costs this process nothing.
    """
    poll = config().idle_check_seconds
    look = asyncio.Event()

    async def listen() -> None:
        async for _ in stream.commands():
            look.set()

    listener = asyncio.ensure_future(listen())
    loop = asyncio.get_running_loop()
    try:
        while True:
            look.clear()
            progress = await loop.run_in_executor(None, _in_thread, state.progress, run.dag_id)
            status = "failed" if progress is None else progress[1]
            if status != run.status:
                await loop.run_in_executor(None, _in_thread, run.set_status, status)
            if status == "cancelling":
                await loop.run_in_executor(None, _in_thread, run.cancel)
            elif status in TERMINAL_STATUSES:
                return
            if run.idle() and await loop.run_in_executor(None, _in_thread, _parked, run):
                return
            await wait_for(look, poll)
    except Exception:
        log.warning("dagstream: watcher of run %s stopped", run.dag_id, exc_info=True)
    finally:
        listener.cancel()
        await run.writer.drain_and_flush()
        with contextlib.suppress(services.DagstreamError):  # refusals were logged as they came
            await stream.close()
        registry.forget(run.dag_id, run)  # a late task of the run reads it again


def _parked(run: Run) -> bool:
    """True, and the run retired here, if it is parked: a task of it is held (it waits
    for a person) and none runs in this process. Its held tasks come back through a
    worker's :class:`~dagstream_app.celery.releasing.ReleaseHeld`, which also reports
    it alive; a task of it that starts here later reads it again."""
    return services.holds(run.dag_id) and run.retire()


def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in an executor thread, closing the connection it opened."""
    try:
        return func(*args)
    finally:
        connections.close_all()


registry = Registry()


def reset_after_fork() -> None:
    """In a new pool child: forget the parent's runs, loop and locks (they are not ours)."""
    global registry
    registry = Registry()
    forget_own()
