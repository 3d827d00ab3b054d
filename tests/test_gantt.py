"""The Gantt view: where a run's time went, from the rows and the pause events."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from dagstream_app import live, render, services, state
from dagstream_app.models import Dag, Event, Gate, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(db: Any, make_user: Any) -> Any:
    services.create_dag("g", nodes=[{"id": "a", "label": "Extract"}, "b", "c", "never"])
    user = make_user("decide_gate", "control_dag", "view_dag")
    services.reports("g").node_state("a", "running")
    services.reports("g").node_state("a", "completed")
    services.reports("g").node_state("b", "running")
    services.control("g", "pause", actor=user)
    services.control("g", "resume", actor=user)
    services.open_gate("g", "c", {"title": "ok?"})
    services.decide_gate("g", "c", "approve", actor=user)
    return user


def at(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=100 - seconds)


def place(node_id: str, start: float, end: float | None) -> None:
    Node.objects.filter(dag_id="g", node_id=node_id).update(
        started_at=at(start), finished_at=None if end is None else at(end)
    )


def test_bars_for_nodes_that_ran_or_waited_in_start_order(run: Any) -> None:
    view = state.gantt("g")
    assert view is not None
    assert [(b.node_id, b.label, b.status) for b in view.bars] == [
        ("a", "Extract", "completed"),
        ("b", "b", "running"),
        ("c", "c", "waiting"),  # never ran: its bar starts when its gate opened
    ]
    a, b, c = view.bars
    assert a.end is not None and b.end is None and c.end is None
    assert (c.gate_opened is not None, c.gate_decided is not None, c.gate_status) == (
        True,
        True,
        "approved",
    )
    assert view.more == 0 and view.end is None
    [(paused, resumed)] = view.pauses
    assert paused <= resumed  # type: ignore[operator]


def test_a_pause_still_going_has_no_end(run: Any) -> None:
    services.control("g", "pause", actor=run)
    view = state.gantt("g")
    assert view is not None and len(view.pauses) == 2 and view.pauses[-1][1] is None


def test_only_the_first_rows_are_drawn_and_the_rest_counted(db: Any) -> None:
    services.create_dag("many", nodes=[f"n{i}" for i in range(5)])
    for i in range(5):
        services.reports("many").node_state(f"n{i}", "running")
    view = state.gantt("many", limit=3)
    assert view is not None and [b.node_id for b in view.bars] == ["n0", "n1", "n2"]
    assert view.more == 2
    html = render.gantt_html(view)
    assert "the first 3 that ran, of 5" in html


def test_bars_are_drawn_to_scale_in_run_time(run: Any) -> None:
    Dag.objects.filter(pk="g").update(created_at=at(0), finished_at=at(100), status="completed")
    place("a", 0, 50)
    place("b", 50, 100)
    Node.objects.filter(dag_id="g", node_id__in=["b", "c"]).update(status="completed")
    Gate.objects.filter(dag_id="g").update(created_at=at(60), decided_at=at(80))
    Node.objects.filter(dag_id="g", node_id="c").update(started_at=at(80), finished_at=at(90))
    Event.objects.filter(dag_id="g", type="execution_state").delete()
    html = render.gantt_html(state.gantt("g"))
    found = re.findall(
        r'data-node-id="(\w+)"[^>]*>.*?class="gantt-bar" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"',
        html,
    )
    bars = {node_id: (float(x), float(w)) for node_id, x, w in found}
    chart = render.GANTT_W - render.GANTT_LABEL_W - 10
    left = render.GANTT_LABEL_W
    assert bars["a"] == pytest.approx((left, chart / 2), abs=0.2)
    assert bars["b"] == pytest.approx((left + chart / 2, chart / 2), abs=0.2)
    assert bars["c"] == pytest.approx((left + chart * 0.8, chart * 0.1), abs=0.2)
    # c waited at its gate from 60 to 80 (hatched), the decision a diamond at 80.
    wait = re.search(r'class="gantt-wait" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', html)
    assert wait is not None
    assert float(wait.group(1)) == pytest.approx(left + chart * 0.6, abs=0.2)
    assert float(wait.group(2)) == pytest.approx(chart * 0.2, abs=0.2)
    assert 'class="gantt-gate gate-approved" d="M' in html
    assert "1 m 40 s" in html  # the axis ends at the run's length


def test_the_legend_names_every_colour_drawn(run: Any) -> None:
    html = render.gantt_html(state.gantt("g"))
    # c's gate was decided: its wait is drawn solid, and the legend says what that is.
    assert re.search(r'<rect class="gantt-wait" [^>]* data-decided/>', html)
    for swatch, words in [
        ("gl-bar", "running to its end"),
        ("gl-wait", "waiting at a gate"),
        ("gl-waited", "waited, then decided"),
        ("gl-gate", "decision"),
        ("gl-pause", "paused"),
    ]:
        assert f'<span class="gl {swatch}"></span>{words}' in html


def test_a_live_chart_carries_its_times_for_the_clock(run: Any) -> None:
    # The dashboard's timers stretch open bars and relabel the axis between events.
    Dag.objects.filter(pk="g").update(created_at=at(0))
    place("a", 0, 50)
    place("b", 50, None)
    html = render.gantt_html(state.gantt("g"), now=at(100).isoformat())
    svg = re.search(r'<svg class="gantt"[^>]*>', html)
    assert svg is not None and " data-live" in svg.group(0)
    assert 'data-x0="190" data-chart="800"' in svg.group(0)
    assert re.search(r'data-span="100\.\d{3}" data-now="100\.\d{3}"', svg.group(0))
    a = re.search(r'data-node-id="a".*?<rect class="gantt-bar"[^>]*>', html)
    b = re.search(r'data-node-id="b".*?<rect class="gantt-bar"[^>]*>', html)
    assert a is not None and b is not None and "data-t1" not in b.group(0)
    times = re.search(r'data-t0="([\d.]+)" data-t1="([\d.]+)"', a.group(0))
    assert times is not None
    assert (float(times[1]), float(times[2])) == pytest.approx((0, 50), abs=0.1)
    start = re.search(r'data-t0="([\d.]+)"', b.group(0))
    assert start is not None and float(start[1]) == pytest.approx(50, abs=0.1)
    assert html.count("data-tick=") == 6  # the axis labels, 0 to the span
    Dag.objects.filter(pk="g").update(finished_at=at(100), status="completed")
    assert " data-live" not in render.gantt_html(state.gantt("g"))


def test_pauses_are_shaded_across_the_chart(run: Any) -> None:
    html = render.gantt_html(state.gantt("g"))
    assert html.count('class="gantt-pause"') == 1 and "<title>Paused for" in html


def test_labels_are_escaped(db: Any) -> None:
    services.create_dag("x", nodes=[{"id": "n", "label": "<script>alert(1)</script>"}])
    services.reports("x").node_state("n", "running")
    html = render.gantt_html(state.gantt("x"))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_nothing_ran_yet(db: Any) -> None:
    services.create_dag("empty", nodes=["a"])
    assert "No node has run yet." in render.gantt_html(state.gantt("empty"))


@pytest.mark.parametrize(
    ("event", "redrawn"),
    [
        (lambda: services.reports("g").node_state("b", "completed"), True),
        (lambda: services.reports("g").cost(spent=1), False),
        (lambda: services.reports("g").edge_active("a", "b"), False),
        (lambda: services.reports("g").complete(), True),
    ],
)
def test_the_live_events_that_change_it_redraw_it(run: Any, event: Any, redrawn: bool) -> None:
    if not Event.objects.filter(type="edge_active").exists():
        services.reports("g").mutate({"op": "add_edge", "from": "a", "to": "b"})
    event()
    live.cache.clear()
    seq, frame = state.event_frames("g", 0)[-1]
    html = live.events_html("g", [(seq, frame)], (True, True))
    assert ('id="gantt-card"' in html) is redrawn
    if redrawn:
        assert 'id="gantt-card" class="card gantt-card" hx-swap-oob="true"' in html


def test_the_detail_page_shows_it(run: Any, client: Any) -> None:
    client.force_login(run)
    page = client.get("/dags/g/").content.decode()
    assert 'id="gantt-card"' in page and 'data-node-id="a" data-status="completed"' in page
