"""The database read pool: a few threads of their own for the sockets' reads.

Reads run here, not in the one thread that every write and Channels' own queries
share: a busy writer never holds up a handshake, a replay or a tick. The threads
(and their connections) live as long as the process.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from channels.db import database_sync_to_async
from django.db import connections

__all__ = ["READ_THREADS", "close_read_connections", "read"]

T = TypeVar("T")

READ_THREADS = 4
_readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="dagstream-read")


def read(func: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """``func``, a read, as a coroutine run on the read threads."""
    return database_sync_to_async(  # type: ignore[no-any-return]
        func, thread_sensitive=False, executor=_readers
    )


def close_read_connections() -> None:
    """Close the read threads' database connections (say, before a test database goes)."""
    barrier = threading.Barrier(READ_THREADS)

    def close() -> None:
        barrier.wait(timeout=10)  # one call per thread: each waits for the others
        connections.close_all()

    for future in [_readers.submit(close) for _ in range(READ_THREADS)]:
        future.result(timeout=20)
