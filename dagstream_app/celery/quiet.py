"""Celery's error for a chord that a cancel stopped, told as what it is.

A cancel revokes every task of the run, chord header tasks included. Celery's
Redis result backend then logs the chord as an error, with a traceback:
``Chord '…' raised: ChordError("Dependency … raised TaskRevokedError('terminated')")``.
For a run that dagstream cancelled that is no error (the run ended as a person
asked), so :class:`CancelledChords` turns that one record into an INFO line
with no traceback. Every other chord error stays as Celery logs it.

This module imports nothing of Django at import time; the filter reads the
database only for a chord whose header task was revoked.
"""

from __future__ import annotations

import logging
import re

from celery.exceptions import ChordError, TaskRevokedError

__all__ = ["CHORD_LOGGERS", "CancelledChords", "install_filter"]

# Where Celery logs a chord whose header task failed (the Redis result backend).
CHORD_LOGGERS = ("celery.backends.redis",)
_DEPENDENCY = re.compile(r"Dependency (\S+) raised TaskRevokedError\(")
_STOPPED = ("cancelling", "cancelled")


class CancelledChords(logging.Filter):
    """Say in one INFO line that a chord of a cancelled run stopped; drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, ChordError) or not isinstance(exc.__cause__, TaskRevokedError):
            return True
        match = _DEPENDENCY.match(str(exc))
        dag_id = _cancelled_run(match.group(1)) if match else None
        if dag_id is None:
            return True  # not a run dagstream cancelled: Celery's error stands
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info, record.exc_text = None, None
        record.msg = "dagstream: run %s was cancelled; its chord stopped (task %s revoked)"
        record.args = (dag_id, match.group(1) if match else "")
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _cancelled_run(task_id: str) -> str | None:
    """The DAG of the task's node, if that run is cancelled (or being cancelled)."""
    try:
        from dagstream_app.models import Node

        found = (
            Node.objects.filter(node_id=task_id, dag__status__in=_STOPPED)
            .values_list("dag_id", flat=True)
            .first()
        )
    except Exception:  # noqa: BLE001 - a log filter never raises; the record stays as it was
        return None
    return str(found) if found is not None else None


def install_filter() -> None:
    """Add the filter to Celery's chord loggers (once, however often it is called)."""
    for name in CHORD_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, CancelledChords) for f in logger.filters):
            logger.addFilter(CancelledChords())
