"""The engine API through a database outage: reports wait and are written once, in order.

The PostgreSQL tests run an engine in its own process (``tests/outage_engine.py``)
on a database of their own (in the SQLite run of the suite too) and fail its
connections from the server side: ``pg_terminate_backend`` of its sessions, and
``ALLOW_CONNECTIONS false`` for a while, as a restart does. The others fail the
suite's own database from inside, by patching the connection.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection, connections
from django.test import override_settings

from dagstream_app import services
from dagstream_app.engine import DagStream, DatabaseUnavailable
from dagstream_app.engine.outage import is_transient
from dagstream_app.models import Event, Node
from tests.servers import ROOT, child_env
from tests.test_db_connections import _admin_url, postgres_database  # noqa: F401 - a fixture

REPORTS = 400


def _lost_connection() -> OperationalError:
    """The error a dropped connection raises on this backend (SQLite's is a lock)."""
    if connection.vendor == "sqlite":
        return OperationalError("database is locked")
    return OperationalError("server closed the connection unexpectedly")


def _seqs(dag_id: str) -> list[int]:
    return list(Event.objects.filter(dag_id=dag_id).order_by("seq").values_list("seq", flat=True))


# ---------------------------------------------------------------- in process


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("written", [True, False], ids=["commit-written", "commit-lost"])
async def test_a_commit_whose_answer_is_lost_is_written_once(written: bool) -> None:
    """The connection fails as the COMMIT is answered: the retry looks before it writes."""
    stream = await DagStream.create("lost-ack", nodes=["a", "b"])
    wrapper = type(connections["default"])
    real_commit = wrapper.commit
    armed = [True]

    def commit_then_fail(self: Any) -> None:
        if armed[0]:
            armed[0] = False
            if written:
                real_commit(self)  # the server commits; its answer never arrives
            raise _lost_connection()
        real_commit(self)

    with mock.patch.object(wrapper, "commit", commit_then_fail):
        seq = await stream.node_state("a", "running", metrics={"x": 1})
        assert seq == 2
        assert await stream.node_state("b", "completed") == 3
    await stream.close()
    assert not armed[0]
    assert await asyncio.to_thread(_seqs, "lost-ack") == [1, 2, 3]
    node = await Node.objects.aget(dag_id="lost-ack", node_id="a")
    assert (node.status, node.metrics) == ("running", {"x": 1})


@pytest.mark.django_db(transaction=True)
async def test_past_db_retry_seconds_the_waiting_reports_raise_and_later_ones_are_written() -> None:
    stream = await DagStream.create("too-long", nodes=["a"])
    attempts = [0]

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        attempts[0] += 1
        raise _lost_connection()

    with (
        override_settings(DAGSTREAM={"DB_RETRY_SECONDS": 0.4}),
        mock.patch.object(services, "apply", unavailable),
    ):
        began = time.monotonic()
        awaited = asyncio.ensure_future(stream.node_state("a", "running"))
        await asyncio.sleep(0)
        stream.nowait.node_state("a", "completed")  # queued behind it
        with pytest.raises(DatabaseUnavailable) as raised:
            await awaited
        assert 0.4 <= time.monotonic() - began < 2
        assert isinstance(raised.value, OperationalError)  # what callers caught before
        assert isinstance(raised.value.__cause__, OperationalError)
        assert attempts[0] > 2  # it tried again meanwhile, with a backoff
        with pytest.raises(DatabaseUnavailable):
            await stream.flush()  # the nowait one behind it failed too, and says so
    # The database is back: the next report is written, not dropped.
    assert await stream.node_state("a", "completed") == 2
    await stream.close()
    assert await asyncio.to_thread(_seqs, "too-long") == [1, 2]


def test_only_connection_errors_are_waited_out() -> None:
    assert is_transient(InterfaceError("connection already closed"))
    assert is_transient(_lost_connection())
    assert not is_transient(DatabaseUnavailable("gave up"))
    assert not is_transient(ValueError("no"))
    if connection.vendor == "sqlite":
        assert not is_transient(OperationalError("no such table: dagstream_app_dag"))


@pytest.mark.django_db(transaction=True)
async def test_heartbeats_wait_while_a_flush_waits_for_the_database() -> None:
    with override_settings(DAGSTREAM={"ENGINE_HEARTBEAT_SECONDS": 0.05}):
        stream = await DagStream.create("quiet", nodes=["a"])
        real_apply = services.apply
        failures = [0]

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if failures[0] < 6:
                failures[0] += 1
                raise _lost_connection()
            return real_apply(*args, **kwargs)

        with (
            mock.patch.object(services, "apply", flaky),
            mock.patch.object(services, "heartbeat", wraps=services.heartbeat) as beats,
        ):
            assert await stream.node_state("a", "running") == 2
        assert failures[0] == 6
        assert beats.call_count == 0  # none while the flush waited (over 0.5 s)
        await stream.close()


# ---------------------------------------------------------------- PostgreSQL


class EngineInOwnProcess:
    """``tests.outage_engine`` on the given database; its sessions are named by its pid."""

    def __init__(self, url: str, mode: str, count: int, **dagstream: Any) -> None:
        env = child_env(DATABASE_URL=url, DAGSTREAM_JSON=json.dumps(dagstream))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.outage_engine", mode, "outage", str(count)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.line() == "ready"
        self.application_name = f"dagstream-{self.process.pid}"

    def line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.line())
        return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def admin(postgres_database: str) -> Iterator[psycopg.Connection[Any]]:  # noqa: F811
    """A session of the test's own on the server's ``postgres`` database: it may close
    the engine's database to new connections."""
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        yield conn


def _terminate(admin: psycopg.Connection[Any], application_name: str, *, busy: bool) -> int:
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND (NOT %s OR state <> 'idle')",
        [application_name, busy],
    ).fetchall()
    return len(rows)


def _allow_connections(admin: psycopg.Connection[Any], database: str, allowed: bool) -> None:
    admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')


def _wait_for_session(admin: psycopg.Connection[Any], application_name: str) -> None:
    deadline = time.monotonic() + 30
    query = "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
    while admin.execute(query, [application_name]).fetchone() is None:
        assert time.monotonic() < deadline, "the engine never reconnected"
        time.sleep(0.2)


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_an_engine_reports_through_terminated_connections_and_a_restart(
    postgres_database: str,  # noqa: F811
    admin: psycopg.Connection[Any],
) -> None:
    """Sessions killed mid-write every 0.3 s, and 3 s in which the database refuses
    connections (a restart): every report is written once, in order, none raises."""
    engine = EngineInOwnProcess(
        postgres_database, "blip", REPORTS, IDLE_CHECK_SECONDS=0.05, ENGINE_HEARTBEAT_SECONDS=0.2
    )
    stop = threading.Event()
    killed = [0]

    def kill_mid_write() -> None:
        with psycopg.connect(postgres_database, autocommit=True) as own:
            while not stop.wait(0.3):
                killed[0] += _terminate(own, engine.application_name, busy=True)

    killer = threading.Thread(target=kill_mid_write)
    try:
        engine.go()
        killer.start()
        time.sleep(1.5)
        _allow_connections(admin, _database(postgres_database), False)  # the restart
        killed[0] += _terminate(admin, engine.application_name, busy=False)
        time.sleep(3)
        _allow_connections(admin, _database(postgres_database), True)
        result = engine.result()
    finally:
        stop.set()
        if killer.is_alive():
            killer.join()
        _allow_connections(admin, _database(postgres_database), True)
        engine.stop()
    assert killed[0] > 0
    assert result["raised"] == []
    assert result["commands"] == "ended"  # its polls survived, and it saw the run end
    with psycopg.connect(postgres_database) as own:
        seqs = [
            row[0]
            for row in own.execute(
                "SELECT seq FROM dagstream_app_event WHERE dag_id = 'outage' ORDER BY seq"
            ).fetchall()
        ]
        rows = own.execute(
            "SELECT node_id, status, metrics FROM dagstream_app_node WHERE dag_id = 'outage'"
        ).fetchall()
        status = own.execute("SELECT status FROM dagstream_app_dag WHERE dag_id = 'outage'")
        assert status.fetchone() == ("completed",)
    # create (1), the reports, and complete's two events: each once, in order.
    assert seqs == list(range(1, REPORTS + 4))
    awaited = result["seqs"]  # what the awaited calls returned, in call order
    assert awaited == sorted(set(awaited))
    last = {f"n{i % 10}": ("running", "completed")[i % 2] for i in range(REPORTS)}
    metrics = {f"n{i % 10}": i for i in range(REPORTS)}
    assert {node: (status, m["i"]) for node, status, m in rows} == {
        node: (last[node], metrics[node]) for node in last
    }


def test_past_db_retry_seconds_an_engine_call_raises_database_unavailable(
    postgres_database: str,  # noqa: F811
    admin: psycopg.Connection[Any],
) -> None:
    engine = EngineInOwnProcess(postgres_database, "deadline", 1, DB_RETRY_SECONDS=2)
    database = _database(postgres_database)
    try:
        _allow_connections(admin, database, False)
        _terminate(admin, engine.application_name, busy=False)
        engine.go()
        first = engine.result()
        assert first["outcome"] == "DatabaseUnavailable"
        assert 2 <= first["seconds"] < 8  # DB_RETRY_SECONDS and one last attempt
        _allow_connections(admin, database, True)
        _wait_for_session(admin, engine.application_name)  # its pool reconnected
        engine.go()
        assert engine.result() == {"later": 2}  # later calls are written, not dropped
    finally:
        _allow_connections(admin, database, True)
        engine.stop()
