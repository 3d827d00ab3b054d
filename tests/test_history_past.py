"""The history page at an earlier event: a fan-out's members counted from checkpoints show
what folding the whole log shows, at every event (before and after a structure change, a
gate, a retry) and in any order, a page reads the log from the checkpoint before it, and
the whole log is not folded when the structure has not changed since."""

from __future__ import annotations

import importlib
import random
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from dagstream_app import render, services, state, views
from dagstream_app.models import Dag, Event
from dagstream_app.state import checkpoints, earlier
from tests.test_groups import fan_out
from tests.test_groups_timeline import drawn, run_some

pytestmark = pytest.mark.django_db

REGIONS = ("graph", "status", "progress", "cost", "gates", "results", "timeline")


def folded_whole(dag: Dag, seq: int) -> dict[str, Any]:
    """The page's regions at ``seq`` from the whole log folded (the reference)."""
    work = state.history(dag.dag_id, seq)
    assert work is not None
    events = state.recent_events(dag.dag_id, render.TIMELINE_SCAN, seq)
    later = Event.objects.filter(dag_id=dag.dag_id, seq__gt=seq, type="dag_mutated")
    current = not later.exists()
    snap, graph, labels = state.regroup(work.snapshot(), current=current)
    return render.regions(
        snap, (False, False), events, readonly=True, now=work.at, graph=graph, labels=labels
    )


def assert_same_at_every_event(dag_id: str, order: list[int] | None = None) -> None:
    dag = Dag.objects.get(pk=dag_id)
    for seq in order or range(1, dag.last_seq):
        shown = views._past(dag, seq)
        assert shown is not None
        assert shown[0] == seq
        reference = folded_whole(dag, seq)
        for region in REGIONS:
            assert drawn(shown[2][region]) == drawn(reference[region]), (seq, region)


def test_a_fan_out_at_every_event_is_what_the_whole_log_folded_shows(make_user: Any) -> None:
    busy_fan_out(make_user("view_dag", "decide_gate", "control_dag"))
    assert_same_at_every_event("fan")


def busy_fan_out(user: Any) -> None:
    """A fan-out with a retry, two gates, cost updates and structure changes."""
    chunks = fan_out()
    reports = services.reports("fan")
    reports.cost(spent=0.5, budget=10)
    run_some(chunks, done=40, failed=3)
    # A retried member: its last status counts, its first start stays.
    reports.node_state(chunks[40], "running")
    reports.node_state(chunks[40], "completed")
    services.open_gate("fan", chunks[1], {"title": "Check a chunk?"})
    services.decide_gate("fan", chunks[1], "approve", feedback="ok", actor=user)
    # A member added by a mutation (its shape is the fan-out's), and a node outside groups.
    reports.mutate({"op": "add_node", "node": {"id": "chunk-late", "label": "Late"}})
    reports.mutate({"op": "add_edge", "from": "split", "to": "chunk-late"})
    reports.mutate({"op": "add_edge", "from": "chunk-late", "to": "join"})
    reports.node_state("chunk-late", "running")
    reports.mutate({"op": "add_node", "node": {"id": "extra", "label": "Extra"}})
    reports.node_state("extra", "running")
    reports.node_state(chunks[41], "running")
    services.open_gate("fan", "join", {"title": "Ship?"})
    reports.cost(spent=1.25, budget=10)
    services.decide_gate("fan", "join", "reject", feedback="no", actor=user)
    reports.node_state("extra", "completed")
    reports.complete({"rows": 2})


@pytest.mark.parametrize("named", [5000, 0], ids=["by-seq", "searched"])
def test_pages_in_any_order_read_the_log_from_the_checkpoint_before_them(
    make_user: Any, monkeypatch: pytest.MonkeyPatch, named: int
) -> None:
    monkeypatch.setattr(checkpoints, "SPACING", 5)
    # The other nodes' events named by their seqs, or (past MAX_SEQS) searched for.
    monkeypatch.setattr(checkpoints, "MAX_SEQS", named)
    busy_fan_out(make_user("view_dag", "decide_gate", "control_dag"))
    last = Dag.objects.get(pk="fan").last_seq
    changed = Event.objects.filter(dag_id="fan", type="dag_mutated").order_by("seq").last()
    assert changed is not None
    visits = list(range(1, last)) * 2
    random.Random(3).shuffle(visits)
    reads: list[tuple[int, int]] = []  # (from, to) of each read of members' events

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "type = 'node_state' AND seq >" in sql:
            reads.append((params[1], params[2]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        assert_same_at_every_event("fan", visits)
    # Pages before the structure changed fold the whole log; the others count members.
    assert len(reads) == len([seq for seq in visits if seq >= changed.seq])
    # Once a checkpoint at or before it is kept, a page reads at most SPACING events.
    later = reads[len(reads) // 2 :]
    assert all(upto - since < 5 for since, upto in later), later
    assert reads[0][0] == 0


def test_a_run_deleted_and_made_again_is_not_counted_from_the_old_ones_checkpoints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkpoints, "SPACING", 5)
    chunks = fan_out()
    run_some(chunks, done=30)
    services.reports("fan").complete({})
    dag = Dag.objects.get(pk="fan")
    old = views._past(dag, dag.last_seq - 1)
    services.delete_dag("fan")
    chunks = fan_out()
    for chunk in chunks[-8:]:  # not what the old run did first
        services.reports("fan").node_state(chunk, "running")
    dag = Dag.objects.get(pk="fan")
    new = views._past(dag, dag.last_seq - 1)
    assert old is not None and new is not None
    assert drawn(new[2]["graph"]) == drawn(folded_whole(dag, dag.last_seq - 1)["graph"])
    assert drawn(new[2]["graph"]) != drawn(old[2]["graph"])


def test_two_declared_groups_at_every_event(monkeypatch: pytest.MonkeyPatch) -> None:
    first = [{"id": f"a-{i:03d}", "group": "first"} for i in range(60)]
    second = [{"id": f"b-{i:03d}", "group": "second"} for i in range(60)]
    services.create_dag("two", nodes=["start", *first, *second])
    reports = services.reports("two")
    reports.node_state("start", "completed")
    for i in range(0, 60, 7):
        reports.node_state(f"a-{i:03d}", "running")
        reports.node_state(f"b-{i:03d}", "running")
        reports.node_state(f"a-{i:03d}", "failed" if i % 3 else "completed")
    reports.complete({"ok": True})
    assert_same_at_every_event("two")
    # And from checkpoints every 5 events, in any order.
    monkeypatch.setattr(checkpoints, "SPACING", 5)
    visits = list(range(1, Dag.objects.get(pk="two").last_seq))
    random.Random(5).shuffle(visits)
    assert_same_at_every_event("two", visits)


def test_the_whole_log_is_not_folded_when_the_structure_has_not_changed_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks = fan_out()
    run_some(chunks, done=30)
    services.reports("fan").mutate({"op": "add_node", "node": {"id": "extra"}})
    dag = Dag.objects.get(pk="fan")
    mutation = dag.last_seq
    services.reports("fan").node_state("extra", "running")
    folds: list[int] = []
    whole = earlier.history

    def counted(dag_id: str, seq: int, *given: Any) -> Any:
        folds.append(seq)
        return whole(dag_id, seq, *given)

    monkeypatch.setattr(earlier, "history", counted)
    dag.refresh_from_db()
    views._past(dag, mutation)
    views._past(dag, 10)
    # Before the structure changed, its groups are worked out from the whole fold.
    assert folds == [10]


def test_a_page_before_a_structure_change_reads_the_structure_changes_once() -> None:
    chunks = fan_out()
    run_some(chunks, done=10)
    seq = Dag.objects.get(pk="fan").last_seq
    services.reports("fan").mutate({"op": "add_node", "node": {"id": "extra"}})
    services.reports("fan").node_state("extra", "running")
    reads: list[str] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "dag_mutated" in sql or "dag_mutated" in (params or ()):
            reads.append(sql)
        return execute(sql, params, many, context)

    dag = Dag.objects.get(pk="fan")
    with connection.execute_wrapper(watch):
        shown = views._past(dag, seq)  # the whole log folded: the structure changed since
    assert len(reads) == 1, reads
    assert shown is not None
    assert 'data-node-id="extra"' not in shown[2]["graph"]
    for region in REGIONS:
        assert drawn(shown[2][region]) == drawn(folded_whole(dag, seq)[region]), region


def test_events_kept_before_the_columns_get_their_node_and_status() -> None:
    chunks = fan_out()
    run_some(chunks, done=5)
    # As the rows were before migration 0013: no node, no status.
    Event.objects.filter(dag_id="fan").update(node_id="", status="")
    migration = importlib.import_module("dagstream_app.migrations.0013_event_node_status")
    migration.fill(apps, None)
    filled = Event.objects.filter(dag_id="fan", type="node_state").order_by("seq")
    assert [(e.node_id, e.status) for e in filled][:4] == [
        ("split", "running"),
        ("split", "completed"),
        (chunks[0], "running"),
        (chunks[0], "completed"),
    ]
    assert not Event.objects.filter(dag_id="fan").exclude(type="node_state").exclude(node_id="")
    assert_same_at_every_event("fan")
