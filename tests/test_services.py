"""services: the one write path. Every refusal raises a coded error and changes nothing."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from dagstream_app import broadcast, protocol, services, state
from dagstream_app.models import CommandReceipt, Dag, Edge, Event, Gate, Node
from dagstream_app.protocol import format_ts
from dagstream_app.services import (
    Conflict,
    Delta,
    Forbidden,
    InvalidDelta,
    NotFound,
    deletion,
    sql,
)

pytestmark = pytest.mark.django_db

NODES = [{"id": "extract", "label": "Extract"}, "transform", {"id": "load"}]
EDGES = [("extract", "transform"), {"from": "transform", "to": "load"}]
NODE_IDS = ["extract", "transform", "load"]


@pytest.fixture
def dag() -> Dag:
    return services.create_dag("etl-1", name="etl", nodes=NODES, edges=EDGES, budget=10)


def fingerprint(dag_id: str = "etl-1") -> dict[str, Any]:
    """Everything a refusal must leave untouched."""
    return {
        "snapshot": state.snapshot(dag_id),
        "events": list(Event.objects.filter(dag_id=dag_id).values_list("seq", "type", "payload")),
        "receipts": CommandReceipt.objects.count(),
        "dags": sorted(Dag.objects.values_list("dag_id", flat=True)),
    }


def refused(
    error: type[services.DagstreamError], call: Callable[[], Any], match: str = "", dag_id="etl-1"
) -> services.DagstreamError:
    """Assert ``call`` raises ``error`` (message containing ``match``) and changes nothing."""
    before = fingerprint(dag_id)
    with pytest.raises(error, match=re.escape(match) if match else None) as info:
        call()
    assert fingerprint(dag_id) == before
    return info.value


def events(dag_id: str = "etl-1") -> list[dict[str, Any]]:
    return [json.loads(text) for _, text in state.event_frames(dag_id, 0)]


def test_error_codes() -> None:
    assert InvalidDelta("x").code == "invalid_message"
    assert NotFound("x").code == "not_found"
    assert Forbidden("x").code == "forbidden"
    assert Conflict("x").code == "conflict"
    assert isinstance(InvalidDelta("x"), ValueError)
    assert set(protocol.ErrorCode.__args__) >= {  # type: ignore[attr-defined]
        cls.code for cls in (InvalidDelta, NotFound, Forbidden, Conflict)
    }


# ------------------------------------------------------------------ create_dag


def test_create_dag_persists_structure_and_emits_running(dag: Dag) -> None:
    assert (dag.name, dag.status, dag.budget, dag.spent, dag.last_seq) == (
        "etl",
        "running",
        10,
        0,
        1,
    )
    assert list(Node.objects.filter(dag=dag).values_list("node_id", "label", "status")) == [
        ("extract", "Extract", "pending"),
        ("transform", "", "pending"),
        ("load", "", "pending"),
    ]
    assert list(Edge.objects.filter(dag=dag).values_list("src", "dst")) == [
        ("extract", "transform"),
        ("transform", "load"),
    ]
    [event] = events()
    assert event["type"] == "execution_state"
    assert (event["dag_id"], event["seq"], event["state"]) == ("etl-1", 1, "running")
    assert event["ts"].endswith("Z")


def test_a_large_dag_and_flush_are_written_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the driver's limit on bound values: SQLite splits the rows into several
    # statements, each binding the columns shared by every row once.
    monkeypatch.setattr(sql, "_max_params", lambda: 50)
    nodes = [{"id": f"n{i}", "label": f"N {i}"} for i in range(120)]
    edges = [(f"n{i}", f"n{i + 1}") for i in range(119)]
    dag = services.create_dag("big-1", nodes=nodes, edges=edges)
    rows = Node.objects.filter(dag=dag).order_by("created_at", "node_id")
    assert rows.count() == 120
    assert all(
        (status, metrics, created) == ("pending", {}, dag.created_at)
        for status, metrics, created in rows.values_list("status", "metrics", "created_at")
    )
    assert Node.objects.get(dag=dag, node_id="n7").label == "N 7"
    assert set(Edge.objects.filter(dag=dag).values_list("src", "dst")) == set(edges)
    flushed = services.apply(
        "big-1",
        [Delta("node_state", {"node_id": f"n{i}", "status": "running"}) for i in range(120)],
    )
    assert flushed.results == list(range(2, 122))
    stored = Event.objects.filter(dag=dag, seq__gt=1).order_by("seq")
    assert [e.seq for e in stored] == list(range(2, 122))
    assert {(e.type, e.command, e.created_at) for e in stored} == {
        ("node_state", "", stored[0].created_at)
    }
    assert stored[5].payload == {"node_id": "n5", "status": "running"}
    assert Node.objects.filter(dag=dag, status="running").count() == 120


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dag_id": "has space"}, "Bad DAG id"),
        ({"dag_id": ""}, "Bad DAG id"),
        ({"dag_id": "x" * 101}, "Bad DAG id"),
        ({"dag_id": "a/b"}, "Bad DAG id"),
        ({"dag_id": "."}, "Bad DAG id"),
        ({"dag_id": ".."}, "Bad DAG id"),
        ({"nodes": ["a", "a"]}, "Duplicate node id"),
        ({"nodes": ["a", {"id": "a", "label": "again"}]}, "Duplicate node id"),
        ({"nodes": ["a"], "edges": [("a", "ghost")]}, "unknown node 'ghost'"),
        ({"nodes": ["a"], "edges": [("ghost", "a")]}, "unknown node 'ghost'"),
        ({"nodes": ["a", "b"], "edges": [("a", "b"), ("a", "b")]}, "Duplicate edge"),
        ({"nodes": ["a", "b"], "edges": [("a", "b"), ("b", "a")]}, "cycle: "),
        ({"nodes": ["a"], "edges": [("a", "a")]}, "cycle: a -> a"),
        ({"nodes": ["a", "b"], "edges": [{"from": "a", "to": "b", "x": 1}]}, "Bad edge"),
        ({"nodes": ["a", "b"], "edges": [("a",)]}, "Bad edge"),
        ({"nodes": ["a", "b"], "edges": [("a", "")]}, "Bad edge"),
        ({"nodes": [""]}, "Bad node"),
        ({"nodes": [{"id": "a", "colour": "red"}]}, "Bad node"),
        ({"budget": -1}, "non-negative"),
        ({"budget": float("nan")}, "non-negative"),
        ({"budget": float("inf")}, "non-negative"),
        ({"budget": True}, "non-negative"),
        ({"budget": "5"}, "non-negative"),
        ({"name": "n" * 201}, "200 characters"),
    ],
)
def test_create_dag_refusals_create_nothing(kwargs: dict[str, Any], match: str) -> None:
    arguments = {"dag_id": "new-1", **kwargs}
    dag_id = arguments.pop("dag_id")
    with pytest.raises(InvalidDelta, match=match):
        services.create_dag(dag_id, **arguments)
    assert not Dag.objects.exists()
    assert not Node.objects.exists()
    assert not Edge.objects.exists()
    assert not Event.objects.exists()


def test_create_dag_names_the_cycle() -> None:
    with pytest.raises(InvalidDelta) as info:
        services.create_dag("c", nodes=["a", "b", "c"], edges=[("a", "b"), ("b", "c"), ("c", "a")])
    assert "a -> b -> c -> a" in info.value.message


def test_create_existing_dag_is_a_conflict(dag: Dag) -> None:
    error = refused(
        Conflict, lambda: services.create_dag("etl-1", nodes=["other"]), "already exists"
    )
    assert error.code == "conflict"


def test_ids_of_any_allowed_shape() -> None:
    services.create_dag("A.b_c-9", nodes=["with space / and ✓"])
    services.create_dag("x" * 100)
    services.reports("A.b_c-9").node_state("with space / and ✓", "running")
    assert Dag.objects.count() == 2


# ------------------------------------------------------------------ node_state


@pytest.mark.parametrize(
    "output",
    ["null", 'a "quoted" \\ back\nslash é ☃', {"x": None}, [None, 1.5], 0, False, 2**62, ""],
)
def test_outputs_are_stored_exactly_and_kept_when_not_reported(dag: Dag, output: Any) -> None:
    flushed = services.apply(
        "etl-1",
        [
            Delta("node_state", {"node_id": "extract", "status": "running", "output": output}),
            Delta("node_state", {"node_id": "transform", "status": "running", "output": output}),
        ],
    )
    assert all(isinstance(r, int) for r in flushed.results)
    services.reports("etl-1").node_state("extract", "completed")  # no output: the stored one stays
    for node_id in ("extract", "transform"):
        node = Node.objects.get(dag=dag, node_id=node_id)
        assert node.output == output
        assert type(node.output) is type(output)
    assert [e["output"] for e in events()[1:3]] == [output, output]


def test_metrics_merge_one_level_deep_keeping_what_was_stored(dag: Dag) -> None:
    nested = {"a": {"b": [1, 2.5, None, "é"]}, "n": None, "big": 2**62}
    services.reports("etl-1").node_state("extract", "running", metrics=nested)
    services.reports("etl-1").node_state("extract", "completed", metrics={"a": 1, "c": {"d": True}})
    node = Node.objects.get(dag=dag, node_id="extract")
    assert node.metrics == {"a": 1, "n": None, "big": 2**62, "c": {"d": True}}


def test_node_state_records_status_output_metrics_and_times(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "running", metrics={"rows": 1})
    node = Node.objects.get(dag=dag, node_id="extract")
    assert (node.status, node.started_at is not None, node.finished_at) == ("running", True, None)
    services.reports("etl-1").node_state(
        "extract", "completed", output={"rows": 3}, metrics={"ms": 5}
    )
    node.refresh_from_db()
    assert node.status == "completed"
    assert node.output == {"rows": 3}
    assert node.metrics == {"rows": 1, "ms": 5}  # merged
    assert node.finished_at is not None
    first, second = events()[1:]
    assert first == {
        "type": "node_state",
        "dag_id": "etl-1",
        "seq": 2,
        "ts": first["ts"],
        "node_id": "extract",
        "status": "running",
        "metrics": {"rows": 1},
    }
    assert "output" not in first  # optionals left out, not null
    assert (second["output"], second["metrics"], second["seq"]) == ({"rows": 3}, {"ms": 5}, 3)


@pytest.mark.parametrize(
    ("node_id", "status", "error", "match"),
    [
        ("ghost", "running", InvalidDelta, "Unknown node 'ghost'"),
        ("extract", "done", InvalidDelta, "Invalid enum value 'done'"),
        ("extract", "RUNNING", InvalidDelta, ""),
        ("", "running", InvalidDelta, ""),
    ],
)
def test_node_state_refusals_append_nothing(
    dag: Dag, node_id: str, status: str, error: type[Exception], match: str
) -> None:
    refused(error, lambda: services.reports("etl-1").node_state(node_id, status), match)  # type: ignore[arg-type]
    assert Dag.objects.get(pk="etl-1").last_seq == 1


def test_deltas_on_unknown_dag_are_not_found() -> None:
    for call in (
        lambda: services.reports("nope").node_state("a", "running"),
        lambda: services.reports("nope").edge_active("a", "b"),
        lambda: services.reports("nope").mutate({"op": "add_node", "node": {"id": "a"}}),
        lambda: services.reports("nope").cost(spent=1),
        lambda: services.reports("nope").complete(),
        lambda: services.reports("nope").fail("x"),
        lambda: services.reports("nope").set_state("paused"),
    ):
        with pytest.raises(NotFound):
            call()
    assert not Event.objects.exists()


# ----------------------------------------------------------------- edge_active


def test_edge_active_uses_from_and_to(dag: Dag) -> None:
    services.reports("etl-1").edge_active("extract", "transform")
    event = events()[-1]
    assert (event["type"], event["from"], event["to"]) == ("edge_active", "extract", "transform")
    assert "src" not in event and "dst" not in event


def test_edge_active_on_unknown_edge_is_refused(dag: Dag) -> None:
    refused(
        InvalidDelta,
        lambda: services.reports("etl-1").edge_active("extract", "load"),
        "Unknown edge",
    )


# ---------------------------------------------------------------------- mutate


def test_add_node(dag: Dag) -> None:
    services.reports("etl-1").mutate({"op": "add_node", "node": {"id": "retry", "label": "Retry"}})
    assert Node.objects.get(dag=dag, node_id="retry").label == "Retry"
    assert events()[-1]["mutation"] == {"op": "add_node", "node": {"id": "retry", "label": "Retry"}}


def test_remove_node_removes_its_edges(dag: Dag) -> None:
    services.reports("etl-1").mutate({"op": "remove_node", "node_id": "transform"})
    assert list(Node.objects.filter(dag=dag).values_list("node_id", flat=True)) == [
        "extract",
        "load",
    ]
    assert not Edge.objects.filter(dag=dag).exists()
    # The edges that went with the node are recorded, so history can show them.
    assert events()[-1]["mutation"] == {
        "op": "remove_node",
        "node_id": "transform",
        "edges": [{"from": "extract", "to": "transform"}, {"from": "transform", "to": "load"}],
    }


def test_add_and_remove_edge(dag: Dag) -> None:
    services.reports("etl-1").mutate({"op": "add_edge", "from": "extract", "to": "load"})
    assert Edge.objects.filter(dag=dag, src="extract", dst="load").exists()
    services.reports("etl-1").mutate({"op": "remove_edge", "from": "extract", "to": "load"})
    assert not Edge.objects.filter(dag=dag, src="extract", dst="load").exists()
    added, removed = (e["mutation"] for e in events()[-2:])
    assert added == {"op": "add_edge", "from": "extract", "to": "load"}
    assert removed == {"op": "remove_edge", "from": "extract", "to": "load"}


@pytest.mark.parametrize(
    ("mutation", "match"),
    [
        ({"op": "add_node", "node": {"id": "extract"}}, "'extract' already exists"),
        ({"op": "remove_node", "node_id": "ghost"}, "Unknown node 'ghost'"),
        ({"op": "add_edge", "from": "extract", "to": "ghost"}, "unknown node 'ghost'"),
        ({"op": "add_edge", "from": "ghost", "to": "load"}, "unknown node 'ghost'"),
        ({"op": "add_edge", "from": "extract", "to": "transform"}, "already exists"),
        (
            {"op": "add_edge", "from": "load", "to": "extract"},
            "would create a cycle: extract -> transform -> load -> extract",
        ),
        ({"op": "add_edge", "from": "load", "to": "load"}, "cycle: load -> load"),
        ({"op": "remove_edge", "from": "extract", "to": "load"}, "Unknown edge"),
        ({"op": "rename", "node_id": "extract"}, "Invalid value 'rename'"),
        ({"op": "add_edge", "src": "extract", "dst": "load"}, ""),
        ({"op": "add_node", "node": {"id": "x"}, "extra": 1}, "unknown field"),
        ({"node_id": "extract"}, "op"),
    ],
)
def test_mutation_refusals_change_nothing(dag: Dag, mutation: dict[str, Any], match: str) -> None:
    refused(InvalidDelta, lambda: services.reports("etl-1").mutate(mutation), match)


# ------------------------------------------------------------------------ cost


def test_cost_sets_absolute_spent_and_budget(dag: Dag) -> None:
    services.reports("etl-1").cost(spent=1.25)
    services.reports("etl-1").cost(spent=2)
    services.reports("etl-1").cost(budget=20)
    first, second, third = events()[-3:]
    assert {k: first[k] for k in ("spent", "budget", "remaining")} == {
        "spent": 1.25,
        "budget": 10,
        "remaining": 8.75,
    }
    assert (second["spent"], second["remaining"]) == (2, 8)
    assert (third["budget"], third["remaining"]) == (20, 18)
    dag.refresh_from_db()
    assert (dag.spent, dag.budget) == (2, 20)


def test_cost_without_budget_has_null_remaining() -> None:
    services.create_dag("nb")
    services.reports("nb").cost(spent=3)
    event = events("nb")[-1]
    assert (event["spent"], event["budget"], event["remaining"]) == (3, None, None)


def test_cost_add_increments_spent_under_the_lock(dag: Dag) -> None:
    services.reports("etl-1").cost(spent=1)
    services.reports("etl-1").cost(add=0.1)
    services.reports("etl-1").cost(add=0.2, budget=12)
    assert [(e["spent"], e["budget"]) for e in events()[-2:]] == [(1.1, 10), (1.3, 12)]
    dag.refresh_from_db()
    assert dag.spent == 1.3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"add": -1},
        {"add": float("nan")},
        {"add": 1, "spent": 2},
        {"spent": -0.01},
        {"budget": -1},
        {"spent": float("nan")},
        {"spent": float("inf")},
        {"spent": True},
        {"spent": "1"},
        {},
    ],
)
def test_bad_cost_is_refused(dag: Dag, kwargs: dict[str, Any]) -> None:
    refused(InvalidDelta, lambda: services.reports("etl-1").cost(**kwargs))


# ------------------------------------------------------ complete / fail / state


def test_complete_sets_results_and_terminal_status(dag: Dag) -> None:
    services.reports("etl-1").complete({"rows": 1200})
    dag.refresh_from_db()
    assert (dag.status, dag.results, dag.finished_at is not None) == (
        "completed",
        {"rows": 1200},
        True,
    )
    done, final = events()[-2:]
    assert (done["type"], done["results"]) == ("execution_complete", {"rows": 1200})
    assert (final["type"], final["state"]) == ("execution_state", "completed")
    assert final["seq"] == done["seq"] + 1


def test_fail_emits_error_then_failed(dag: Dag) -> None:
    services.reports("etl-1").fail("disk full", node_id="load")
    dag.refresh_from_db()
    assert dag.status == "failed"
    error, final = events()[-2:]
    assert (error["type"], error["message"], error["node_id"]) == ("error", "disk full", "load")
    assert final["state"] == "failed"


def test_report_error_keeps_running_and_omits_missing_node(dag: Dag) -> None:
    services.reports("etl-1").error("retrying")
    event = events()[-1]
    assert (event["type"], event["message"]) == ("error", "retrying")
    assert "node_id" not in event
    assert Dag.objects.get(pk="etl-1").status == "running"


@pytest.mark.parametrize(
    "finish",
    [lambda: services.reports("etl-1").complete(), lambda: services.reports("etl-1").fail("x")],
)
def test_finished_dag_takes_no_more_deltas(dag: Dag, finish: Callable[[], Any]) -> None:
    finish()
    for call in (
        lambda: services.reports("etl-1").node_state("extract", "running"),
        lambda: services.reports("etl-1").edge_active("extract", "transform"),
        lambda: services.reports("etl-1").mutate({"op": "add_node", "node": {"id": "z"}}),
        lambda: services.reports("etl-1").cost(spent=1),
        lambda: services.reports("etl-1").error("late"),
        lambda: services.reports("etl-1").complete(),
        lambda: services.reports("etl-1").fail("again"),
        lambda: services.reports("etl-1").set_state("paused"),
        lambda: services.open_gate("etl-1", "load", {"title": "late"}),
    ):
        refused(Conflict, call)


def test_set_state_transitions(dag: Dag) -> None:
    services.reports("etl-1").set_state("paused")
    refused(
        Conflict, lambda: services.reports("etl-1").set_state("paused"), "from paused to paused"
    )
    services.reports("etl-1").set_state("running")
    refused(
        Conflict, lambda: services.reports("etl-1").set_state("running"), "from running to running"
    )
    services.reports("etl-1").set_state("cancelled")
    dag.refresh_from_db()
    assert (dag.status, dag.finished_at is not None) == ("cancelled", True)
    assert [e["state"] for e in events()[1:]] == ["paused", "running", "cancelled"]
    assert all(not e.command for e in Event.objects.filter(dag=dag))  # not people's commands


@pytest.mark.parametrize("target", ["completed", "failed", "cancelling", "bogus"])
def test_set_state_refuses_other_targets(dag: Dag, target: str) -> None:
    refused(
        InvalidDelta, lambda: services.reports("etl-1").set_state(target), "complete() or fail()"
    )


# --------------------------------------------------------------------- seqs


def test_seqs_are_consecutive_from_one(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "running")
    with pytest.raises(InvalidDelta):
        services.reports("etl-1").node_state("ghost", "running")
    services.reports("etl-1").edge_active("extract", "transform")
    with pytest.raises(InvalidDelta):
        services.reports("etl-1").mutate({"op": "add_edge", "from": "load", "to": "extract"})
    services.reports("etl-1").cost(spent=1)
    services.reports("etl-1").complete(None)
    seqs = list(Event.objects.filter(dag=dag).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 7))
    dag.refresh_from_db()
    assert dag.last_seq == 6
    assert [e["seq"] for e in events()] == seqs


def test_each_dag_has_its_own_seqs(dag: Dag) -> None:
    services.create_dag("other", nodes=["a"])
    services.reports("other").node_state("a", "running")
    services.reports("etl-1").node_state("load", "running")
    assert [e["seq"] for e in events("other")] == [1, 2]
    assert [e["seq"] for e in events()] == [1, 2]


def test_every_stored_payload_validates_against_the_protocol(dag: Dag, make_user) -> None:
    user = make_user("decide_gate", "control_dag", "view_dag")
    services.reports("etl-1").node_state("extract", "completed", output=[1, 2])
    services.reports("etl-1").edge_active("extract", "transform")
    services.reports("etl-1").mutate({"op": "add_node", "node": {"id": "n"}})
    services.reports("etl-1").cost(spent=1)
    services.open_gate("etl-1", "load", {"title": "ok?"})
    services.decide_gate("etl-1", "load", "reject", actor=user)
    services.control("etl-1", "cancel", actor=user)
    services.reports("etl-1").set_state("cancelled")
    for event in Event.objects.filter(dag=dag):
        protocol.validate_payload({"type": event.type, **event.payload})


# ------------------------------------------------------- a gate's node waits


def kinds(dag_id: str = "etl-1", after: int = 1) -> list[tuple[str, Any, Any]]:
    return [
        (e["type"], e.get("node_id"), e.get("status")) for e in events(dag_id) if e["seq"] > after
    ]


def test_a_new_gate_puts_its_node_in_waiting_whatever_the_engine_said(dag: Dag) -> None:
    services.reports("etl-1").node_state("transform", "running")
    services.open_gate("etl-1", "transform", {"title": "ok?"})
    assert kinds(after=2) == [
        ("node_state", "transform", "waiting"),
        ("human_gate_waiting", "transform", None),
    ]
    assert Node.objects.get(dag=dag, node_id="transform").status == "waiting"
    # Asking again (an engine that reattached) changes nothing.
    services.open_gate("etl-1", "transform", {"title": "ok?"})
    assert Dag.objects.get(pk="etl-1").last_seq == 4


def test_a_node_already_waiting_gets_no_second_event(dag: Dag) -> None:
    services.reports("etl-1").node_state("load", "waiting")
    services.open_gate("etl-1", "load", {"title": "ok?"})
    assert kinds(after=2) == [("human_gate_waiting", "load", None)]


def test_in_one_flush_the_gate_wins_over_an_earlier_report_and_a_later_one_over_it(
    dag: Dag,
) -> None:
    services.apply(
        "etl-1",
        [
            Delta("node_state", {"node_id": "extract", "status": "running"}),
            Delta("open_gate", {"node_id": "extract", "presentation": {}}),
            Delta("mutate", {"mutation": {"op": "add_node", "node": {"id": "new"}}}),
            Delta("open_gate", {"node_id": "new", "presentation": {}}),
            Delta("open_gate", {"node_id": "not-a-node", "presentation": {}}),
            Delta("node_state", {"node_id": "new", "status": "completed"}),
        ],
    )
    statuses = dict(Node.objects.filter(dag=dag).values_list("node_id", "status"))
    assert (statuses["extract"], statuses["new"]) == ("waiting", "completed")
    assert [k for k in kinds() if k[0] == "node_state"] == [
        ("node_state", "extract", "running"),
        ("node_state", "extract", "waiting"),
        ("node_state", "new", "waiting"),
        ("node_state", "new", "completed"),
    ]


# ------------------------------------------------------- values JSON cannot hold


@pytest.mark.parametrize(
    "call",
    [
        lambda: services.reports("etl-1").node_state("extract", "running", output=object()),
        lambda: services.reports("etl-1").node_state("extract", "running", output=float("nan")),
        lambda: services.reports("etl-1").node_state(
            "extract", "running", metrics={"x": float("inf")}
        ),
        # Plain strings and floats take a shortcut past the full check: not past the refusal.
        lambda: services.reports("etl-1").node_state("extract", "running", output="a\x00b"),
        lambda: services.reports("etl-1").node_state("extract", "running", output=float("-inf")),
        lambda: services.reports("etl-1").node_state("extract", "running", metrics={"k\x00": 1}),
        lambda: services.reports("etl-1").error("boom\x00"),
        lambda: services.reports("etl-1").complete({"rows": object()}),
        lambda: services.open_gate("etl-1", "load", {"when": object()}),
        lambda: services.reports("etl-1").error(object()),
    ],
)
def test_values_json_cannot_hold_are_refused(dag: Dag, call: Callable[[], Any]) -> None:
    refused(InvalidDelta, call)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: services.reports("etl-1").node_state("extract", "done"),
            "valid values: pending, running, waiting, completed, failed, skipped, cancelled.",
        ),
        (
            lambda: services.reports("etl-1").mutate({"op": "rename", "node_id": "extract"}),
            "valid values: add_node, remove_node, add_edge, remove_edge.",
        ),
        (
            lambda: services.reports("etl-1").node_state("extract", "running", output=object()),
            "output is not JSON: ",
        ),
        (
            lambda: services.reports("etl-1").node_state(
                "extract", "running", metrics={"x": float("nan")}
            ),
            "metrics holds nan, which JSON cannot represent",
        ),
        (lambda: services.reports("etl-1").complete({"rows": object()}), "results is not JSON: "),
        (
            lambda: services.open_gate("etl-1", "load", ["not", "a", "mapping"]),  # type: ignore[arg-type]
            "presentation must be a mapping (a dict), not list.",
        ),
        (lambda: services.open_gate("etl-1", "load", "text"), "presentation must be a mapping"),  # type: ignore[arg-type]
        (
            lambda: services.reports("etl-1").mutate([("op", "add_node")]),
            "mutation must be a mapping",
        ),  # type: ignore[arg-type]
        (
            lambda: services.reports("etl-1").node_state("extract", "running", metrics=[1]),
            "metrics must",
        ),  # type: ignore[arg-type]
    ],
)
def test_engine_refusals_say_what_is_valid(dag: Dag, call: Callable[[], Any], match: str) -> None:
    refused(InvalidDelta, call, match)


def test_json_compatible_values_are_stored_as_json(dag: Dag) -> None:
    from datetime import date

    services.reports("etl-1").node_state("extract", "completed", output={"day": date(2026, 1, 2)})
    assert Node.objects.get(dag=dag, node_id="extract").output == {"day": "2026-01-02"}
    assert events()[-1]["output"] == {"day": "2026-01-02"}


def test_values_past_max_value_bytes_are_stored_truncated_with_their_size(
    dag: Dag, settings: Any
) -> None:
    settings.DAGSTREAM = {"MAX_VALUE_BYTES": 100}
    stand_in = {"truncated": True, "bytes": 502, "preview": '"' + "x" * 99}
    services.reports("etl-1").node_state("extract", "completed", output="x" * 500, metrics={"n": 1})
    assert Node.objects.get(dag=dag, node_id="extract").output == stand_in
    assert events()[-1]["output"] == stand_in and events()[-1]["metrics"] == {"n": 1}
    services.reports("etl-1").node_state("transform", "running", metrics={"log": "y" * 200})
    assert events()[-1]["metrics"]["bytes"] == len('{"log":""}') + 200
    services.open_gate("etl-1", "load", {"diff": "d" * 200})
    presentation = Gate.objects.get(dag=dag, node_id="load").presentation
    assert presentation["truncated"] is True and presentation["preview"].startswith('{"diff":"dd')
    assert events()[-1]["presentation"] == presentation
    services.reports("etl-1").error("é" * 80)  # 160 bytes: cut at 100, and says how long
    assert events()[-1]["message"] == "é" * 50 + "… [truncated: 160 bytes]"
    services.reports("etl-1").complete({"rows": list(range(100))})
    assert events()[-2]["results"]["truncated"] is True


def test_a_truncated_value_is_the_shape_celery_results_have() -> None:
    from dagstream_app.bounds import bounded_json, bounded_text

    assert bounded_json({"rows": [1, 2]}, 100) == {"rows": [1, 2]}
    assert bounded_json("x" * 500, 100) == {
        "truncated": True,
        "bytes": 502,
        "preview": '"' + "x" * 99,
    }
    assert bounded_json("é" * 10, 4)["preview"] == '"é'  # a character cut in two is left out
    assert bounded_text("short", 10) is not None and bounded_text("é" * 3, 6) == "é" * 3
    assert bounded_text("é" * 3, 5) == "éé… [truncated: 6 bytes]"


def test_a_refused_delta_in_a_flush_leaves_the_others(dag: Dag) -> None:
    flushed = services.apply(
        "etl-1",
        [
            Delta("node_state", {"node_id": "extract", "status": "running"}),
            Delta("node_state", {"node_id": "extract", "status": "failed", "output": object()}),
            Delta("node_state", {"node_id": "ghost", "status": "running"}),
            Delta("node_state", {"node_id": "load", "status": "running"}),
        ],
    )
    assert [type(r).__name__ for r in flushed.results] == [
        "int",
        "InvalidDelta",
        "InvalidDelta",
        "int",
    ]
    assert flushed.results[0] == 2 and flushed.results[3] == 3
    assert [(e["seq"], e["node_id"]) for e in events()[1:]] == [(2, "extract"), (3, "load")]
    assert Node.objects.get(dag=dag, node_id="extract").status == "running"
    assert [e["seq"] for e in flushed.events] == [2, 3]


def test_one_flush_is_a_fixed_handful_of_statements(dag: Dag) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def flush(count: int) -> int:
        deltas = [
            Delta(
                "node_state",
                {"node_id": NODE_IDS[i % 3], "status": "running", "metrics": {"i": i}},
            )
            for i in range(count)
        ]
        with CaptureQueriesContext(connection) as queries:
            flushed = services.apply("etl-1", deltas)
        assert all(isinstance(r, int) for r in flushed.results)
        control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
        return sum(not q["sql"].startswith(control) for q in queries.captured_queries)

    flush(1)  # reads the structure once; later flushes reuse it
    few, many = flush(10), flush(600)
    # Lock, read the merged metrics, one INSERT of events, one UPDATE of nodes,
    # one UPDATE of the DAG (SQLite takes its lock with a write, then reads).
    assert few == many <= 6
    assert Event.objects.filter(dag=dag).count() == 1 + 1 + 10 + 600
    metrics = Node.objects.get(dag=dag, node_id="extract").metrics
    assert metrics == {"i": 597}  # the last of the 600 that went to "extract"


def test_deltas_in_one_flush_see_each_other(dag: Dag) -> None:
    flushed = services.apply(
        "etl-1",
        [
            Delta("mutate", {"mutation": {"op": "add_node", "node": {"id": "extra"}}}),
            Delta("node_state", {"node_id": "extra", "status": "running", "metrics": {"a": 1}}),
            Delta("node_state", {"node_id": "extra", "status": "completed", "metrics": {"b": 2}}),
            Delta("node_state", {"node_id": "transform", "status": "running"}),
            Delta("mutate", {"mutation": {"op": "remove_node", "node_id": "transform"}}),
            Delta("edge_active", {"src": "extract", "dst": "transform"}),  # went with it
            Delta("complete", {"results": {"ok": True}}),
            Delta("node_state", {"node_id": "extract", "status": "running"}),  # too late
        ],
    )
    kinds = [type(r).__name__ for r in flushed.results]
    assert kinds == ["int", "int", "int", "int", "int", "InvalidDelta", "int", "Conflict"]
    extra = Node.objects.get(dag=dag, node_id="extra")
    assert (extra.status, extra.metrics) == ("completed", {"a": 1, "b": 2})
    assert extra.started_at is not None and extra.finished_at is not None
    assert not Node.objects.filter(dag=dag, node_id="transform").exists()
    assert Dag.objects.get(pk="etl-1").status == "completed"
    assert [e["seq"] for e in events()] == list(range(1, 9))


def test_another_process_changing_the_structure_is_noticed(dag: Dag) -> None:
    services.reports("etl-1").node_state(
        "extract", "running"
    )  # this process now knows the structure
    # Another process adds a node: the DAG's structure_version moves on.
    Node.objects.create(dag=dag, node_id="theirs")
    Dag.objects.filter(pk="etl-1").update(structure_version=12345)
    assert services.reports("etl-1").node_state("theirs", "running") == 3


def test_a_created_dag_never_shares_the_default_structure_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 0 is the column's default, which a row not written by services has (a
    # fixture, loaddata). Even the one random draw in 2**62 that is 0 must not
    # give a created DAG that version, or the structure this process remembers
    # for it would be taken for such a row's.
    monkeypatch.setattr(secrets, "randbits", lambda bits: 0)
    assert services.create_dag("etl-0", nodes=["a"]).structure_version != 0
    services.reports("etl-0").node_state("a", "running")  # this process remembers its structure
    services.reports("etl-0").complete()
    services.delete_dag("etl-0")
    restored = Dag.objects.create(dag_id="etl-0")  # the run comes back from a fixture
    Node.objects.create(dag=restored, node_id="b")
    assert services.reports("etl-0").node_state("b", "running") == 1  # read afresh, not remembered


# ------------------------------------------------------------------ publishing


def _receive(layer: Any, channel: str) -> dict[str, Any]:
    async def receive() -> dict[str, Any]:
        message: dict[str, Any] = await asyncio.wait_for(layer.receive(channel), 5)
        return message

    return async_to_sync(receive)()


def test_events_are_published_after_commit_only(
    dag: Dag, django_capture_on_commit_callbacks
) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(broadcast.group_name("etl-1"), channel)
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(InvalidDelta),
    ):
        services.reports("etl-1").node_state("ghost", "running")
    assert callbacks == []  # a refusal publishes nothing
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.reports("etl-1").complete({"ok": True})
    assert len(callbacks) == 1
    # One layer message per transaction, carrying its events in seq order.
    message = _receive(layer, channel)
    assert message["type"] == "dagstream.events"
    published = message["events"]
    assert [m["seq"] for m in published] == [2, 3]
    assert [m["event"] for m in published] == ["execution_complete", "execution_state"]
    assert [m["terminal"] for m in published] == [False, True]
    assert [json.loads(m["frame"]) for m in published] == events()[1:]
    async_to_sync(layer.group_discard)(broadcast.group_name("etl-1"), channel)


# ------------------------------------------------------------ people's commands


def test_control_pause_resume_cancel(dag: Dag, make_user) -> None:
    user = make_user("control_dag", "view_dag")
    services.control("etl-1", "pause", actor=user)
    services.control("etl-1", "resume", actor=user)
    services.control("etl-1", "cancel", actor=user)
    dag.refresh_from_db()
    assert dag.status == "cancelling"
    assert list(
        Event.objects.filter(dag=dag).exclude(command="").values_list("command", "payload")
    ) == [
        ("pause", {"state": "paused"}),
        ("resume", {"state": "running"}),
        ("cancel", {"state": "cancelling"}),
    ]


def test_control_refusals(dag: Dag, make_user) -> None:
    operator = make_user("control_dag", "view_dag")
    viewer = make_user("view_dag")
    refused(Forbidden, lambda: services.control("etl-1", "pause", actor=viewer))
    refused(Forbidden, lambda: services.control("etl-1", "pause", actor=None))
    refused(Conflict, lambda: services.control("etl-1", "resume", actor=operator), "running")
    refused(InvalidDelta, lambda: services.control("etl-1", "stop", actor=operator))
    with pytest.raises(NotFound):
        services.control("ghost", "pause", actor=operator)


def test_repeated_command_id_is_applied_once(dag: Dag, make_user) -> None:
    user = make_user("control_dag", "view_dag")
    services.control("etl-1", "pause", actor=user, command_id="c1")
    before = fingerprint()
    services.control("etl-1", "pause", actor=user, command_id="c1")  # no Conflict: a repeat
    assert fingerprint() == before


def test_an_id_used_for_another_command_is_a_conflict(dag: Dag, make_user) -> None:
    user = make_user("control_dag", "decide_gate", "view_dag")
    services.control("etl-1", "pause", actor=user, command_id=5)
    # Not a repeat: acking it would claim a resume that never happened.
    refused(
        Conflict,
        lambda: services.control("etl-1", "resume", actor=user, command_id=5),
        "already used for pause",
    )
    services.open_gate("etl-1", "load", {})
    refused(
        Conflict,
        lambda: services.decide_gate("etl-1", "load", "approve", actor=user, command_id=5),
        "already used for pause",
    )
    assert Dag.objects.get(pk="etl-1").status == "paused"
    services.control("etl-1", "resume", actor=user, command_id=6)  # a fresh id works
    assert Dag.objects.get(pk="etl-1").status == "running"


def test_gate_first_decision_wins(dag: Dag, make_user) -> None:
    alice = make_user("decide_gate", "view_dag", username="alice")
    bob = make_user("decide_gate", "view_dag", username="bob")
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    assert services.open_gate("etl-1", "load", {"title": "again"}).presentation == {
        "title": "Ship it?"
    }  # one gate per node; reopening emits nothing
    gate = services.decide_gate("etl-1", "load", "modify", feedback="less", actor=alice)
    assert (gate.status, gate.decision, gate.decided_by) == ("modified", "modify", "alice")
    error = refused(
        Conflict,
        lambda: services.decide_gate("etl-1", "load", "approve", actor=bob),
        "already decided",
    )
    assert isinstance(error, Conflict)
    assert error.decision is not None
    assert {k: error.decision[k] for k in ("node_id", "decision", "feedback", "decided_by")} == {
        "node_id": "load",
        "decision": "modify",
        "feedback": "less",
        "decided_by": "alice",
    }
    waiting, decided = events()[-2:]
    assert (waiting["type"], waiting["presentation"]) == (
        "human_gate_waiting",
        {"title": "Ship it?"},
    )
    assert decided == {
        "type": "gate_decided",
        "dag_id": "etl-1",
        "seq": decided["seq"],
        "ts": decided["ts"],
        "node_id": "load",
        "decision": "modify",
        "feedback": "less",
        "decided_by": "alice",
    }


def test_gate_decision_refusals(dag: Dag, make_user) -> None:
    decider = make_user("decide_gate", "view_dag")
    viewer = make_user("view_dag")
    services.open_gate("etl-1", "load", {})
    refused(Forbidden, lambda: services.decide_gate("etl-1", "load", "approve", actor=viewer))
    refused(InvalidDelta, lambda: services.decide_gate("etl-1", "load", "yes", actor=decider))
    refused(
        InvalidDelta,
        lambda: services.decide_gate("etl-1", "load", "modify", feedback=" ", actor=decider),
        "needs feedback",
    )
    refused(
        InvalidDelta,
        lambda: services.decide_gate("etl-1", "load", "reject", feedback="x" * 4001, actor=decider),
        "limit is 4000",
    )
    refused(NotFound, lambda: services.decide_gate("etl-1", "extract", "approve", actor=decider))
    assert Gate.objects.get(dag=dag, node_id="load").status == "pending"


def test_system_decision_has_no_decider(dag: Dag) -> None:
    services.open_gate("etl-1", "load", {}, default="reject")
    gate = services.decide_gate("etl-1", "load", "reject")
    assert (gate.decision, gate.decided_by) == ("reject", "")


def test_format_ts_is_utc_with_milliseconds() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(moment) == "2026-01-02T01:04:05.678Z"


# ------------------------------------------------------------------ deleting


def test_delete_dag_refuses_unfinished_runs_and_changes_nothing(dag: Dag, make_user) -> None:
    before = fingerprint()
    with pytest.raises(Conflict, match="only finished runs can be deleted"):
        services.delete_dag("etl-1")
    assert fingerprint() == before
    with pytest.raises(NotFound):
        services.delete_dag("ghost")


def test_delete_dag_removes_the_run_and_everything_it_holds(
    dag: Dag, make_user, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    services.open_gate("etl-1", "load", {"title": "Load?"})
    services.decide_gate(
        "etl-1", "load", "approve", actor=make_user("decide_gate", "view_dag"), command_id=1
    )
    for _ in range(7):
        services.reports("etl-1").node_state("extract", "running")
    services.reports("etl-1").complete()
    monkeypatch.setattr(deletion, "DELETE_CHUNK", 3)  # the log goes in several transactions
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.delete_dag("etl-1")
    assert len(callbacks) == 1
    for model in (Dag, Node, Edge, Gate, Event, CommandReceipt):
        assert not model.objects.exists(), model


def test_delete_dag_needs_the_delete_permission(dag: Dag, make_user) -> None:
    services.reports("etl-1").complete()
    with pytest.raises(Forbidden):
        services.delete_dag("etl-1", actor=make_user("view_dag", "control_dag"))
    with pytest.raises(NotFound):
        services.delete_dag("ghost", actor=make_user("delete_dag"))
    services.delete_dag("etl-1", actor=make_user("delete_dag"))
    assert not Dag.objects.exists()


def test_a_deleted_run_is_announced_to_its_viewers(
    dag: Dag, django_capture_on_commit_callbacks
) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(broadcast.group_name("etl-1"), channel)
    services.reports("etl-1").complete()
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_dag("etl-1")
    assert _receive(layer, channel) == {"type": "dagstream.deleted", "group": "dagstream.etl-1"}
    async_to_sync(layer.group_discard)(broadcast.group_name("etl-1"), channel)


# ------------------------------------------------------------- NUL characters


@pytest.mark.parametrize(
    "call",
    [
        lambda: services.reports("etl-1").node_state(
            "extract", "completed", output={"text": "a\x00b"}
        ),
        lambda: services.reports("etl-1").node_state("extract", "completed", metrics={"k\x00": 1}),
        lambda: services.reports("etl-1").mutate(
            {"op": "add_node", "node": {"id": "n", "label": "\x00"}}
        ),
        lambda: services.open_gate("etl-1", "load", {"title": "Ship\x00?"}),
        lambda: services.reports("etl-1").error("bad\x00news"),
        lambda: services.reports("etl-1").complete({"rows": ["\x00"]}),
        lambda: services.create_dag("etl-2", name="na\x00me"),
        lambda: services.create_dag("etl-3", nodes=[{"id": "a\x00"}]),
    ],
    ids=["output", "metrics-key", "label", "presentation", "error", "results", "name", "node-id"],
)
def test_nul_characters_are_refused_on_every_database(dag: Dag, call: Callable[[], Any]) -> None:
    error = refused(InvalidDelta, call)
    assert "NUL" in error.message


def test_nul_in_a_decision_is_refused(dag: Dag, make_user) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship?"})
    user = make_user("view_dag", "decide_gate")
    refused(
        InvalidDelta,
        lambda: services.decide_gate("etl-1", "load", "modify", feedback="\x00", actor=user),
        "NUL",
    )
    refused(
        InvalidDelta,
        lambda: services.decide_gate("etl-1", "lo\x00ad", "approve", actor=user),
        "NUL",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("dag_id", ["...", ".hidden", "a..b", "v1.2", "-_."])
def test_ids_with_dots_are_kept_unless_a_browser_would_resolve_them(dag_id: str) -> None:
    services.create_dag(dag_id, nodes=["a"])
    assert Dag.objects.filter(pk=dag_id).exists()
