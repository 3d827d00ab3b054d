"""Every worker's main process releases held tasks whose wait is over, without a pool slot.

:class:`ReleaseHeld` is a consumer bootstep (``install()`` adds it): every
``release_poll`` seconds the worker's own timer (the event loop of a prefork
worker's main process, a timer thread on other pools) calls
:func:`dagstream_app.celery.holding.release`. That is what carries out a
resume, a gate's decision, a budget gate's decision or a cancel while every
pool process is busy; the database makes each happen once across all workers.
Every ``ENGINE_HEARTBEAT_SECONDS`` it also reports the runs with held tasks alive
(:func:`dagstream_app.services.heartbeat_held`): no pool process watches a parked run.

Importing this module does not need Django set up.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from dagstream_app.celery.options import options

__all__ = ["ReleaseHeld"]

log = logging.getLogger(__name__)


class ReleaseHeld(bootsteps.StartStopStep):  # type: ignore[misc]
    """Looks for held tasks to release every ``release_poll`` seconds while the consumer runs."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entries: list[Any] = []

    def start(self, parent: Any) -> None:
        from dagstream_app.conf import config

        beat = float(config().engine_heartbeat_seconds)
        self.timer_entries = [
            parent.timer.call_repeatedly(options.release_poll, _release),
            parent.timer.call_repeatedly(beat, _heartbeat),
        ]

    def stop(self, parent: Any) -> None:
        for entry in self.timer_entries:
            entry.cancel()
        self.timer_entries = []

    shutdown = stop


def _release() -> None:
    from django.db import close_old_connections

    from dagstream_app.celery import holding

    close_old_connections()  # a connection the database dropped is opened again
    try:
        holding.release()
    except Exception:  # the next look tries again
        log.warning("dagstream: cannot release held tasks", exc_info=True)


def _heartbeat() -> None:
    """Runs parked here have no task in any pool process to report for them: the worker
    that holds their tasks is their engine, and says it is alive."""
    from django.db import close_old_connections

    from dagstream_app import services

    close_old_connections()
    try:
        services.heartbeat_held()
    except Exception:  # the next beat tries again
        log.warning("dagstream: cannot report held runs alive", exc_info=True)
