"""The waiting case of ``bench_celery.py``: a chord beside runs parked at gates.

``BENCH_PARKED`` runs (default 20: half at a human gate, half at a budget gate)
wait for a person that never comes, on the worker that runs the chord. Each
round times the chord alone, then parks the runs, times the chord beside them,
and cancels them. Runs that wait hold no worker slot and, once every pool
process has let go of them (none listens for their commands), cost the pool
nothing (issue 19), so the chord's throughput beside them should be that of the
chord alone (target ratio 0.9).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

PARKED = int(os.environ.get("BENCH_PARKED", "20"))
TARGET = 0.9


def park(count: int) -> list[str]:
    """Launch ``count`` runs and return once each waits at its gate, its message held."""
    from celery import chain

    from bench.celery_app import noop, spend
    from dagstream_app.celery import gate, launch
    from dagstream_app.models import HeldTask

    human = count // 2
    runs = [
        launch(chain(noop.si(), gate.si(title="Parked"), noop.s()), name="bench-parked")
        for _ in range(human)
    ]
    runs += [
        launch(chain(spend.si(1.0), noop.si()), name="bench-parked", budget=0.5)
        for _ in range(count - human)
    ]
    dag_ids = [run.dag_id for run in runs]
    # Each human gate, each budget gate and the task after it wait in the database.
    every = Counter({"gate": human, "budget_gate": count - human, "paused": count - human})
    held = HeldTask.objects.filter(dag_id__in=dag_ids)
    _until(lambda: Counter(held.values_list("reason", flat=True)) == every, "runs to park")
    _until(lambda: not _listened(dag_ids), "the pool processes to let go of the parked runs")
    return dag_ids


def _listened(dag_ids: list[str]) -> bool:
    """True while a worker process follows one of the runs: its stream listens on the
    run's control group (a parked run's watcher ends within ``IDLE_CHECK_SECONDS``)."""
    import redis
    from channels.layers import get_channel_layer

    from dagstream_app.broadcast import control_group_name

    layer: Any = get_channel_layer()
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    # channels-redis keeps a group's members in a sorted set under this key.
    return any(client.zcard(layer._group_key(control_group_name(d))) for d in dag_ids)


def cancel(dag_ids: list[str]) -> None:
    """Cancel the parked runs; return once the worker has carried out every cancel."""
    from django.contrib.auth import get_user_model

    from dagstream_app import services
    from dagstream_app.models import Dag, HeldTask

    person, _ = get_user_model().objects.get_or_create(
        username="bench-person", defaults={"is_superuser": True, "is_staff": True}
    )
    for dag_id in dag_ids:
        services.control(dag_id, "cancel", actor=person)
    ended = Dag.objects.filter(pk__in=dag_ids, status="cancelled")
    _until(lambda: ended.count() == len(dag_ids), "the parked runs to be cancelled")
    held = HeldTask.objects.filter(dag_id__in=dag_ids)
    _until(lambda: not held.exists(), "the held messages of cancelled runs to be dropped")
    _until(lambda: not _listened(dag_ids), "the pool processes to let go of the ended runs")


def measure(rounds: int, chord_rate: Callable[[], float]) -> dict[str, float]:
    """The best chord throughput of ``rounds`` rounds, alone and beside parked runs."""
    best = {"alone": 0.0, "parked": 0.0}
    for _ in range(rounds):
        best["alone"] = max(best["alone"], chord_rate())
        parked = park(PARKED)
        try:
            best["parked"] = max(best["parked"], chord_rate())
        finally:
            cancel(parked)
    return best


def report(tasks: int, best: dict[str, float]) -> bool:
    """Print the figures; True if the ratio meets the target."""
    ratio = best["parked"] / best["alone"]
    human = PARKED // 2
    print(
        f"chord of {tasks} no-op tasks beside {PARKED} runs parked at gates "
        f"({human} human, {PARKED - human} budget), same worker with dagstream:"
    )
    print(f"  chord alone:          {best['alone']:7.0f} tasks/s")
    print(
        f"  beside parked runs:   {best['parked']:7.0f} tasks/s  "
        f"(ratio {ratio:.2f}, target >= {TARGET})"
    )
    return ratio >= TARGET


def _until(condition: Callable[[], Any], what: str, timeout: float = 120.0) -> None:
    """Return once ``condition()`` holds (looked at every 50 ms); raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)
