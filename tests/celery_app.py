"""The Celery app whose real workers the Celery tests start: ``celery -A tests.celery_app``.

Broker and results on Redis, under a key prefix of the test run's own
(``DAGSTREAM_TEST_CELERY_PREFIX``), so overlapping runs never share queues.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery, group, signals

from dagstream_app.celery import install, report_cost
from project.demo import workers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

READY = "dagstream-test-worker-ready"

app = Celery("dagstream_tests")


def configure(redis_url: str, prefix: str) -> None:
    """Point the app (in the tests and in the worker) at one test run's broker keys."""
    workers.configure(app, redis_url, prefix, worker_prefetch_multiplier=1, result_expires=600)


configure(
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("DAGSTREAM_TEST_CELERY_PREFIX", "dagstream-test:"),
)
install(app, release_poll=0.2)


@signals.worker_ready.connect
def _ready(**_: Any) -> None:
    sys.__stdout__.write(f"{READY}\n")  # Celery redirects sys.stdout to its log
    sys.__stdout__.flush()


def _redis() -> Any:
    """A client whose reads outlast the 60 s BLPOPs below (redis-py 8 gives up after 5 s)."""
    import redis

    return redis.Redis.from_url(app.conf.broker_url, socket_timeout=90)


def signal_key(name: str) -> str:
    """A Redis list the tests and tasks hand each other signals through."""
    return f"{app.conf.broker_transport_options['global_keyprefix']}signal:{name}"


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def total(values: list[int]) -> int:
    return sum(values)


@app.task
def fail(message: str) -> None:
    raise RuntimeError(message)


@app.task(bind=True, max_retries=3)
def flaky(self: Any, succeed_on: int) -> str:
    """Fails (and retries at once) until attempt ``succeed_on``."""
    try:
        if self.request.retries + 1 < succeed_on:
            raise ConnectionError("upstream not ready")
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=0) from exc
    return f"ok after {self.request.retries} retries"


@app.task
def wait_for(name: str) -> str:
    """Tell the test it started, then block until the test pushes ``name`` (at most 60 s)."""
    client = _redis()
    client.rpush(signal_key(f"{name}:started"), str(os.getpid()))
    client.blpop([signal_key(name)], timeout=60)
    return name


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def killed_once(self: Any) -> str:
    """First delivery: report its pid and block (the test SIGKILLs it); redelivered: finish."""
    if not (self.request.delivery_info or {}).get("redelivered"):
        client = _redis()
        client.rpush(signal_key("killed_once:started"), str(os.getpid()))
        client.blpop([signal_key("never")], timeout=60)
    return "survived"


@app.task(bind=True)
def fan_out(self: Any, n: int) -> Any:
    """Replaces itself at run time with a group of ``n`` additions."""
    return self.replace(group(add.s(i, i) for i in range(n)))


@app.task
def spend(amount: float) -> float | None:
    return report_cost(amount)


@app.task
def noop(*_: Any) -> None:
    return None


@app.task
def echo(value: Any) -> Any:
    return value


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def dies_after_success(self: Any) -> str:
    """Succeeds; on its first delivery the worker process dies right after (see below)."""
    if (self.request.delivery_info or {}).get("redelivered"):
        _redis().rpush(signal_key("dies:again"), "1")
    return "done"


@signals.task_postrun.connect
def _die_after_first_success(task: Any = None, **_: Any) -> None:
    """Connected after dagstream's own handlers: its reports are durable by now."""
    if task.name != dies_after_success.name:
        return
    if (task.request.delivery_info or {}).get("redelivered"):
        # What the redelivered run would send after itself (nothing: sent the first time).
        sent = bool(task.request.chain or task.request.callbacks)
        _redis().rpush(signal_key("dies:continuation"), "sent" if sent else "none")
        return
    os.kill(os.getpid(), 9)


@signals.worker_process_shutdown.connect
def _save_coverage(**_: Any) -> None:
    """Pool processes end with os._exit: save what coverage measured in them (make test)."""
    import coverage

    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.stop()
        measuring.save()
