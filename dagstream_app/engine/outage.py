"""Waiting out a database outage: which errors are worth another attempt, and for how long.

A monitoring layer must not kill the pipeline it watches. When the database
goes away (a restart, a fail-over, a dropped connection), the engine API keeps
what it was asked to write and tries again with a capped backoff, for up to
``DB_RETRY_SECONDS`` from the first failed attempt; past it, the call raises
:class:`DatabaseUnavailable`. Only connection-level errors are retried (see
:func:`is_transient`); every other error is raised at once, as before.

The connection an error left broken is closed in the database thread by
channels' ``database_sync_to_async`` (``close_old_connections`` after every
call: an unusable connection is closed, or given back to Django's pool, which
discards it), so the next attempt opens a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from channels.db import database_sync_to_async
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

from dagstream_app.conf import config
from dagstream_app.services import Flushed
from dagstream_app.services.engine_deltas import CommitUnknown, committed

__all__ = ["DatabaseUnavailable", "Outage", "is_transient", "patiently", "write_batch"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# Backoff between attempts: from this, doubling, up to the cap (s).
_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0


class DatabaseUnavailable(OperationalError):
    """The database stayed unreachable for ``DB_RETRY_SECONDS``; nothing of the call was written.

    A :class:`django.db.OperationalError`, so code that caught that still catches
    it; the last connection error is its ``__cause__``.
    """


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says the database is away for now (worth another attempt).

    Django's ``InterfaceError`` and ``OperationalError`` (a dropped or refused
    connection, a server shutting down or starting up, a pool with no
    connection to give), except on SQLite, where an ``OperationalError`` is
    mostly for good (no such table, disk I/O) and only "database is locked",
    a writer holding the lock past the connection's ``timeout``, is waited out.
    """
    if isinstance(error, DatabaseUnavailable):
        return False  # already waited out
    if isinstance(error, CommitUnknown):
        return error.__cause__ is not None and is_transient(error.__cause__)
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    if connections[DEFAULT_DB_ALIAS].vendor == "sqlite":
        return "locked" in str(error)
    return True


class Outage:
    """One caller's view of an outage: when it began, and how long to wait before trying again."""

    def __init__(self, what: str, error: BaseException) -> None:
        self.what = what
        self._loop = asyncio.get_running_loop()
        self.started = self._loop.time()
        self._delay = _FIRST_DELAY
        log.warning(
            "dagstream engine: the database is unavailable (%s: %s); %s waits for it "
            "up to DB_RETRY_SECONDS=%s",
            type(error).__name__,
            str(error).strip(),
            what,
            config().db_retry_seconds,
        )

    async def wait(self, error: BaseException) -> None:
        """Sleep before the next attempt; past ``DB_RETRY_SECONDS``, raise
        :class:`DatabaseUnavailable` from ``error`` (the last failure) instead."""
        limit = float(config().db_retry_seconds)
        elapsed = self._loop.time() - self.started
        if elapsed >= limit:
            raise DatabaseUnavailable(
                f"The database has been unavailable for {elapsed:.1f} s "
                f"(DB_RETRY_SECONDS={limit:g}); {self.what} gave up: {error}"
            ) from error
        await asyncio.sleep(min(self._delay, limit - elapsed))
        self._delay = min(self._delay * 2, _MAX_DELAY)

    def ended(self) -> None:
        """The database answered again."""
        seconds = self._loop.time() - self.started
        log.warning("dagstream engine: the database is back after %.1f s", seconds)


async def patiently(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, tried again through an outage of up to ``DB_RETRY_SECONDS``.

    For reads, and for writes whose repeat is harmless (a gate decided twice is
    refused the second time, and the caller reads the decision).
    """
    outage: Outage | None = None
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            outage = outage or Outage(what, exc)
            await outage.wait(exc)
            continue
        if outage is not None:
            outage.ended()
        return result


async def write_batch(dag_id: str, count: int, apply: Callable[[], Awaitable[Flushed]]) -> Flushed:
    """``await apply()`` (``services.apply`` of ``count`` reports), tried again through an outage.

    A connection error before the COMMIT means nothing was written: the batch
    is applied again. One during the COMMIT (:class:`CommitUnknown`) is settled
    first (:func:`~dagstream_app.services.engine_deltas.committed`): if the
    flush was written, its results stand and nothing is written twice.
    """
    try:
        return await apply()
    except Exception as exc:
        if not is_transient(exc):
            raise
        error: Exception = exc
    unsure = error if isinstance(error, CommitUnknown) else None
    outage = Outage(f"the flush of {count} reports", error)
    was_written = database_sync_to_async(committed)
    while True:
        await outage.wait(error)
        try:
            if unsure is not None:
                if await was_written(dag_id, unsure):
                    flushed = unsure.flushed
                    break
                unsure = None  # not written: apply it again
            flushed = await apply()
            break
        except Exception as exc:
            if not is_transient(exc):
                raise
            error = exc
            if isinstance(exc, CommitUnknown):
                unsure = exc
    outage.ended()
    return flushed
