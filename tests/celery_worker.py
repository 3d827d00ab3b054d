"""A real ``celery worker`` process (prefork, concurrency 2) for the Celery tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from project.demo.workers import worker_command
from tests.celery_app import READY
from tests.servers import REDIS_URL, ROOT, child_env

# Broker keys of this test run (runs may overlap on one Redis).
PREFIX = f"dagstream-test-{os.getpid()}:"


@dataclass
class Worker:
    """A worker's main process; its pool children are found through Celery."""

    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown, pool included
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.drain is not None:
            self.drain.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_worker(*extra: str, **env: str) -> Worker:
    """Start ``celery -A tests.celery_app worker`` and return once it is ready."""
    process = subprocess.Popen(
        worker_command("tests.celery_app", f"dagstream-test-{os.getpid()}", *extra),
        cwd=ROOT,
        env=child_env(REDIS_URL=REDIS_URL, DAGSTREAM_TEST_CELERY_PREFIX=PREFIX, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stop() ends the pool with it
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:  # bounded by EOF if the worker dies
        lines.append(line)
        if line.strip() == READY:
            worker = Worker(process, lines)
            worker.drain = threading.Thread(target=_drain, args=(worker,), daemon=True)
            worker.drain.start()
            return worker
    process.wait(timeout=10)
    raise RuntimeError("celery worker did not start:\n" + "".join(lines))


def _drain(worker: Worker) -> None:
    assert worker.process.stdout is not None
    for line in worker.process.stdout:
        worker.log.append(line)
        if os.environ.get("DAGSTREAM_SHOW_SERVER_LOG"):
            sys.stderr.write(f"[celery {worker.process.pid}] {line}")


def configure_tests() -> None:
    """Point this process's copy of the test app at this run's broker keys."""
    from tests import celery_app

    celery_app.configure(REDIS_URL, PREFIX)


def forget_keys() -> None:
    """Delete this run's broker and result keys."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
