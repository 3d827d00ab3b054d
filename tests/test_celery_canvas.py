"""A canvas as a DAG (no worker needed): nodes, labels, edges, stamps; outputs; refusals."""

from __future__ import annotations

from typing import Any

import pytest
from celery import chain, chord, group

from dagstream_app.celery import GateRejected, gate, launch
from dagstream_app.celery.canvas import DAG_STAMP, NODE_STAMP, launch_graph
from dagstream_app.celery.outputs import error_text, json_output
from dagstream_app.models import Dag
from dagstream_app.services import InvalidDelta
from tests import celery_app as tasks


def _graph(canvas: Any) -> tuple[dict[str, str], set[tuple[str, str]]]:
    graph = launch_graph(canvas, {DAG_STAMP: "d"})
    label = {n["id"]: n["label"] for n in graph.nodes}
    return label, {(label[a], label[b]) for a, b in graph.edges}


def test_a_nested_canvas_has_a_node_per_task_and_edges_for_its_order() -> None:
    canvas = chain(
        tasks.add.si(1, 1),
        group(tasks.add.si(2, 2), chain(tasks.echo.si(1), tasks.echo.s())),
        chord([tasks.add.s(1), tasks.add.s(2)], tasks.total.s()),
        gate.si(title="Ship it?"),
    )
    labels, edges = _graph(canvas)
    assert sorted(labels.values()) == [
        "Ship it?",
        "add",
        "add #2",
        "add #3",
        "add #4",
        "echo",
        "echo #2",
        "total",
    ]
    assert edges == {
        ("add", "add #2"),
        ("add", "echo"),
        ("echo", "echo #2"),
        ("add #2", "add #3"),
        ("add #2", "add #4"),
        ("echo #2", "add #3"),
        ("echo #2", "add #4"),
        ("add #3", "total"),
        ("add #4", "total"),
        ("total", "Ship it?"),
    }


def test_link_callbacks_follow_their_task_and_a_reused_signature_is_refused() -> None:
    first = tasks.add.si(1, 1)
    first.link(tasks.echo.s())
    _, edges = _graph(chain(first, tasks.total.s()))
    assert edges == {("add", "echo"), ("add", "total")}
    same = tasks.add.si(1, 1)
    with pytest.raises(ValueError, match="appears twice"):
        launch_graph(group(same, same), {DAG_STAMP: "d"})


def test_every_task_is_stamped_with_its_dag_and_node_once_the_dag_exists() -> None:
    canvas = group(tasks.add.si(1, 1), tasks.add.si(2, 2))
    graph = launch_graph(canvas, {DAG_STAMP: "d"})
    assert all(DAG_STAMP not in t.options for t in canvas.tasks)
    graph.stamp_tasks()
    for task, node in zip(canvas.tasks, graph.nodes, strict=True):
        assert (task.options[DAG_STAMP], task.options[NODE_STAMP]) == ("d", node["id"])
        assert {DAG_STAMP, NODE_STAMP} <= set(task.options["stamped_headers"])
        assert node["id"] == task.id  # the node is the task


@pytest.mark.django_db
def test_a_refused_launch_sends_nothing_and_a_launched_canvas_is_not_sent_twice() -> None:
    canvas = chain(tasks.add.si(1, 1), tasks.echo.s())
    with pytest.raises(InvalidDelta, match="Bad DAG id"):
        launch(canvas, dag_id="no spaces")
    assert not Dag.objects.exists()
    assert DAG_STAMP not in canvas.tasks[0].options  # free to launch
    canvas.tasks[0].options[DAG_STAMP] = "earlier"  # as a launch leaves it
    with pytest.raises(ValueError, match="launched already"):
        launch(canvas)
    assert not Dag.objects.exists()


def test_outputs_are_json_and_bounded() -> None:
    assert json_output({"rows": [1, 2]}, 100) == {"rows": [1, 2]}
    big = json_output("x" * 500, 100)
    assert big == {"truncated": True, "bytes": 502, "preview": '"' + "x" * 99}
    assert json_output(float("nan"), 100) == {"repr": "nan"}
    assert json_output(object(), 100)["repr"].startswith("<object object")


def test_errors_read_as_one_bounded_line() -> None:
    assert error_text(RuntimeError("boom\nat line 2")) == "RuntimeError: boom"
    assert error_text(KeyError()) == "KeyError"
    assert error_text(GateRejected("rejected by ada: too long")) == "rejected by ada: too long"
    assert len(error_text(ValueError("x" * 2000))) == 500


def test_the_worker_side_imports_before_django_is_set_up() -> None:
    # A Celery worker imports the signal handlers before django.setup(): nothing
    # they import at module level may reach the models (AppRegistryNotReady).
    import subprocess
    import sys

    from tests.servers import ROOT, child_env

    done = subprocess.run(
        [sys.executable, "-c", "import dagstream_app.celery.signals, dagstream_app.celery.tasks"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_groups_and_chord_headers_of_plain_tasks_declare_their_fan_out() -> None:
    canvas = chain(
        group(tasks.add.si(i, i) for i in range(3)),
        chord([tasks.echo.si(i) for i in range(2)], tasks.total.s()),
        group(tasks.add.si(1, 1), chain(tasks.echo.si(1), tasks.echo.s())),  # not a fan-out
    )
    graph = launch_graph(canvas, {DAG_STAMP: "d"})
    declared = {n["label"]: n.get("group", "") for n in graph.nodes}
    assert declared == {
        "add": "add",
        "add #2": "add",
        "add #3": "add",
        "echo": "echo",
        "echo #2": "echo",
        "total": "",
        "add #4": "",
        "echo #3": "",
        "echo #4": "",
    }
