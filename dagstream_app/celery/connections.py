"""Celery workers use plain database connections, not Django's connection pool.

Celery's Django fixup closes the process's connection pool before and after
every task of a prefork worker (``close_pool()``), while dagstream's own threads
in that process (a run's writer and watcher, the release of held tasks) are
using it: they fail with ``PoolClosed``, and a run's watcher that stops no
longer carries out a cancel. A worker is no ASGI server (its threads are few and
long-lived), so it gets what the pool is for without it: :func:`drop_pools`
takes the pool out of every database's settings when the worker starts, before
any pool process is made, and each thread keeps a connection of its own.
:func:`own_connection` is the one the fixup does not close, for what a worker
reads before every task.

Importing this module does not need Django set up.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["drop_pools", "forget_own", "own_connection"]


def drop_pools(**_: Any) -> None:
    """Take Django's connection pool out of this worker's database settings (the
    ``worker_init`` signal), closing any pool already opened."""
    from django.conf import settings
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
    for alias in connections:
        wrapper = connections[alias]
        if alias in getattr(type(wrapper), "_connection_pools", {}):
            wrapper.close_pool()  # type: ignore[attr-defined]  # opened before: close it
        wrapper.settings_dict.get("OPTIONS", {}).pop("pool", None)
        settings.DATABASES[alias].get("OPTIONS", {}).pop("pool", None)  # the fixup reads it


class _Own(threading.local):
    wrapper: BaseDatabaseWrapper | None = None


_own = _Own()


def own_connection() -> BaseDatabaseWrapper:
    """This thread's connection for what a worker reads before every task (its run's
    status): Celery's fixup closes Django's connections before and after each task,
    and opening one per task cost a no-op task more than the task itself. Not one of
    ``django.db.connections``, so the fixup leaves it open; :func:`forget_own` drops it
    in a new pool process (the parent's is not the child's)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    if _own.wrapper is None:
        _own.wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
    return _own.wrapper


def forget_own(*, close: bool = False) -> None:
    """Drop this thread's own connection; ``close``: close it too (it failed: the
    next read opens another). After a fork it is only dropped: the parent's socket
    or file is not this process's to close."""
    wrapper, _own.wrapper = _own.wrapper, None
    if close and wrapper is not None:
        with contextlib.suppress(Exception):
            wrapper.close()
