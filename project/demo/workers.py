"""How the example project starts a ``celery worker`` (the demo, the tests, the benchmark)."""

from __future__ import annotations

import sys


def worker_command(app: str, node: str, *extra: str, concurrency: int = 2) -> list[str]:
    """``celery -A app worker`` with a prefork pool of ``concurrency`` processes.

    Gossip, mingle and heartbeats are off: one worker needs none of them, and it
    starts faster. ``node`` names it (``name@host``); ``extra`` adds options.
    """
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{node}@%h",
        *extra,
    ]
