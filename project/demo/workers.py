"""How the example project sets up Celery and starts a worker (demo, tests, benchmark)."""

from __future__ import annotations

import sys
from typing import Any


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


def configure(app: Any, broker_url: str, prefix: str, **more: Any) -> None:
    """Broker and results on Redis at ``broker_url``, every key under ``prefix``.

    A prefix of its own per deployment (or test run) keeps queues, results and
    control messages apart on a shared Redis. ``more`` adds Celery settings.
    """
    keys = {"global_keyprefix": prefix}
    app.conf.update(
        broker_url=broker_url,
        result_backend=broker_url,
        broker_transport_options=keys,
        result_backend_transport_options=keys,
        task_default_queue=f"{prefix}celery",
        broker_connection_retry_on_startup=True,
        **more,
    )
