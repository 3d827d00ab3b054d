"""Held tasks (services.holding): each is released once, and only when its wait is over.

The real-worker proofs are in test_celery_waiting.py; these pin the readiness rule,
including the moment between holding a gate's task and writing its gate.
"""

from __future__ import annotations

import pytest

from dagstream_app import services
from dagstream_app.models import HeldTask

pytestmark = pytest.mark.django_db


def _released(dag_id: str) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    services.release_held(lambda held: seen.append((held.node_id, held.reason)))
    return seen


def test_a_gate_task_held_before_its_gate_is_written_waits_for_the_decision() -> None:
    services.create_dag("held-gate", nodes=["ask"])
    assert services.hold_task("held-gate", "m-1", "ask", HeldTask.Reason.GATE, "{}")
    assert _released("held-gate") == []  # no gate yet: not released (and not lost)
    services.open_gate("held-gate", "ask", {"title": "Go?"})
    assert _released("held-gate") == []  # pending
    services.decide_gate("held-gate", "ask", "approve")
    assert _released("held-gate") == [("ask", "gate")]
    assert _released("held-gate") == []  # once
    assert not HeldTask.objects.exists()


def test_a_paused_runs_task_is_released_on_resume_once() -> None:
    services.create_dag("held-pause", nodes=["a", "b"])
    services.reports("held-pause").set_state("paused")
    assert services.hold_task("held-pause", "m-2", "b", HeldTask.Reason.PAUSED, "{}")
    assert services.hold_task("held-pause", "m-2", "b", HeldTask.Reason.PAUSED, "{}")  # again
    assert _released("held-pause") == []
    services.reports("held-pause").set_state("running")
    assert _released("held-pause") == [("b", "paused")]
    assert _released("held-pause") == []


def test_a_run_that_ends_releases_what_it_held_even_without_a_gate() -> None:
    services.create_dag("held-end", nodes=["ask"])
    services.hold_task("held-end", "m-3", "ask", HeldTask.Reason.BUDGET_GATE)
    assert _released("held-end") == []
    services.reports("held-end").fail("broke")
    assert _released("held-end") == [("ask", "budget_gate")]  # the engine drops it


def test_an_ended_run_holds_nothing() -> None:
    services.create_dag("held-over", nodes=["a"])
    services.reports("held-over").complete()
    assert services.hold_task("held-over", "m-4", "a", HeldTask.Reason.PAUSED) is False
    assert not HeldTask.objects.exists()


def test_an_unknown_reason_is_refused() -> None:
    services.create_dag("held-bad", nodes=["a"])
    with pytest.raises(ValueError, match="reason must be one of"):
        services.hold_task("held-bad", "m-5", "a", "sleepy")
    assert not HeldTask.objects.exists()
