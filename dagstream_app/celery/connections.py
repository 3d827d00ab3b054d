"""Celery workers use plain database connections, not Django's connection pool.

Celery's Django fixup closes the process's connection pool before and after
every task of a prefork worker (``close_pool()``), while dagstream's own threads
in that process (a run's writer and watcher, the release of held tasks) are
using it: they fail with ``PoolClosed``, and a run's watcher that stops no
longer carries out a cancel. A worker is no ASGI server (its threads are few and
long-lived), so it gets what the pool is for without it: :func:`drop_pools`
takes the pool out of every database's settings when the worker starts, before
any pool process is made, and each thread keeps a connection of its own.

Importing this module does not need Django set up.
"""

from __future__ import annotations

from typing import Any

__all__ = ["drop_pools"]


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
