"""replay: one reducer per event type, the structure recovered from the log, bounded history."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dagstream_app import events, protocol, replay, services, state
from dagstream_app.dagviews import Working, new_node
from dagstream_app.events.dag_mutated import initial_structure
from dagstream_app.models import Event

TS = "2026-01-01T00:00:0{}.000Z"
_seq = itertools.count(1)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """An event as clients receive it, with the next seq and a time of its own."""
    seq = next(_seq)
    return {"type": kind, "seq": seq, "ts": TS.format(seq % 10), **fields}


def working(
    nodes: tuple[str, ...] = ("a", "b"), edges: tuple[tuple[str, str], ...] = ()
) -> Working:
    work = Working(dag_id="d", name="etl", created_at=TS.format(0))
    work.nodes = {n: new_node(n, n.upper()) for n in nodes}
    work.edges = dict.fromkeys(edges)
    return work


def applied(work: Working, *events: dict[str, Any]) -> Working:
    for e in events:
        replay.apply(work, e)
    return work


def test_every_event_type_has_a_reducer() -> None:
    assert [kind.name for kind in events.kinds()] == list(protocol.EVENT_TYPES)
    assert all(callable(kind.reduce) for kind in events.kinds())


# ----------------------------------------------------------------- reducers


def test_node_state_tracks_status_times_output_and_metrics() -> None:
    start = event("node_state", node_id="a", status="running", metrics={"rows": 1})
    again = event("node_state", node_id="a", status="running", output={"part": 1})
    done = event("node_state", node_id="a", status="completed", metrics={"ms": 5})
    work = applied(working(), start, again)
    a = work.nodes["a"]
    assert (a.status, a.started_at, a.finished_at) == ("running", start["ts"], None)
    applied(work, done)
    assert (a.status, a.started_at, a.finished_at) == ("completed", start["ts"], done["ts"])
    assert (a.output, a.metrics) == ({"part": 1}, {"rows": 1, "ms": 5})
    assert (work.last_seq, work.at) == (done["seq"], done["ts"])
    assert work.nodes["b"].status == "pending"


def test_node_state_of_a_node_not_in_the_dag_changes_nothing() -> None:
    work = applied(working(), event("node_state", node_id="ghost", status="failed"))
    assert set(work.nodes) == {"a", "b"}


def test_edge_active_and_error_change_only_the_seq() -> None:
    before = working(edges=(("a", "b"),)).snapshot()
    flow, error = event("edge_active", **{"from": "a", "to": "b"}), event("error", message="x")
    after = applied(working(edges=(("a", "b"),)), flow, error).snapshot()
    assert after.last_seq == error["seq"]
    assert protocol.encode(after.nodes) == protocol.encode(before.nodes)
    assert (after.edges, after.gates, after.status) == (before.edges, before.gates, "running")


@pytest.mark.parametrize(
    ("mutation", "nodes", "edges"),
    [
        ({"op": "add_node", "node": {"id": "c", "label": "C"}}, ["a", "b", "c"], [("a", "b")]),
        ({"op": "remove_node", "node_id": "b"}, ["a"], []),
        (
            {"op": "remove_node", "node_id": "b", "edges": [{"from": "a", "to": "b"}]},
            ["a"],
            [],
        ),
        ({"op": "add_edge", "from": "b", "to": "a"}, ["a", "b"], [("a", "b"), ("b", "a")]),
        ({"op": "remove_edge", "from": "a", "to": "b"}, ["a", "b"], []),
    ],
)
def test_dag_mutated_applies_each_operation(
    mutation: dict[str, Any], nodes: list[str], edges: list[tuple[str, str]]
) -> None:
    work = applied(working(edges=(("a", "b"),)), event("dag_mutated", mutation=mutation))
    snap = work.snapshot()
    assert [n.id for n in snap.nodes] == nodes
    assert [(e.src, e.dst) for e in snap.edges] == edges
    if mutation["op"] == "add_node":
        assert (snap.nodes[-1].label, snap.nodes[-1].status) == ("C", "pending")


def test_cost_update_sets_spent_and_budget() -> None:
    work = applied(working(), event("cost_update", spent=1.5, budget=4.0, remaining=2.5))
    snap = work.snapshot()
    assert (snap.spent, snap.budget, snap.remaining) == (1.5, 4.0, 2.5)
    applied(work, event("cost_update", spent=2.0, budget=None, remaining=None))
    assert (work.snapshot().budget, work.snapshot().remaining) == (None, None)


def test_execution_complete_keeps_the_results() -> None:
    work = applied(working(), event("execution_complete", results={"rows": 3}))
    assert (work.results, work.status) == ({"rows": 3}, "running")


def test_gates_wait_then_take_the_first_decision() -> None:
    waiting = event("human_gate_waiting", node_id="b", presentation={"title": "Ship?"})
    work = applied(working(), waiting)
    [gate] = work.snapshot().gates
    assert (gate.status, gate.decision, gate.presentation) == ("pending", None, {"title": "Ship?"})
    decided = event(
        "gate_decided", node_id="b", decision="modify", feedback="smaller", decided_by="alice"
    )
    [gate] = applied(work, decided).snapshot().gates
    assert gate == protocol.GateView(
        node_id="b",
        presentation={"title": "Ship?"},
        status="modified",
        decision="modify",
        feedback="smaller",
        decided_by="alice",
        decided_at=decided["ts"],
        assignees=[],
        quorum=1,
        votes=[],
    )


def test_votes_are_kept_and_the_decision_keeps_them() -> None:
    waiting = event(
        "human_gate_waiting",
        node_id="b",
        presentation={"title": "Ship?"},
        assignees=["alice", "group:ops"],
        quorum=2,
    )
    voted = event(
        "gate_voted", node_id="b", voter="alice", decision="approve", approvals=1, quorum=2
    )
    work = applied(applied(working(), waiting), voted)
    [gate] = work.snapshot().gates
    assert (gate.status, gate.assignees, gate.quorum, gate.approvals) == (
        "pending",
        ["alice", "group:ops"],
        2,
        1,
    )
    assert [(v.voter, v.decision, v.at) for v in gate.votes] == [("alice", "approve", voted["ts"])]
    applied(work, voted)  # a live fragment's gate row may hold the vote already: counted once
    decided = event(
        "gate_decided", node_id="b", decision="approve", feedback="", decided_by="alice, olga"
    )
    [gate] = applied(work, decided).snapshot().gates
    assert (gate.status, gate.quorum, [v.voter for v in gate.votes]) == ("approved", 2, ["alice"])


def test_a_decision_without_its_waiting_event_still_shows() -> None:
    decided = event("gate_decided", node_id="b", decision="approve", feedback="", decided_by="")
    [gate] = applied(working(), decided).snapshot().gates
    assert (gate.status, gate.presentation) == ("approved", {})


def test_execution_state_finishes_only_on_a_terminal_state() -> None:
    paused = event("execution_state", state="paused")
    work = applied(working(), paused)
    assert (work.status, work.finished_at) == ("paused", None)
    failed = event("execution_state", state="failed")
    applied(work, failed)
    assert (work.status, work.finished_at) == ("failed", failed["ts"])


def test_counts_follow_the_nodes() -> None:
    work = working(("a", "b", "c", "d"))
    for node_id, status in (("a", "completed"), ("b", "failed"), ("c", "waiting")):
        applied(work, event("node_state", node_id=node_id, status=status))
    counts = work.node_counts()
    assert (counts.total, counts.done, counts.failed, counts.running, counts.pct) == (
        4,
        1,
        1,
        1,
        25,
    )


# ---------------------------------------------------------------- structure


def test_undoing_mutations_recovers_the_structure_at_creation() -> None:
    # Created with a -> b; then c added (a -> c), b removed, and a -> c removed.
    mutations = [
        {"op": "add_node", "node": {"id": "c", "label": "C"}},
        {"op": "add_edge", "from": "a", "to": "c"},
        {"op": "remove_node", "node_id": "b", "edges": [{"from": "a", "to": "b"}]},
        {"op": "remove_edge", "from": "a", "to": "c"},
    ]
    labels, edges = initial_structure({"a": "A", "c": "C"}, [], mutations)
    assert (labels, list(edges)) == ({"a": "A", "b": ""}, [("a", "b")])


def test_undoing_an_old_remove_node_cannot_restore_its_edges() -> None:
    mutations = [{"op": "remove_node", "node_id": "b"}]  # recorded without edges
    labels, edges = initial_structure({"a": "A"}, [], mutations)
    assert (set(labels), list(edges)) == ({"a", "b"}, [])


def test_a_removed_node_gets_back_the_label_it_was_added_with() -> None:
    mutations = [
        {"op": "add_node", "node": {"id": "c", "label": "Retry"}},
        {"op": "remove_node", "node_id": "c", "edges": []},
    ]
    rebuilt = replay.rebuild(
        working(()), {"a": "A"}, [], mutations, [event("dag_mutated", mutation=mutations[0])]
    )
    assert {n.id: n.label for n in rebuilt.snapshot().nodes} == {"a": "A", "c": "Retry"}


# ----------------------------------------------------- history from the log


def history(dag_id: str, seq: int) -> protocol.DagSnapshot:
    past = state.history(dag_id, seq)
    assert past is not None
    return past.snapshot()


@pytest.mark.django_db
def test_history_at_the_last_event_is_the_live_snapshot(make_user: Any) -> None:
    user = make_user("view_dag", "decide_gate", "control_dag")
    services.create_dag(
        "h1", name="etl", nodes=[{"id": "a", "label": "A"}, "b"], edges=[("a", "b")], budget=5
    )
    services.reports("h1").node_state("a", "running")
    services.reports("h1").node_state("a", "completed", output={"rows": 2}, metrics={"ms": 3})
    services.reports("h1").mutate({"op": "add_node", "node": {"id": "c", "label": "C"}})
    services.reports("h1").mutate({"op": "add_edge", "from": "b", "to": "c"})
    services.reports("h1").cost(spent=1.25)
    services.open_gate("h1", "b", {"title": "Ship?"})
    services.decide_gate("h1", "b", "approve", feedback="ok", actor=user)
    services.control("h1", "pause", actor=user)
    services.control("h1", "resume", actor=user)
    services.reports("h1").complete({"rows": 2})
    live = state.snapshot("h1")
    assert live is not None
    # The engine's liveness is today's, not the log's: history leaves it unknown.
    live = msgspec.structs.replace(live, engine_seen_at=None)
    assert protocol.encode(history("h1", live.last_seq)) == protocol.encode(live)


@pytest.mark.django_db
def test_history_before_a_removal_shows_the_node_and_its_recorded_edges() -> None:
    services.create_dag("h2", nodes=["a", "b", "c"], edges=[("a", "b"), ("b", "c")])
    services.reports("h2").node_state("b", "running")
    removal = services.reports("h2").mutate({"op": "remove_node", "node_id": "b"})
    # services records the edges that went with the node.
    stored = Event.objects.get(dag_id="h2", seq=removal).payload["mutation"]
    assert stored["edges"] == [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]
    before = history("h2", removal - 1)
    assert {n.id: n.status for n in before.nodes} == {
        "a": "pending",
        "b": "running",
        "c": "pending",
    }
    assert {(e.src, e.dst) for e in before.edges} == {("a", "b"), ("b", "c")}
    after = history("h2", removal)
    assert ([n.id for n in after.nodes], after.edges) == (["a", "c"], [])


@pytest.mark.django_db
def test_history_of_an_old_removal_lacks_only_its_edges() -> None:
    services.create_dag("h3", nodes=["a", "b"], edges=[("a", "b")])
    removal = services.reports("h3").mutate({"op": "remove_node", "node_id": "b"})
    # As recorded before services filled in the edges.
    Event.objects.filter(dag_id="h3", seq=removal).update(
        payload={"mutation": {"op": "remove_node", "node_id": "b"}}
    )
    before = history("h3", removal - 1)
    assert ([n.id for n in before.nodes], before.edges) == (["a", "b"], [])


@pytest.mark.django_db
def test_history_of_an_unknown_dag_is_none() -> None:
    assert state.history("nope", 1) is None


def reads(call: Callable[[], Any]) -> tuple[int, int]:
    """(queries, rows fetched) of ``call``: each SELECT run again to count its rows."""
    with CaptureQueriesContext(connection) as captured:
        call()
    rows = 0
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute(query["sql"])
            rows += len(cursor.fetchall())
    return len(captured.captured_queries), rows


@pytest.mark.django_db
def test_history_reads_nothing_after_the_seq_but_mutations() -> None:
    services.create_dag("h4", nodes=["a", "b"], edges=[("a", "b")])
    services.reports("h4").node_state("a", "running")
    seq = services.reports("h4").node_state("a", "completed")
    before = reads(lambda: state.history("h4", seq))
    for _ in range(60):
        services.reports("h4").node_state("b", "running")
        services.reports("h4").edge_active("a", "b")
    assert reads(lambda: state.history("h4", seq)) == before
    # Mutations after the seq are read: they are undone to get the structure back.
    services.reports("h4").mutate({"op": "add_node", "node": {"id": "late", "label": "Late"}})
    past = history("h4", seq)
    assert {n.id: n.status for n in past.nodes} == {"a": "completed", "b": "pending"}
    assert past.last_seq == seq
