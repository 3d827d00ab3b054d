"""A parked run costs a worker process nothing (issue 19 item 6), and stays alive.

A pool process follows a run (its stream, heartbeat, command listener and status
poll) while a task of it runs there. Once the run is parked (a task of it held:
it waits for a person) and no task of it runs in the process, its watcher ends
and the process forgets it; the next task of it that starts reads it again. The
worker's main process reports every run with held tasks alive meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from dagstream_app import services
from dagstream_app.celery import process
from dagstream_app.celery.process import Registry
from dagstream_app.models import Dag, HeldTask
from tests.wsclient import TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)


def _until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Return once ``condition()`` holds (looked at every 20 ms); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def test_a_parked_run_is_forgotten_by_the_process_and_read_again_by_its_next_task(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.create_dag("parked-1", nodes=["a", "b"], edges=[("a", "b")])
    registry = Registry()  # this process's, as a new pool process has it
    monkeypatch.setattr(process, "registry", registry)
    try:
        with override_settings(DAGSTREAM={"IDLE_CHECK_SECONDS": 0.02}):
            run = registry.run("parked-1", here=True)  # a task of it starts here
            assert run is not None and run.writer.stream is not None
            services.hold_task("parked-1", "task-b", "b", HeldTask.Reason.PAUSED, "{}")
            assert not run.retire()  # the task claims it: its watcher keeps it
            run.unclaim()  # the task ended: the run is parked, nothing of it runs here
            _until(lambda: "parked-1" not in registry.runs)
            assert run.retired
            again = registry.run("parked-1", here=True)  # its held task comes back
            assert again is not None and again is not run
            assert again.writer.stream is not None and not again.retired
            again.write([services.Delta("node_state", {"node_id": "a", "status": "completed"})])
            assert Dag.objects.get(pk="parked-1").nodes.get(node_id="a").status == "completed"
            again.unclaim()  # parked again: let go of once more (its stream closed)
            _until(lambda: "parked-1" not in registry.runs)
    finally:
        if registry.loop is not None:
            registry.loop.run(_cancel_the_rest())  # what a closed stream cancelled, ended
            registry.loop.stop()


async def _cancel_the_rest() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def test_the_worker_reports_runs_with_held_tasks_alive_and_no_others(db: Any) -> None:
    for dag_id in ("held-1", "idle-1", "ended-1"):
        services.create_dag(dag_id, nodes=["a"])
    for dag_id in ("held-1", "ended-1"):
        services.hold_task(dag_id, f"{dag_id}/a", "a", HeldTask.Reason.GATE)
    Dag.objects.filter(pk="ended-1").update(status="completed")
    long_ago = timezone.now() - timedelta(hours=1)
    Dag.objects.update(engine_seen_at=long_ago)
    assert services.heartbeat_held() == 1
    seen = dict(Dag.objects.values_list("pk", "engine_seen_at"))
    assert seen["held-1"] > long_ago
    assert seen["idle-1"] == seen["ended-1"] == long_ago
    assert services.holds("held-1") and not services.holds("idle-1")


def test_a_task_reads_its_runs_status_again_after_its_connection_broke(db: Any) -> None:
    """The status read goes through the worker's own connection (Celery closes Django's
    around every task); one that broke (the database went away) is opened again."""
    from dagstream_app.celery import connections
    from dagstream_app.celery.runs import Run
    from dagstream_app.state import snapshot

    services.create_dag("status-1", nodes=["a"])
    found = snapshot("status-1")
    assert found is not None
    run = Run(found)
    try:
        own = connections.own_connection()
        assert run.current_status() == "running"
        assert connections.own_connection() is own  # kept from one task to the next
        Dag.objects.filter(pk="status-1").update(status="paused")
        assert own.connection is not None
        own.connection.close()  # under it: its next query fails
        assert run.current_status() == "paused"
        assert connections.own_connection() is not own
    finally:
        connections.forget_own(close=True)
