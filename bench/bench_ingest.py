"""Ingest benchmark: how fast an engine can report, beside the database's own speed.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_ingest.py``). Each backend
runs in its own process: SQLite (a throwaway file, WAL, as the example project
sets it up) and PostgreSQL (a throwaway database on ``BENCH_POSTGRES_URL``,
default ``postgres://postgres@127.0.0.1:5432/postgres``).

Prints, in one run per backend:

- (a) ``node_state`` reports with metrics, on one DAG of 100 nodes, through the public
  engine API — awaited one at a time, awaited from 50 concurrent tasks, and
  ``stream.nowait`` — beside a bare DB-API ``executemany`` of the same event rows
  (commit per 500 rows, the way a batching writer would), and the ratio;
- (c) the reference runner on a 5,000-node DAG of no-op tasks, with streaming and
  with a stream that does nothing, and the ratio.

Compare the ratios, not the absolute numbers: the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
RUNNER_NODES = int(os.environ.get("BENCH_RUNNER_NODES", "5000"))
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
NODES = [f"n{i}" for i in range(100)]


def _setup_django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="project.settings",
        DAGSTREAM_JSON='{"ENGINE_BUFFER": 50000}',
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _metrics(i: int) -> dict[str, Any]:
    return {"rows": i, "duration_s": 0.25, "worker": "bench-1"}


async def _engine_rates() -> dict[str, float]:
    from dagstream_app.engine import BufferFull, DagStream

    rates: dict[str, float] = {}
    tag = uuid.uuid4().hex[:6]

    stream = await DagStream.create(f"seq-{tag}", nodes=NODES)
    count = min(EVENTS // 10, 2000)
    start = time.perf_counter()
    for i in range(count):
        await stream.node_state(NODES[i % 100], "running", metrics=_metrics(i))
    rates["awaited, one at a time"] = count / (time.perf_counter() - start)
    await stream.close()

    stream = await DagStream.create(f"conc-{tag}", nodes=NODES)

    async def worker(k: int) -> None:
        for i in range(EVENTS // 50):
            await stream.node_state(NODES[k], "running", metrics=_metrics(i))

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(50)))
    rates["awaited, 50 concurrent tasks"] = EVENTS // 50 * 50 / (time.perf_counter() - start)
    await stream.close()

    stream = await DagStream.create(f"nowait-{tag}", nodes=NODES)
    start = time.perf_counter()
    for i in range(EVENTS):
        try:
            stream.nowait.node_state(NODES[i % 100], "running", metrics=_metrics(i))
        except BufferFull:
            await stream.flush()
            stream.nowait.node_state(NODES[i % 100], "running", metrics=_metrics(i))
        if i % 1000 == 999:
            await asyncio.sleep(0)  # an engine doing real work yields now and then
    await stream.flush()
    rates["stream.nowait"] = EVENTS / (time.perf_counter() - start)
    await stream.close()
    return rates


def _rows() -> list[tuple[Any, ...]]:
    """The event rows dagstream writes for EVENTS node_state reports, ready for the DB-API."""
    from datetime import UTC, datetime

    from dagstream_app import protocol

    now = datetime.now(UTC)
    rows = []
    for i in range(EVENTS):
        payload = protocol.encode(
            {"node_id": NODES[i % 100], "status": "running", "metrics": _metrics(i)}
        )
        rows.append((i + 2, "node_state", payload, now, "", NODES[i % 100], "running"))
    return rows


def _bare_executemany(vendor: str, per_commit: int) -> float:
    """The same rows into the same table with the driver alone: the database's speed."""
    from django.db import connection

    from dagstream_app import services
    from dagstream_app.models import Event

    dag = services.create_dag(f"bare-{uuid.uuid4().hex[:6]}", nodes=NODES)
    table = Event._meta.db_table
    rows = [(dag.pk, *row) for row in _rows()]
    settings = connection.settings_dict
    if vendor == "sqlite":
        import sqlite3

        raw = sqlite3.connect(settings["NAME"], isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        sql = (
            f'INSERT INTO "{table}" (dag_id, seq, type, payload, created_at, command, node_id, '
            "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        rows = [
            (d, s, t, p, c.strftime("%Y-%m-%d %H:%M:%S.%f"), *rest) for d, s, t, p, c, *rest in rows
        ]
        start = time.perf_counter()
        for i in range(0, len(rows), per_commit):
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(sql, rows[i : i + per_commit])
            raw.execute("COMMIT")
        elapsed = time.perf_counter() - start
        raw.close()
    else:
        import psycopg

        with psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"] or "postgres",
            dbname=settings["NAME"],
        ) as raw:
            sql = (
                f'INSERT INTO "{table}" (dag_id, seq, type, payload, created_at, command, '
                "node_id, status) VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s)"
            )
            start = time.perf_counter()
            with raw.cursor() as cursor:
                for i in range(0, len(rows), per_commit):
                    cursor.executemany(sql, rows[i : i + per_commit])
                    raw.commit()
            elapsed = time.perf_counter() - start
    return len(rows) / elapsed


def _pipeline(streaming: bool) -> Any:
    from dagstream_app.runner import Context, Pipeline, Task

    async def noop(ctx: Context) -> None:
        return None

    width = 100
    steps = []
    for i in range(RUNNER_NODES):
        layer, k = divmod(i, width)
        after = [] if layer == 0 else [f"t{(layer - 1) * width + k}"]
        if layer and k % 3 == 0:
            after.append(f"t{(layer - 1) * width + (k + 1) % width}")
        steps.append(Task(f"t{i}", noop, after=after))
    return Pipeline("bench-runner", steps)


class _Silent:
    """A stream that does nothing: the runner's own cost, without dagstream."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self.nowait = self

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return [] if name == "pending_commands" else 0

        return call

    def submit(self, delta: Any) -> None: ...  # the runner's nowait reports

    def node_state(self, *args: Any, **kwargs: Any) -> None: ...

    def edge_active(self, *args: Any, **kwargs: Any) -> None: ...

    def error(self, *args: Any, **kwargs: Any) -> None: ...

    def cost(self, *args: Any, **kwargs: Any) -> None: ...

    async def commands(self) -> Any:
        await asyncio.Event().wait()
        yield None  # pragma: no cover


async def _runner_times() -> tuple[float, float]:
    from unittest import mock

    from dagstream_app.runner import Runner, execution

    pipeline = _pipeline(streaming=True)
    start = time.perf_counter()
    result = await Runner(pipeline, concurrency=8).run(f"runner-{uuid.uuid4().hex[:6]}")
    streamed = time.perf_counter() - start
    assert result.status == "completed", result.status

    async def create(dag_id: str, **kwargs: Any) -> _Silent:
        return _Silent(dag_id)

    async def open_(dag_id: str) -> _Silent:
        return _Silent(dag_id)

    with (
        mock.patch.object(execution.DagStream, "create", create),
        mock.patch.object(execution.DagStream, "open", open_),
    ):
        start = time.perf_counter()
        result = await Runner(pipeline, concurrency=8).run("runner-silent")
        silent = time.perf_counter() - start
    assert result.status == "completed", result.status
    return streamed, silent


def run_backend(vendor: str, database_url: str) -> None:
    _setup_django(database_url)
    label = "SQLite" if vendor == "sqlite" else "PostgreSQL"
    rates = asyncio.run(_engine_rates())
    bare = _bare_executemany(vendor, 500)
    bare_50 = _bare_executemany(vendor, 50)
    print(f"-- {label}: {EVENTS} node_state reports with metrics, one DAG of 100 nodes")
    print(f"   bare executemany, commit per 500 rows     {bare:9.0f} events/s  (baseline)")
    print(f"   bare executemany, commit per 50 rows      {bare_50:9.0f} events/s")
    for name, rate in rates.items():
        print(f"   dagstream, {name:<31}{rate:9.0f} events/s  ({rate / bare:.2f} x baseline)")
    streamed, silent = asyncio.run(_runner_times())
    print(
        f"   reference runner, {RUNNER_NODES} no-op tasks: {streamed:.2f} s streamed, "
        f"{silent:.2f} s without streaming ({streamed / silent:.2f} x)"
    )


def main() -> int:
    if len(sys.argv) == 3:
        run_backend(sys.argv[1], sys.argv[2])
        return 0
    failed = 0
    folder = Path(tempfile.mkdtemp())
    failed += subprocess.call(
        [sys.executable, __file__, "sqlite", f"sqlite:///{folder / 'ingest.sqlite3'}"]
    )
    import psycopg

    name = f"dagstream_bench_{os.getpid()}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        failed += subprocess.call(
            [sys.executable, __file__, "postgresql", PG_URL.rsplit("/", 1)[0] + "/" + name]
        )
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
