"""state: snapshots, event frames and the replay-or-snapshot decision."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from dagstream_app import protocol, services, state
from dagstream_app.models import Dag, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def dag() -> Dag:
    dag = services.create_dag(
        "s1",
        name="etl",
        nodes=[{"id": "a", "label": "A"}, "b"],
        edges=[("a", "b")],
        budget=4,
    )
    services.reports("s1").node_state("a", "completed", output={"n": 1}, metrics={"ms": 3})
    services.reports("s1").cost(spent=1.5)
    return dag


def wire(snap: protocol.DagSnapshot | None) -> dict[str, Any]:
    """A snapshot as the ``snapshot`` reply sends it."""
    assert snap is not None
    data: dict[str, Any] = json.loads(protocol.encode(snap))
    return data


def test_snapshot_holds_the_whole_current_state(dag: Dag, make_user) -> None:
    services.open_gate("s1", "b", {"title": "ok?"})
    snap = wire(state.snapshot("s1"))
    assert list(snap) == [
        "dag_id",
        "name",
        "status",
        "budget",
        "spent",
        "remaining",
        "results",
        "last_seq",
        "created_at",
        "finished_at",
        "nodes",
        "edges",
        "gates",
        "engine_seen_at",
        "engine_stale",
    ]
    assert snap["engine_seen_at"].endswith("Z") and snap["engine_stale"] is False
    assert {k: snap[k] for k in ("dag_id", "name", "status", "budget", "spent", "remaining")} == {
        "dag_id": "s1",
        "name": "etl",
        "status": "running",
        "budget": 4,
        "spent": 1.5,
        "remaining": 2.5,
    }
    assert snap["last_seq"] == 5 == Dag.objects.get(pk="s1").last_seq
    assert (snap["results"], snap["finished_at"]) == (None, None)
    assert snap["created_at"].endswith("Z")
    a, b = snap["nodes"]
    assert set(a) == {"id", "label", "status", "output", "metrics", "started_at", "finished_at"}
    assert {k: a[k] for k in ("id", "label", "status", "output", "metrics")} == {
        "id": "a",
        "label": "A",
        "status": "completed",
        "output": {"n": 1},
        "metrics": {"ms": 3},
    }
    assert a["finished_at"].endswith("Z")
    assert (b["id"], b["status"], b["started_at"], b["finished_at"]) == ("b", "waiting", None, None)
    assert snap["edges"] == [{"from": "a", "to": "b"}]
    [gate] = snap["gates"]
    assert gate == {
        "node_id": "b",
        "presentation": {"title": "ok?"},
        "status": "pending",
        "decision": None,
        "feedback": "",
        "decided_by": "",
        "decided_at": None,
        "assignees": [],  # anyone who may decide it
        "quorum": 1,
        "votes": [],
    }


def test_snapshot_of_finished_dag(dag: Dag) -> None:
    services.reports("s1").complete({"rows": 9})
    snap = wire(state.snapshot("s1"))
    assert (snap["status"], snap["results"], snap["last_seq"]) == ("completed", {"rows": 9}, 5)
    assert snap["finished_at"] is not None


def test_snapshot_of_unknown_dag_is_none() -> None:
    assert state.snapshot("nope") is None
    assert state.progress("nope") is None


def test_progress(dag: Dag) -> None:
    assert state.progress("s1") == (3, "running")


def test_event_frames_ranges(dag: Dag) -> None:
    assert [seq for seq, _ in state.event_frames("s1", 0)] == [1, 2, 3]
    assert [seq for seq, _ in state.event_frames("s1", 1)] == [2, 3]
    assert [seq for seq, _ in state.event_frames("s1", 1, 2)] == [2]
    assert [seq for seq, _ in state.event_frames("s1", 0, 99)] == [1, 2, 3]
    assert state.event_frames("s1", 3) == []
    assert state.event_frames("s1", 2, 2) == []
    assert state.event_frames("nope", 0) == []
    seq, text = state.event_frames("s1", 2)[0]
    frame = json.loads(text)
    assert (seq, frame["seq"], frame["type"], frame["dag_id"]) == (3, 3, "cost_update", "s1")
    assert set(frame) == {"type", "dag_id", "seq", "ts", "spent", "budget", "remaining"}


def test_can_replay_within_the_window(dag: Dag) -> None:
    assert state.can_replay("s1", 0, 3)
    assert state.can_replay("s1", 2, 3)
    assert state.can_replay("s1", 3, 3)  # nothing missed


def test_can_replay_refuses_a_future_seq(dag: Dag) -> None:
    assert not state.can_replay("s1", 4, 3)
    assert not state.can_replay("s1", 100, 3)


@override_settings(DAGSTREAM={"REPLAY_WINDOW": 2})
def test_can_replay_honours_replay_window(dag: Dag) -> None:
    assert not state.can_replay("s1", 0, 3)  # 3 behind > 2
    assert state.can_replay("s1", 1, 3)  # exactly the window
    assert state.can_replay("s1", 2, 3)


def test_can_replay_needs_the_missed_events(dag: Dag) -> None:
    Event.objects.filter(dag=dag, seq__lte=2).delete()  # pruned history
    assert not state.can_replay("s1", 0, 3)
    assert not state.can_replay("s1", 1, 3)
    assert state.can_replay("s1", 2, 3)


def test_commands_after(dag: Dag, make_user: Any) -> None:
    user = make_user("control_dag", "view_dag")
    services.control("s1", "pause", actor=user)
    services.reports("s1").node_state("b", "running")
    services.control("s1", "resume", actor=user)
    rows, status = state.commands_after("s1", 0)
    assert (rows, status) == ([(4, "pause"), (6, "resume")], "running")
    assert state.commands_after("s1", 4) == ([(6, "resume")], "running")
    assert state.commands_after("nope", 0) == ([], None)


@override_settings(DAGSTREAM={"REPLAY_WINDOW": 10, "MAX_LAG": 2})
def test_can_replay_never_exceeds_max_lag(dag: Dag) -> None:
    # A replay longer than MAX_LAG would close with 1013, and the client would
    # resume from the same seq again: it gets a snapshot instead.
    assert not state.can_replay("s1", 0, 3)
    assert state.can_replay("s1", 1, 3)


# ----------------------------------------------------------- run-list probe


def test_changed_since_names_changed_runs_and_says_which_are_new(db: Any) -> None:
    services.create_dag("on-page", nodes=["a"])
    moment = timezone.now()
    assert state.changed_since(moment) == []
    services.reports("on-page").node_state("a", "running")
    services.create_dag("elsewhere", nodes=["a"])
    changed = {dag_id: (seq, new) for dag_id, seq, new in state.changed_since(moment)}
    assert changed == {"on-page": (2, False), "elsewhere": (1, True)}
