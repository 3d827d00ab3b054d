"""Runs that wait for a person hold no worker slot (issue 19), on real workers of two pools.

A real ``celery worker`` with 2 processes (prefork) or 2 threads on Redis: runs
parked at budget gates and a human gate leave the pool free for other work; their
decisions and a cancel are carried out over the protocol without a free slot.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import chain

from dagstream_app.celery import gate, launch
from dagstream_app.models import Dag, Gate, HeldTask
from tests import celery_app as tasks
from tests.celery_worker import Worker
from tests.servers import Server, release_database, require_redis
from tests.test_celery import _command, _ended, _wait_event, labels
from tests.wsclient import TIMEOUT

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", params=["prefork", "threads"])
def pool_worker(
    request: pytest.FixtureRequest, django_db_setup: Any, django_db_blocker: Any
) -> Iterator[Worker]:
    """A real worker of 2 processes (prefork) or 2 threads; one at a time."""
    from tests.celery_worker import configure_tests, forget_keys, start_worker

    require_redis()
    configure_tests()
    with django_db_blocker.unblock():
        worker = start_worker(f"--pool={request.param}", "--concurrency=2")
    yield worker
    worker.stop()
    forget_keys()
    release_database(django_db_blocker)


@pytest.fixture
def person(make_user: Any, make_token: Any) -> str:
    return str(make_token(make_user("view_dag", "decide_gate", "control_dag")))


def _gate_opened(server: Server, token: str, dag_id: str) -> dict[str, Any]:
    events = _wait_event(server, token, dag_id, lambda e: e["type"] == "human_gate_waiting")
    return events[-1]


def _decide(server: Server, token: str, dag_id: str, node_id: str) -> list[dict[str, Any]]:
    message = {"type": "human_decision", "node_id": node_id, "decision": "approve"}
    return asyncio.run(_command(server, token, dag_id, message, _ended))


def _plain_chain() -> Any:
    return chain(tasks.add.si(1, 1), *(tasks.add.s(1) for _ in range(5)))


def test_runs_waiting_at_gates_leave_the_pool_free_and_go_on_once_approved(
    pool_worker: Worker, redis_servers: list[Server], person: str
) -> None:
    started = time.monotonic()
    assert _plain_chain().apply_async().get(timeout=TIMEOUT) == 7
    alone = time.monotonic() - started

    budgeted = [
        launch(chain(tasks.spend.si(1.5), tasks.add.si(i, 1)), budget=1.0) for i in range(4)
    ]
    reviewed = launch(
        chain(tasks.echo.si("draft"), gate.si(title="Review the draft"), tasks.echo.s())
    )
    waiting = [*budgeted, reviewed]
    opened = {run.dag_id: _gate_opened(redis_servers[0], person, run.dag_id) for run in waiting}
    assert [opened[r.dag_id]["node_id"] for r in budgeted] == ["budget-1"] * 4
    assert opened[reviewed.dag_id]["node_id"] == labels(reviewed.dag_id)["Review the draft"]
    held = HeldTask.objects.filter(dag_id__in=opened)
    # Each budget gate, the human gate, and the task after each budget gate wait in
    # the database (that last one once the task before it has sent it) ...
    _until(lambda: Counter(held.values_list("reason", flat=True)) == EVERY_WAIT)
    _until(lambda: not _running_tasks())  # ... and none in a worker slot

    started = time.monotonic()
    assert _plain_chain().apply_async().get(timeout=TIMEOUT) == 7  # nobody decided
    beside_them = time.monotonic() - started
    assert beside_them < 3 * alone + 2.0, (alone, beside_them)

    for run in budgeted:
        events = _decide(redis_servers[1], person, run.dag_id, "budget-1")
        assert [e["budget"] for e in events if e["type"] == "cost_update"] == [2.0]
        assert events[-1]["state"] == "completed"
    _decide(redis_servers[1], person, reviewed.dag_id, opened[reviewed.dag_id]["node_id"])
    assert [run.result.get(timeout=TIMEOUT) for run in budgeted] == [1, 2, 3, 4]
    assert reviewed.result.get(timeout=TIMEOUT)["decision"] == "approve"
    statuses = Dag.objects.filter(pk__in=opened).values_list("status", flat=True)
    assert set(statuses) == {"completed"}
    assert not HeldTask.objects.filter(dag_id__in=opened).exists()


def test_a_paused_run_cancelled_over_the_protocol_ends_cancelled_with_no_gate_pending(
    pool_worker: Worker, redis_servers: list[Server], person: str
) -> None:
    run = launch(chain(tasks.spend.si(1.5), tasks.add.si(1, 1), tasks.add.si(2, 2)), budget=1.0)
    _gate_opened(redis_servers[0], person, run.dag_id)
    assert Dag.objects.get(pk=run.dag_id).status == "paused"
    events = asyncio.run(
        _command(redis_servers[1], person, run.dag_id, {"type": "cancel_execution"}, _ended)
    )
    assert [e["state"] for e in events if e["type"] == "execution_state"] == [
        "cancelling",
        "cancelled",
    ]
    closed = [e["node_id"] for e in events if e["type"] == "gate_closed"]
    assert closed == ["budget-1"]
    assert not Gate.objects.filter(dag_id=run.dag_id, status=Gate.Status.PENDING).exists()
    ids = labels(run.dag_id)
    for label in ("add", "add #2", "Budget reached"):
        assert Dag.objects.get(pk=run.dag_id).nodes.get(node_id=ids[label]).status == "cancelled"
    _until(lambda: not HeldTask.objects.filter(dag_id=run.dag_id).exists())  # the next release


def test_a_paused_run_holds_its_next_task_in_the_database_until_resumed(
    pool_worker: Worker, redis_servers: list[Server], person: str
) -> None:
    run = launch(chain(tasks.wait_for.si(f"held-{pool_worker.process.pid}"), tasks.add.si(1, 2)))
    name = f"held-{pool_worker.process.pid}"
    from tests.test_celery import _release, _signal

    _signal(f"{name}:started")
    asyncio.run(
        _command(
            redis_servers[1],
            person,
            run.dag_id,
            {"type": "pause_execution"},
            lambda e: e["type"] == "execution_state",
        )
    )
    _release(name)
    ids = labels(run.dag_id)
    _wait_event(
        redis_servers[0],
        person,
        run.dag_id,
        lambda e: e.get("node_id") == ids["add"] and "held" in (e.get("metrics") or {}),
    )
    assert HeldTask.objects.filter(dag_id=run.dag_id, node_id=ids["add"]).exists()
    _until(lambda: not _running_tasks())
    events = asyncio.run(
        _command(redis_servers[1], person, run.dag_id, {"type": "resume_execution"}, _ended)
    )
    assert events[-1]["state"] == "completed"
    assert run.result.get(timeout=TIMEOUT) == 3
    assert not HeldTask.objects.filter(dag_id=run.dag_id).exists()


EVERY_WAIT = Counter({"budget_gate": 4, "paused": 4, "gate": 1})


def _until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Return once ``condition()`` holds (looked at every 50 ms); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def _running_tasks() -> list[Any]:
    """The tasks the worker runs now, as it answers for itself."""
    replies = tasks.app.control.inspect(timeout=5, limit=1).active() or {}
    assert replies, "the worker did not answer"
    return [task for running in replies.values() for task in running]


def test_a_watcher_forgetting_its_run_never_waits_for_the_registry_lock(db: Any) -> None:
    """The loop thread forgets a run while a task's thread may hold the lock, waiting for
    that loop to open another run's stream: forgetting must not take the lock."""
    from dagstream_app.celery.process import Registry

    registry = Registry()
    ended, other = object(), object()
    registry.runs.update({"celery-a": ended, "celery-b": other})  # type: ignore[dict-item]
    with registry.lock:  # held by a task's thread in Registry.run()
        registry.forget("celery-a", ended)  # type: ignore[arg-type]
        registry.forget("celery-b", ended)  # type: ignore[arg-type]  # not its run: kept
    assert registry.runs == {"celery-b": other}
