"""Celery benchmark: worker throughput with and without dagstream's handlers.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_celery.py``). Needs Redis
(``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``: the broker, the
results and the channel layer, under keys of this run's own).

A chord of ``BENCH_TASKS`` (default 1,000) no-op tasks and a no-op body, on one
``celery worker`` with two prefork processes against a throwaway SQLite database
(WAL, as the example project sets it up), timed from sending the canvas to the
body's result: first with a worker that has no dagstream handlers (plain
``apply_async``), then with ``install(app)`` (``launch()``, which also creates
the 1,001-node DAG). Three rounds each (``BENCH_ROUNDS``), alternating; the best
of each counts, as the machine is shared.
Prints tasks/s for both and the ratio (the target is at least 0.8), how long
after the body's result the DAG was shown completed, and the CPU time the
worker used in each mode (which other work on the machine does not change).

Then the waiting case (:mod:`bench.celery_waiting`): on one worker with
dagstream, the same chord alone and beside ``BENCH_PARKED`` runs parked at human
and budget gates, alternating; the ratio's target is at least 0.9.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASKS = int(os.environ.get("BENCH_TASKS", "1000"))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = f"dagstream-bench-{os.getpid()}:"
TARGET = 0.8
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def _worker(with_dagstream: bool, env: dict[str, str]) -> subprocess.Popen[str]:
    from project.demo.workers import worker_command

    process = subprocess.Popen(
        worker_command("bench.celery_app", f"bench-{os.getpid()}-{int(with_dagstream)}"),
        cwd=ROOT,
        env={**env, "BENCH_DAGSTREAM": "1" if with_dagstream else "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "bench-worker-ready":
            return process
    raise RuntimeError("the celery worker did not start")


def _stop(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def _canvas() -> Any:
    from celery import chord

    from bench.celery_app import noop

    return chord([noop.si() for _ in range(TASKS)], noop.si())


def _round(with_dagstream: bool) -> tuple[float, float | None]:
    """Tasks/s for one chord; with dagstream also the seconds until the DAG showed it."""
    from dagstream_app.celery import launch
    from dagstream_app.models import Dag

    start = time.perf_counter()
    if with_dagstream:
        run = launch(_canvas(), name="bench")
        result = run.result
    else:
        result = _canvas().apply_async()
    result.get(timeout=600)
    elapsed = time.perf_counter() - start
    lag = None
    if with_dagstream:
        while Dag.objects.get(pk=run.dag_id).status != "completed":  # bounded: see below
            if time.perf_counter() - start > elapsed + 60:
                raise RuntimeError("the DAG was not completed within a minute of its result")
            time.sleep(0.05)
        lag = time.perf_counter() - start - elapsed
    return (TASKS + 1) / elapsed, lag


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (a worker counts its pool's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        print(f"bench_celery: Redis does not answer at {REDIS}: {exc}")
        return 1
    database = (
        Path(tempfile.gettempdir()) / f"dagstream-bench-celery-{uuid.uuid4().hex[:8]}.sqlite3"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "REDIS_URL": REDIS,
        "DAGSTREAM_REDIS_PREFIX": PREFIX,
        "BENCH_REDIS_URL": REDIS,
        "BENCH_BROKER_PREFIX": PREFIX,
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench import celery_waiting

    best = {False: 0.0, True: 0.0}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    lags: list[float] = []
    try:
        for _ in range(ROUNDS):
            for with_dagstream in (False, True):
                before = _children_cpu()
                worker = _worker(with_dagstream, env)
                try:
                    _round(with_dagstream)  # warm-up: imports, connections, first DAG
                    rate, lag = _round(with_dagstream)
                finally:
                    _stop(worker)
                cpu[with_dagstream].append(_children_cpu() - before)
                best[with_dagstream] = max(best[with_dagstream], rate)
                if lag is not None:
                    lags.append(lag)
        worker = _worker(True, env)
        try:
            _round(True)  # warm-up
            waiting = celery_waiting.measure(ROUNDS, lambda: _round(True)[0])
        finally:
            _stop(worker)
    finally:
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    ratio = best[True] / best[False]
    print(f"chord of {TASKS} no-op tasks, 2 prefork worker processes, SQLite + Redis:")
    print(f"  without dagstream:  {best[False]:7.0f} tasks/s")
    print(
        f"  with dagstream:     {best[True]:7.0f} tasks/s  (ratio {ratio:.2f}, target >= {TARGET})"
    )
    print(f"  DAG shown completed {min(lags):.2f} s after the body's result (best round)")
    # CPU the worker used (its pool included) for its two chords, whatever else runs.
    spent = {mode: min(times) for mode, times in cpu.items()}
    print(
        f"  worker CPU for two chords: {spent[False]:.2f} s without, {spent[True]:.2f} s with "
        f"(ratio {spent[False] / spent[True]:.2f})"
    )
    waiting_met = celery_waiting.report(TASKS, waiting)
    return 0 if ratio >= TARGET and waiting_met else 1


if __name__ == "__main__":
    sys.exit(main())
