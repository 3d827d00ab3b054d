"""Each event type renders into out-of-band fragments for only what it changed."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from dagstream_app import events, live, render, services, state
from dagstream_app.models import Dag, Event

pytestmark = pytest.mark.django_db

NODES = [{"id": "extract", "label": "Extract"}, {"id": "load", "label": "Load"}]
EVIL = "<script>alert(1)</script>"
ALL = (True, True)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Users are made per test; PBKDF2 would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class TopLevel(HTMLParser):
    """The top-level elements of a message, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.top: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self.top.append((tag, dict(attrs)))
        if tag not in {"use", "rect", "path", "input", "br", "img", "meta"}:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self.top.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag not in {"use", "rect", "path", "input", "br", "img", "meta"}:
            self.depth -= 1


def top_level(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = TopLevel()
    parser.feed(html)
    return parser.top


@pytest.fixture
def dag(db: Any) -> Dag:
    return services.create_dag(
        "etl-1", name="etl", nodes=NODES, edges=[("extract", "load")], budget=10.0
    )


def last_fragment(dag_id: str = "etl-1", perms: render.Perms = ALL) -> str:
    seq, frame = state.event_frames(dag_id, 0)[-1]
    live.cache.clear()
    live.message_cache.clear()
    return live.events_html(dag_id, [(seq, frame)], perms)


def targets(html: str) -> list[str]:
    out = []
    for tag, attrs in top_level(html):
        oob = attrs.get("hx-swap-oob")
        assert oob, f"top-level <{tag}> without hx-swap-oob in {html[:200]}"
        out.append(oob if ":" in oob else f"#{attrs['id']}")
    return out


def test_node_state_swaps_the_node_progress_and_timeline(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "running")
    html = last_fragment()
    slot = render.dom_id("ns", "extract")
    assert targets(html) == [
        f"innerHTML:#{slot}",
        "afterbegin:#timeline",
        "#dag-progress",
        "#gantt-card",
        "#ds-seq",
    ]
    assert 'data-node-id="extract" data-status="running"' in html
    assert "data-started=" in html
    assert 'id="ev-2"' in html and 'data-seq="2"' in html


def test_completed_node_shows_its_duration(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "running")
    services.reports("etl-1").node_state("extract", "completed")
    html = last_fragment()
    assert 'data-status="completed"' in html and "Completed · " in html
    assert "<strong>1</strong> / 2 nodes done" in html


def test_a_retry_and_a_held_start_say_so_on_the_graph(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "waiting", metrics={"retries": 2})
    assert 'aria-label="Extract: Retrying · #2"' in last_fragment()
    assert ">Retrying · #2</text>" in last_fragment()
    services.reports("etl-1").node_state("load", "pending", metrics={"held": "The run is paused."})
    assert ">Held: paused</text>" in last_fragment()
    services.reports("etl-1").node_state("extract", "running")  # the retry's next attempt
    assert ">Running · " in last_fragment()


def test_edge_active_flashes_one_edge(dag: Dag) -> None:
    services.reports("etl-1").edge_active("extract", "load")
    html = last_fragment()
    assert targets(html) == ["#ds-flash", "afterbegin:#timeline", "#ds-seq"]
    assert f'data-edge="{render.edge_dom_id("extract", "load")}"' in html


def test_dag_mutated_rerenders_the_graph(dag: Dag) -> None:
    services.reports("etl-1").mutate({"op": "add_node", "node": {"id": "retry", "label": "Retry"}})
    html = last_fragment()
    assert targets(html) == [
        "#graph",
        "afterbegin:#timeline",
        "#dag-progress",
        "#gantt-card",
        "#ds-seq",
    ]
    assert 'data-node-id="retry"' in html and "/ 3 nodes" in html


def test_cost_update_warns_at_80_percent_and_goes_red_over_budget(dag: Dag) -> None:
    services.reports("etl-1").cost(spent=2.0)
    assert "cost--ok" in last_fragment()
    services.reports("etl-1").cost(spent=8.5)
    html = last_fragment()
    assert targets(html)[0] == "#cost" and "cost--warn" in html and "85% of budget used" in html
    services.reports("etl-1").cost(spent=12.0)
    html = last_fragment()
    assert "cost--over" in html and "Over budget" in html and "-$2.00" in html


def test_complete_with_nodes_still_open_marks_them_as_never_finished(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "running")
    assert "never finished" not in last_fragment()  # still running: nothing to say
    services.reports("etl-1").complete({"ok": True})
    html = last_fragment()
    assert "#dag-progress" in targets(html)
    assert 'data-never-finished="2"' in html and "2 never finished" in html
    page = render.progress_html(state.node_counts("etl-1"), "completed")
    assert "2 never finished" in page


def test_money_says_only_what_the_shown_numbers_say(db: Any) -> None:
    services.create_dag("m", budget=0.32)
    services.reports("m").cost(spent=0.3235)  # rounds to the budget: not over it
    html = last_fragment("m")
    assert 'data-cost="spent">$0.32<' in html and 'data-cost="budget">$0.32<' in html
    assert 'data-cost="remaining">$0.00<' in html
    assert "Over budget" not in html and "cost--warn" in html and "100% of budget used" in html
    services.reports("m").cost(spent=0.3251)
    html = last_fragment("m")
    assert "Over budget" in html and 'data-cost="remaining">-$0.01<' in html
    # The timeline shows the same figures.
    assert "$0.33 of $0.32" in html


def test_currency_and_decimals_are_settings(db: Any, settings: Any) -> None:
    settings.DAGSTREAM = {"CURRENCY": "€ ", "MONEY_DECIMALS": 3}
    services.create_dag("m", budget=1)
    services.reports("m").cost(spent=0.3235)
    html = last_fragment("m")
    assert 'data-cost="spent">€ 0.324<' in html and "€ 0.324 of € 1.000" in html


def test_gate_waiting_appends_an_escaped_card(dag: Dag) -> None:
    services.open_gate("etl-1", "load", {"title": EVIL, "body": EVIL, "extra": {"k": EVIL}})
    html = last_fragment()
    assert targets(html)[0] == "beforeend:#gate-list"
    assert EVIL not in html and "&lt;script&gt;" in html
    assert ">Approve<" in html and ">Reject<" in html and ">Modify<" in html


def test_a_gate_card_names_its_node_by_label_live_and_on_the_page(db: Any) -> None:
    task_id = "0b9e6f5c-4c1d-4f7e-9a57-3d1c2e8f7a10"  # a Celery gate's node id
    services.create_dag("celery-1", nodes=[{"id": task_id, "label": "Publish?"}])
    services.open_gate("celery-1", task_id, {"title": "Publish?"})
    chip = f'<code class="chip" title="Node {task_id}">Publish?</code>'
    assert chip in last_fragment("celery-1")
    snap = state.snapshot("celery-1")
    assert snap is not None
    assert chip in render.regions(snap, ALL, [])["gates"]


def test_a_gate_shows_money_fields_as_money(dag: Dag) -> None:
    services.open_gate(
        "etl-1",
        "load",
        {"title": "Spend more?", "cost": 0.33, "budget_usd": 1250, "est-price": 2, "rows": 1250},
    )
    html = last_fragment()
    assert "<dt>Cost</dt><dd>$0.33</dd>" in html
    assert "<dt>Budget usd</dt><dd>$1,250.00</dd>" in html
    assert "<dt>Est-price</dt><dd>$2.00</dd>" in html
    assert "<dt>Rows</dt><dd>1,250</dd>" in html  # not money: a count


def test_a_waiting_gates_question_scrolls_inside_its_card(dag: Dag) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship?", "body": "Long. " * 500})
    html = last_fragment()
    region = '<div class="gate-content" tabindex="0" role="region" aria-label="What is asked">'
    assert region in html and html.index(region) < html.index(">Approve<")


def test_gate_buttons_are_disabled_without_permission(dag: Dag) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship?"})
    html = last_fragment(perms=(False, False))
    assert 'value="approve" class="btn btn--primary" disabled' in html


def test_gate_decided_replaces_the_card_without_buttons(dag: Dag, make_user) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship?"})
    user = make_user("view_dag", "decide_gate", username="alice")
    services.decide_gate("etl-1", "load", "modify", feedback="smaller batch", actor=user)
    html = last_fragment()
    assert targets(html)[0] == f"#{render.dom_id('gate', 'load')}"
    assert "Modified</strong> by alice" in html and "smaller batch" in html
    assert ">Approve<" not in html and "<form" not in html


def test_gate_closed_replaces_the_card_without_buttons(dag: Dag) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship?"})
    services.reports("etl-1").fail("boom")
    seq = Event.objects.get(dag=dag, type="gate_closed").seq
    frame = dict(state.event_frames("etl-1", 0))[seq]
    live.cache.clear()
    live.message_cache.clear()
    html = live.events_html("etl-1", [(seq, frame)], ALL)
    assert f"#{render.dom_id('gate', 'load')}" in targets(html)
    assert 'data-gate-status="closed"' in html and "<strong>Closed</strong>" in html
    assert ">Approve<" not in html and "<form" not in html
    assert "closed: the run failed" in html  # its timeline entry


def test_execution_state_updates_badge_and_controls(dag: Dag, make_user) -> None:
    services.control("etl-1", "pause", actor=make_user("view_dag", "control_dag"))
    html = last_fragment()
    assert set(targets(html)) >= {"#dag-status", "#dag-progress", "#controls", "#gantt-card"}
    assert 'data-status="paused"' in html
    pause = html.index(">Pause<")
    assert "disabled" in html[html.rindex("<button", 0, pause) : pause]
    resume = html.index(">Resume<")
    assert "disabled" not in html[html.rindex("<button", 0, resume) : resume]


def test_a_resume_clears_started_steps_still_finishing_at_once(dag: Dag, make_user) -> None:
    operator = make_user("view_dag", "control_dag")
    services.control("etl-1", "pause", actor=operator)
    services.reports("etl-1").node_state("extract", "completed")  # started before the pause
    assert "started steps still finishing" in render.engine_html(
        "etl-1", state.engine_health("etl-1")
    )
    services.control("etl-1", "resume", actor=operator)
    html = last_fragment()
    assert "#engine-health" in targets(html)
    assert 'data-engine="ok"' in html and "still finishing" not in html


def test_execution_complete_shows_results(dag: Dag) -> None:
    services.reports("etl-1").complete({"rows": EVIL})
    seq = Dag.objects.get().last_seq
    live.cache.clear()
    html = live.events_html("etl-1", state.event_frames("etl-1", seq - 2), ALL)
    assert "#results" in targets(html)
    assert EVIL not in html and "data-finished=" in html


def test_error_is_escaped_in_the_timeline(dag: Dag) -> None:
    services.reports("etl-1").error(EVIL, node_id="extract")
    html = last_fragment()
    assert targets(html) == ["afterbegin:#timeline", "#ds-seq"]
    assert EVIL not in html and "tl--failed" in html


def test_fragments_render_once_per_process(dag: Dag, django_assert_num_queries) -> None:
    services.reports("etl-1").node_state("extract", "running")
    events = state.event_frames("etl-1", 1)
    live.cache.clear()
    first = live.events_html("etl-1", events, ALL)
    with django_assert_num_queries(0):
        again = live.cached_events_html("etl-1", events, ALL)
    assert again == first


def test_a_live_message_finds_the_nodes_each_event_names_once(
    dag: Dag, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.reports("etl-1").node_state("extract", "running")
    services.reports("etl-1").edge_active("extract", "load")
    services.reports("etl-1").node_state("load", "running")
    services.reports("etl-1").cost(spent=1.0)  # names no node
    asked: list[int] = []
    found = events.named_nodes

    def counted(event: events.EventData) -> set[str]:
        asked.append(event["seq"])
        return found(event)

    monkeypatch.setattr(events, "named_nodes", counted)
    frames = state.event_frames("etl-1", 0)
    live.cache.clear()
    html = live.events_html("etl-1", frames, ALL)
    # Once per event, for its grouping, its labels and its timeline entry alike.
    assert sorted(asked) == [seq for seq, _ in frames]
    assert "Extract" in html and "Load" in html


def test_snapshot_message_rerenders_every_region(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "running")
    snap = state.snapshot("etl-1")
    assert snap is not None
    html = live.snapshot_message(snap, ALL)
    assert set(targets(html)) >= {
        "#graph",
        "#dag-status",
        "#dag-progress",
        "#cost",
        "#controls",
        "#gates",
        "#results",
        "#timeline-card",
        "#ds-seq",
    }
    assert 'data-seq="2"' in html


def test_frame_json_is_what_services_publish(dag: Dag) -> None:
    services.reports("etl-1").node_state("extract", "failed", output=EVIL)
    seq, frame = state.event_frames("etl-1", 0)[-1]
    assert json.loads(frame)["seq"] == seq
    html = last_fragment()  # the consumer's path: frame -> live_state -> fragments
    assert EVIL not in html and "s-failed" in html


HOST_GATE = (
    '<div class="host-gate" id="{{ g.dom_id }}"{% if oob %} hx-swap-oob="true"{% endif %}>'
    "HOST {{ g.title }}: {{ g.status }}</div>"
)


def test_a_host_override_of_the_gate_card_still_updates_live(
    dag: Dag, make_user, tmp_path: Path
) -> None:
    # The docs invite overriding fragments/gate.html; keeping the card's id and
    # `{% if oob %} hx-swap-oob="true"{% endif %}` on its root is all it takes.
    (tmp_path / "dagstream_app" / "fragments").mkdir(parents=True)
    (tmp_path / "dagstream_app" / "fragments" / "gate.html").write_text(HOST_GATE)
    templates = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [tmp_path],
            "APP_DIRS": True,
        }
    ]
    services.open_gate("etl-1", "load", {"title": "Ship?"})
    with override_settings(TEMPLATES=templates):
        waiting = last_fragment()
        services.decide_gate("etl-1", "load", "approve", actor=make_user("view_dag", "decide_gate"))
        decided = last_fragment()
    assert targets(waiting)[0] == "beforeend:#gate-list"
    assert "HOST Ship?: pending" in waiting
    tag, attrs = top_level(decided)[0]
    assert (tag, attrs["class"]) == ("div", "host-gate")
    assert (attrs["id"], attrs["hx-swap-oob"]) == (render.dom_id("gate", "load"), "true")
    assert "HOST Ship?: approved" in decided


def test_a_backlog_is_one_message_with_each_node_once_and_nothing_else_dropped(dag: Dag) -> None:
    first = Event.objects.filter(dag=dag).count()
    for status in ("running", "completed"):
        services.reports("etl-1").node_state("extract", status)
        services.reports("etl-1").node_state("load", status)
    services.reports("etl-1").cost(spent=1.0)
    services.open_gate("etl-1", "load", {"title": "Ship?"})
    services.reports("etl-1").cost(spent=2.0)
    services.reports("etl-1").error("slow")
    live.cache.clear()
    html = live.events_html("etl-1", state.event_frames("etl-1", first), ALL)
    found = targets(html)
    # Each node's slot, the progress line and the cost card: only as of the last event.
    assert found.count(f"innerHTML:#{render.dom_id('ns', 'extract')}") == 1
    assert found.count(f"innerHTML:#{render.dom_id('ns', 'load')}") == 1
    assert found.count("#dag-progress") == 1 and found.count("#cost") == 1
    assert 'data-node-id="extract" data-status="completed"' in html
    # Gates and the timeline lose nothing: one entry per event, in order.
    assert found.count("beforeend:#gate-list") == 1
    total = Event.objects.filter(dag=dag).count() - first
    assert found.count("afterbegin:#timeline") == total
    entries = [html.index(f'id="ev-{seq}"') for seq in range(first + 1, first + total + 1)]
    assert entries == sorted(entries)
    assert found[-1] == "#ds-seq"
