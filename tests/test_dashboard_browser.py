"""The dashboard in Debian's Chromium through Playwright, against real daphne servers.

Events written by this test process reach the server's consumers through their
idle re-check of the database (about a second); actions clicked in the page run
inside the server and are pushed at once. Every wait is on a DOM state, bounded.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from playwright.sync_api import Browser, Page, expect

from dagstream_app import services
from dagstream_app.models import Dag, Gate
from tests.browser import PageErrors, ServicesThread, page_errors, sync_chromium
from tests.servers import REDIS_URL, ROOT, EngineProcess, Server, start_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Screenshots go to a temporary folder, so test runs leave the tree alone;
# `make screenshots` sets DAGSTREAM_SCREENSHOTS=docs/img to refresh the docs' pictures.
IMG = ROOT / os.environ.get(
    "DAGSTREAM_SCREENSHOTS", str(Path(tempfile.gettempdir()) / "dagstream-screenshots")
)
WAIT = 15_000  # ms, for anything that arrives through the idle re-check
PASSWORD = "pw-for-tests"
# Expected while a server is down on purpose: Chromium's failed-connection lines, and
# htmx logging each failed attempt's error event (console.error of an Event).
OUTAGE_NOISE = re.compile(
    r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|^console\.error: \[object Event\]$"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_chromium() as chromium:
        yield chromium


@pytest.fixture
def errors() -> PageErrors:
    """JavaScript errors and console errors seen by a test's pages (not warnings)."""
    return PageErrors(console=("error",))


@pytest.fixture
def new_page(browser: Browser, errors: PageErrors) -> Iterator[Callable[..., Page]]:
    contexts = []

    def make(**options: Any) -> Page:
        context = browser.new_context(viewport={"width": 1440, "height": 960}, **options)
        contexts.append(context)
        page = context.new_page()
        page_errors(page, into=errors)
        return page

    yield make
    for context in contexts:
        context.close()
    assert list(errors) == [], "JavaScript errors on the page"


@pytest.fixture
def operator(make_user) -> str:
    return make_user("view_dag", "decide_gate", "control_dag", username="ada").username


def login(page: Page, server: Server, username: str, then: str = "/dags/") -> None:
    page.goto(f"{server.http}{then}")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.http}{then}")
    # The address changes as the page starts to load; a person clicks once it has
    # (htmx binds its buttons then): a click before that would go nowhere.
    page.wait_for_load_state("load")


def node(page: Page, node_id: str) -> Any:
    return page.locator(f'.node[data-node-id="{node_id}"]')


def connection(page: Page) -> Any:
    return page.locator("#ds-connection")


def timeline_seqs(page: Page) -> list[int]:
    return [
        int(s)
        for s in page.locator("#timeline > li").evaluate_all(
            "items => items.map(li => li.dataset.seq)"
        )
    ]


def kill_under(page: Page, srv: Server, errors: PageErrors) -> None:
    """Kill the server under a live page, and wait until the page notices."""
    expect(connection(page)).to_have_attribute("data-connection", "open")
    errors.allow = OUTAGE_NOISE
    srv.process.kill()
    srv.process.wait(timeout=10)
    expect(connection(page)).to_have_attribute("data-connection", "reconnecting", timeout=WAIT)


def shoot(page: Page, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / name), full_page=False)


engine = ServicesThread()


@pytest.fixture(scope="module", autouse=True)
def _close_engine() -> Iterator[None]:
    yield
    engine.close()


# ------------------------------------------------------------------- data


def research_run(dag_id: str = "report-7f3a") -> Dag:
    """A realistic mid-run DAG: done, running, waiting and pending nodes, a cost, a gate."""
    nodes = [
        {"id": "gather", "label": "Gather sources"},
        {"id": "sum_a", "label": "Summarise: IEA"},
        {"id": "sum_b", "label": "Summarise: NREL"},
        {"id": "sum_c", "label": "Summarise: Fraunhofer"},
        {"id": "plan", "label": "Plan reading"},
        {"id": "read_1", "label": "Read: field trial"},
        {"id": "read_2", "label": "Read: cost study"},
        {"id": "merge", "label": "Merge into draft"},
        {"id": "review", "label": "Human review"},
        {"id": "publish", "label": "Publish report"},
    ]
    edges = [
        ("gather", "sum_a"),
        ("gather", "sum_b"),
        ("gather", "sum_c"),
        ("sum_a", "plan"),
        ("sum_b", "plan"),
        ("sum_c", "plan"),
        ("plan", "read_1"),
        ("plan", "read_2"),
        ("read_1", "merge"),
        ("read_2", "merge"),
        ("sum_c", "merge"),
        ("merge", "review"),
        ("review", "publish"),
    ]
    dag = engine.create_dag(dag_id, name="research-report", nodes=nodes, edges=edges, budget=2.0)
    steps = [
        ("gather", "running"),
        ("gather", "completed"),
        ("sum_a", "running"),
        ("sum_b", "running"),
        ("sum_c", "running"),
        ("sum_a", "completed"),
        ("sum_c", "completed"),
        ("sum_b", "completed"),
        ("plan", "running"),
        ("plan", "completed"),
        ("read_1", "running"),
        ("read_2", "running"),
        ("read_1", "completed"),
    ]
    for i, (node_id, status) in enumerate(steps):
        output = {"tokens": 1200 + 37 * i} if status == "completed" else None
        engine.reports(dag_id).node_state(node_id, status, output=output, metrics={"attempt": 1})
        if status == "completed" and node_id == "plan":
            engine.reports(dag_id).edge_active("plan", "read_1")
        engine.reports(dag_id).cost(spent=round(0.11 * (i + 1), 2))
    return dag


# ------------------------------------------------------------------ tests


def test_list_page_lists_runs_and_updates_live(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    engine.open_gate("report-7f3a", "review", {"title": "Publish the report?"})
    engine.create_dag("nightly-etl-0412", name="nightly-etl", nodes=["extract", "load"])
    engine.reports("nightly-etl-0412").node_state("extract", "completed")
    engine.reports("nightly-etl-0412").node_state("load", "completed")
    engine.reports("nightly-etl-0412").complete({"rows": 120_000})
    engine.create_dag("nightly-etl-0411", name="nightly-etl", nodes=["extract", "load"])
    engine.reports("nightly-etl-0411").fail("Upstream API returned 503")
    engine.create_dag("backfill-2024-q1", name="backfill", nodes=["a", "b", "c"], budget=10)
    page = new_page()
    login(page, server, operator)
    expect(connection(page)).to_have_attribute("data-connection", "open")
    row = page.locator('tr[data-dag-id="backfill-2024-q1"]')
    expect(row).to_have_attribute("data-status", "running")
    expect(page.locator('tr[data-dag-id="report-7f3a"]')).to_contain_text("1 decision needed")
    shoot(page, "list.png")

    # Pause from a second page: the server pushes the list row change.
    other = new_page()
    login(other, server, operator, then="/dags/backfill-2024-q1/")
    expect(connection(other)).to_have_attribute("data-connection", "open")
    other.get_by_role("button", name="Pause").click()
    expect(row).to_have_attribute("data-status", "paused", timeout=WAIT)
    expect(row.locator(".badge")).to_have_text("Paused")

    page.get_by_placeholder("Filter by name or id").fill("nightly")
    page.get_by_role("combobox").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-dag-id]")).to_have_count(1)
    expect(page.locator('tr[data-dag-id="nightly-etl-0411"]')).to_be_visible()


def test_watch_a_run_update_as_the_engine_emits(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    page = new_page()
    login(page, server, operator, then="/dags/report-7f3a/")
    expect(connection(page)).to_have_attribute("data-connection", "open")
    expect(node(page, "read_2")).to_have_attribute("data-status", "running")
    engine.reports("report-7f3a").node_state(
        "read_2", "completed", output="<script>alert(1)</script>"
    )
    expect(node(page, "read_2")).to_have_attribute("data-status", "completed", timeout=WAIT)
    engine.reports("report-7f3a").node_state("merge", "running")
    engine.reports("report-7f3a").edge_active("read_2", "merge")
    engine.reports("report-7f3a").cost(spent=1.7)
    expect(node(page, "merge")).to_have_attribute("data-status", "running", timeout=WAIT)
    expect(page.locator("#cost")).to_contain_text("85% of budget used", timeout=WAIT)
    expect(page.locator("#cost")).to_have_class(re.compile("cost--warn"))
    expect(page.locator("#dag-progress")).to_contain_text("7 / 10 nodes done · 1 active")
    last = Dag.objects.get().last_seq
    expect(page.locator("#ds-seq")).to_have_attribute("data-seq", str(last), timeout=WAIT)
    seqs = timeline_seqs(page)
    assert seqs == list(range(last, last - len(seqs), -1)) and len(seqs) == min(last, 100)
    shoot(page, "detail-running.png")

    # The node panel: output escaped, shown as text.
    node(page, "read_2").click()
    panel = page.locator("#node-panel")
    expect(panel).to_contain_text("<script>alert(1)</script>")
    expect(panel.locator("#node-panel-title")).to_have_text("Read: cost study")
    page.keyboard.press("Escape")
    expect(panel).to_be_empty()

    # Keyboard: a node is a focusable button; Enter opens its panel.
    node(page, "gather").focus()
    page.keyboard.press("Enter")
    expect(panel.locator("#node-panel-title")).to_have_text("Gather sources")
    page.keyboard.press("Escape")
    expect(node(page, "gather")).to_be_focused()
    # A live update of the focused node keeps the focus on it.
    engine.reports("report-7f3a").node_state("gather", "completed", metrics={"rerun": 1})
    expect(node(page, "gather")).to_have_attribute("data-seq", re.compile(r"[1-9]"), timeout=WAIT)
    expect(node(page, "gather")).to_be_focused()

    # An open panel follows its node live.
    node(page, "merge").click()
    expect(panel).to_contain_text("No output yet.")
    engine.reports("report-7f3a").node_state("merge", "completed", output="merged 5 sources")
    expect(panel).to_contain_text("merged 5 sources", timeout=WAIT)
    expect(panel.locator(".badge")).to_have_text("Completed")
    page.keyboard.press("Escape")

    # Graph mutations re-render the graph.
    engine.reports("report-7f3a").mutate(
        {"op": "add_node", "node": {"id": "retry", "label": "Retry"}}
    )
    expect(node(page, "retry")).to_have_attribute("data-status", "pending", timeout=WAIT)


def test_approve_a_gate_by_clicking(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    engine.reports("report-7f3a").node_state("read_2", "completed")
    engine.reports("report-7f3a").node_state("merge", "completed")
    engine.reports("report-7f3a").node_state("review", "waiting")
    page = new_page()
    login(page, server, operator, then="/dags/report-7f3a/")
    expect(connection(page)).to_have_attribute("data-connection", "open")
    engine.open_gate(
        "report-7f3a",
        "review",
        {
            "title": "Publish “Heat pumps in cold climates”?",
            "body": "The draft cites 5 sources and stays within budget.\n"
            "Check the executive summary before it goes out.",
            "words": 1840,
        },
    )
    gate = page.locator("#gate-list .gate")
    expect(gate).to_have_attribute("data-gate-status", "pending", timeout=WAIT)
    expect(node(page, "review")).to_have_attribute("data-status", "waiting")
    page.locator("#gate-list").scroll_into_view_if_needed()
    shoot(page, "gate-waiting.png")
    gate.get_by_label("Feedback").fill("Looks good, ship it.")
    gate.get_by_role("button", name="Approve").click()
    expect(gate).to_have_attribute("data-gate-status", "approved")
    expect(gate).to_contain_text("Approved by ada")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    decided = Gate.objects.get()
    assert decided.status == "approved" and decided.feedback == "Looks good, ship it."
    # The socket's own event for the decision lands once in the timeline.
    expect(page.locator('#timeline li[data-type="gate_decided"]')).to_have_count(1, timeout=WAIT)


def test_a_gate_closes_live_when_its_run_ends(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    engine.create_dag("closes-1", name="closes", nodes=["review"])
    page = new_page()
    login(page, server, operator, then="/dags/closes-1/")
    expect(connection(page)).to_have_attribute("data-connection", "open")
    engine.open_gate("closes-1", "review", {"title": "Ship it?"})
    gate = page.locator("#gate-list .gate")
    expect(gate.get_by_role("button", name="Approve")).to_be_visible(timeout=WAIT)
    engine.apply("closes-1", [services.Delta("fail", {"message": "the engine gave up"})])
    expect(page.locator("#dag-status")).to_have_attribute("data-status", "failed", timeout=WAIT)
    expect(gate).to_have_attribute("data-gate-status", "closed")
    expect(gate).to_contain_text("Closed")
    for name in ("Approve", "Reject", "Modify"):
        expect(gate.get_by_role("button", name=name)).to_have_count(0)
    expect(page.locator('#timeline li[data-type="gate_closed"]')).to_contain_text(
        "closed: the run failed"
    )


@pytest.fixture(scope="module")
def debug_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    """daphne with DEBUG on, as a fresh project has it (django-htmx's debug script loads)."""
    with django_db_blocker.unblock():
        srv = start_server(DJANGO_DEBUG="true")
    yield srv
    srv.stop()


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_refused_decision_shows_in_its_card_and_the_next_one_counts(
    request: pytest.FixtureRequest,
    new_page: Callable[..., Page],
    operator: str,
    debug: bool,
    errors: PageErrors,
) -> None:
    srv: Server = request.getfixturevalue("debug_server" if debug else "server")
    # Chromium logs each refused POST; that is the point of this test.
    errors.allow = re.compile(r"Failed to load resource: .* status of (400|409) ")
    research_run()
    engine.open_gate("report-7f3a", "review", {"title": "Publish?"})
    page = new_page()
    login(page, srv, operator, then="/dags/report-7f3a/")
    assert page.locator('script[src*="django-htmx.js"]').count() == (1 if debug else 0)
    gate = page.locator("#gate-list .gate")
    gate.get_by_role("button", name="Modify").click()  # no feedback: refused with 400
    expect(gate.get_by_role("alert")).to_contain_text("A modify decision needs feedback.")
    expect(page.locator("#graph")).to_be_visible()  # the page is still the page
    assert Gate.objects.get().status == "pending"
    gate.get_by_label("Feedback").fill("Cut the second section.")
    gate.get_by_role("button", name="Modify").click()
    expect(gate).to_have_attribute("data-gate-status", "modified")
    decided = Gate.objects.get()
    assert (decided.status, decided.feedback) == ("modified", "Cut the second section.")
    # A refused control shows in the controls card the same way.
    engine.reports("report-7f3a").set_state("paused")
    page.get_by_role("button", name="Pause").evaluate("b => b.removeAttribute('disabled')")
    page.get_by_role("button", name="Pause").click()  # 409: the run is paused already
    expect(page.locator("#controls").get_by_role("alert")).to_contain_text("Cannot pause")
    expect(page.locator("#graph")).to_be_visible()


LIVENESS = {"ENGINE_HEARTBEAT_SECONDS": 0.5, "ENGINE_STALE_SECONDS": 3}


@pytest.fixture
def liveness_server(django_db_blocker: Any) -> Iterator[Server]:
    # Not configured_server: it ends every other session on the test database, the
    # engine thread's of this module too. The server's own go when it stops.
    with django_db_blocker.unblock():
        srv = start_server(DAGSTREAM_JSON=json.dumps(LIVENESS))
    yield srv
    srv.stop()


def test_a_killed_engine_is_shown_as_not_responding_and_its_run_can_be_ended(
    liveness_server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    engine.create_dag("orphan-1", name="orphaned", nodes=[f"n{i}" for i in range(3)])
    proc = EngineProcess("idle", "orphan-1", 0, DAGSTREAM_JSON=json.dumps(LIVENESS))
    try:
        proc.go()
        assert proc.process.stdout is not None
        assert proc.process.stdout.readline().strip() == "streaming"
        page = new_page()
        login(page, liveness_server, operator, then="/dags/orphan-1/")
        health = page.locator("#engine-health")
        expect(health).to_have_attribute("data-engine", "ok")
        # A quiet engine heartbeats: its last-seen moment moves on by itself.
        first = Dag.objects.get(pk="orphan-1").engine_seen_at
        for _ in range(100):  # bounded, 0.1 s each
            if Dag.objects.get(pk="orphan-1").engine_seen_at != first:
                break
            page.wait_for_timeout(100)
        else:
            pytest.fail("the idle engine sent no heartbeat")
        expect(page.get_by_role("button", name="End run")).to_have_count(0)
    finally:
        proc.process.kill()  # SIGKILL: no close(), no last word
        proc.process.communicate(timeout=10)  # reaped, its pipes closed
    expect(health).to_have_attribute("data-engine", "stale", timeout=WAIT)
    expect(health).to_contain_text("Engine not responding")
    expect(page.locator("#dag-status")).to_have_attribute("data-status", "running")
    shoot(page, "engine-not-responding.png")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="End run").click()
    expect(page.locator("#dag-status")).to_have_attribute("data-status", "cancelled", timeout=WAIT)
    expect(node(page, "n0")).to_have_attribute("data-status", "cancelled", timeout=WAIT)
    assert Dag.objects.get(pk="orphan-1").status == "cancelled"


def view_box(page: Page) -> list[float]:
    """The graph's view: the drawing's point at the card's top left, and the scale."""
    return [float(v) for v in (page.locator("#graph").get_attribute("data-view") or "").split()]


def inside(page: Page, selector: str, frame: str = "#graph") -> bool:
    """True if every element matching ``selector`` is drawn within ``frame`` (the graph's card)."""
    return bool(
        page.evaluate(
            """([sel, frameSel]) => {
              const frame = document.querySelector(frameSel).getBoundingClientRect();
              return [...document.querySelectorAll(sel)].every(el => {
                const b = el.getBoundingClientRect();
                return b.left >= frame.left - 1 && b.right <= frame.right + 1 &&
                       b.top >= frame.top - 1 && b.bottom <= frame.bottom + 1; }); }""",
            [selector, frame],
        )
    )


def in_port(page: Page, selector: str) -> bool:
    """True if every element matching ``selector`` is drawn within the graph's viewport."""
    return inside(page, selector, frame="#graph .graph-port")


def test_graph_fits_its_card_and_zooms_and_pans(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    page = new_page()
    login(page, server, operator, then="/dags/report-7f3a/")
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-fit", "true")
    assert int(graph.get_attribute("data-zoom") or 0) < 100  # 1,400 px: shrunk to fit
    assert inside(page, "#graph .node"), "every node is in view at first"
    # Keyboard: + zooms in, arrows pan, 0 fits again.
    graph.focus()
    page.keyboard.press("+")
    expect(graph).to_have_attribute("data-fit", "false")
    zoomed = int(graph.get_attribute("data-zoom") or 0)
    before = view_box(page)
    page.keyboard.press("ArrowRight")
    assert view_box(page)[0] > before[0]
    page.keyboard.press("0")
    expect(graph).to_have_attribute("data-fit", "true")
    assert int(graph.get_attribute("data-zoom") or 0) < zoomed
    # The wheel zooms around the pointer; a drag pans (and opens no node).
    box = page.locator("#graph svg").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    expect(graph).to_have_attribute("data-fit", "false")
    assert int(graph.get_attribute("data-zoom") or 0) > zoomed - 1
    gather = node(page, "gather").bounding_box()
    assert gather is not None
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 60, start[1] + 30, steps=5)
    page.mouse.up()
    moved = node(page, "gather").bounding_box()
    assert moved is not None
    assert abs(moved["x"] - gather["x"] - 60) < 3 and abs(moved["y"] - gather["y"] - 30) < 3
    expect(page.locator("#node-panel .node-detail")).to_have_count(0)
    # The toolbar does the same.
    page.get_by_role("button", name="Zoom out").click()
    page.get_by_role("button", name="Fit").click()
    expect(graph).to_have_attribute("data-fit", "true")
    # Pinch: two touch pointers moving apart zoom in.
    page.evaluate(
        """() => { const svg = document.querySelector('#graph svg');
          const b = document.querySelector('#graph').getBoundingClientRect();
          const cx = b.left + b.width / 2, cy = b.top + b.height / 2;
          const ev = (type, id, x) => svg.dispatchEvent(new PointerEvent(type, {pointerId: id,
              pointerType: 'touch', clientX: x, clientY: cy, bubbles: true, isPrimary: id === 1}));
          ev('pointerdown', 1, cx - 20); ev('pointerdown', 2, cx + 20);
          ev('pointermove', 1, cx - 60); ev('pointermove', 2, cx + 60);
          ev('pointerup', 1, cx - 60); ev('pointerup', 2, cx + 60); }"""
    )
    assert int(graph.get_attribute("data-zoom") or 0) > zoomed
    # A change of structure re-renders the graph and keeps the chosen view.
    chosen = graph.get_attribute("data-zoom")
    engine.reports("report-7f3a").mutate(
        {"op": "add_node", "node": {"id": "extra", "label": "Extra"}}
    )
    expect(node(page, "extra")).to_have_count(1, timeout=WAIT)
    expect(page.locator("#graph")).to_have_attribute("data-zoom", chosen or "")


def test_graph_shows_full_labels_on_hover_and_focus(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    page = new_page()
    login(page, server, operator, then="/dags/report-7f3a/")
    # Wrapped onto two lines in the box, whole; the tooltip has it whole too, and the id.
    lines = node(page, "sum_c").locator(".node-label tspan").all_text_contents()
    assert lines == ["Summarise:", "Fraunhofer"]
    node(page, "sum_c").hover()
    tip = page.locator(".graph-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Summarise: Fraunhofer")
    expect(tip).to_contain_text("sum_c")
    page.mouse.move(5, 5)
    expect(tip).to_be_hidden()
    node(page, "review").focus()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Human review")
    assert node(page, "review").get_attribute("aria-describedby") == "ds-graph-tip"


def test_a_big_graph_has_a_minimap_that_moves_the_view(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    ids = [f"n{i:03d}" for i in range(120)]
    edges = [(ids[i], ids[i + 12]) for i in range(len(ids) - 12)]
    engine.create_dag("big-1", name="big", nodes=ids, edges=edges)
    page = new_page()
    login(page, server, operator, then="/dags/big-1/")
    minimap = page.locator("#graph canvas.graph-minimap")
    expect(minimap).to_be_visible()
    # Too big to read whole: it opens readable, at its start, and Fit shows it whole.
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-fit", "false")
    assert int(graph.get_attribute("data-zoom") or 0) >= 75
    assert in_port(page, '#graph .node[data-node-id="n000"]')
    assert not in_port(page, '#graph .node[data-node-id="n119"]')
    shoot(page, "graph-big.png")
    page.get_by_role("button", name="Fit").click()
    assert inside(page, "#graph .node")
    assert page.evaluate(COVERED_NODES, "#graph canvas.graph-minimap") == []
    page.locator("#graph").focus()
    for _ in range(6):
        page.keyboard.press("+")
    before = view_box(page)
    box = minimap.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
    after = view_box(page)
    assert after[0] > before[0] and after[2] == before[2]  # moved right, same zoom


# ------------------------------------------- the demo's run, readable on any screen

DEMO_READS = (
    ("owner-survey", "Prairie Housing Council"),
    ("grid-peaks", "Continental Grid Institute"),
    ("retrofit-costs", "Home Retrofit Observatory"),
    ("r290-lab", "Refrigerant Policy Review"),
)
DEMO_SUMMARIES = (
    ("summarise-evidence", "Summarise: evidence"),
    ("summarise-economics", "Summarise: costs"),
    ("summarise-risks", "Summarise: risks"),
)


def demo_run(dag_id: str = "demo-5e1c", *, at_gate: bool = False) -> Dag:
    """The 12 nodes of a ``make demo`` run (project/demo/pipeline.py, a topic with four
    sources), with their labels: mid-way through the deep reads, or (``at_gate``)
    waiting at the review gate."""
    reads = [(f"read-{key}", label) for key, label in DEMO_READS]
    nodes = [
        {"id": node_id, "label": label}
        for node_id, label in (
            ("gather", "Gather sources"),
            *DEMO_SUMMARIES,
            ("plan-reads", "Plan deep reads"),
            *reads,
            ("merge", "Draft the report"),
            ("review", "Human review"),
            ("publish", "Publish"),
        )
    ]
    edges = [("gather", s) for s, _ in DEMO_SUMMARIES] + [
        (s, "plan-reads") for s, _ in DEMO_SUMMARIES
    ]
    edges += [("plan-reads", r) for r, _ in reads] + [(r, "merge") for r, _ in reads]
    edges += [("merge", "review"), ("review", "publish")]
    dag = engine.create_dag(dag_id, name="research-report", nodes=nodes, edges=edges, budget=1.0)
    done = ["gather", *(s for s, _ in DEMO_SUMMARIES), "plan-reads"]
    done += [r for r, _ in reads] + ["merge"] if at_gate else [r for r, _ in reads[:2]]
    for node_id in done:
        engine.reports(dag_id).node_state(node_id, "running")
        engine.reports(dag_id).node_state(node_id, "completed", output={"tokens": 1800})
    for node_id, _ in [] if at_gate else reads[2:]:
        engine.reports(dag_id).node_state(node_id, "running")
    engine.reports(dag_id).cost(spent=0.42)
    if at_gate:
        engine.reports(dag_id).node_state("review", "waiting")
        body = "\n\n".join(
            f"Section {i}: what the sources say, in a few lines." * 4 for i in range(12)
        )
        engine.open_gate(dag_id, "review", {"title": "Publish the report?", "body": body})
    return dag


DEMO_LABELS = (
    "Gather sources",
    *(label for _, label in DEMO_SUMMARIES),
    "Plan deep reads",
    *(label for _, label in DEMO_READS),
    "Draft the report",
    "Human review",
    "Publish",
)
# Each label's text, its lines (if wrapped) joined by a space.
LABEL_TEXTS = """() => [...document.querySelectorAll('#graph .node-label')].map(label => {
  const lines = label.querySelectorAll('tspan');
  return lines.length ? [...lines].map(line => line.textContent).join(' ') : label.textContent;
})"""
# The labels with a line wider than their box (in the drawing's units).
LABELS_OUT_OF_THEIR_BOX = """() => [...document.querySelectorAll('#graph .node')].filter(node => {
  const label = node.querySelector('.node-label');
  const lines = label.querySelectorAll('tspan');
  const room = +node.querySelector('.node-box').getAttribute('width') - 2;
  return [...(lines.length ? lines : [label])].some(
    line => +label.getAttribute('x') + line.getComputedTextLength() > room);
}).map(node => node.dataset.nodeId)"""
# Each label's rendered height on screen, in CSS pixels (of its shortest line, if wrapped).
LABEL_HEIGHTS = """() => [...document.querySelectorAll('#graph .node-label')].map(label => {
  const lines = label.querySelectorAll('tspan');
  return Math.min(...[...(lines.length ? lines : [label])].map(
    line => line.getBoundingClientRect().height));
})"""

# Node boxes (their part inside the graph's viewport) that a floating element covers.
COVERED_NODES = """sel => {
  const over = document.querySelector(sel);
  if (!over) return null;
  const port = document.querySelector('#graph .graph-port').getBoundingClientRect();
  const a = over.getBoundingClientRect();
  return [...document.querySelectorAll('#graph .node')].filter(node => {
    const b = node.querySelector('.node-box').getBoundingClientRect();
    const left = Math.max(b.left, port.left), right = Math.min(b.right, port.right);
    const top = Math.max(b.top, port.top), bottom = Math.min(b.bottom, port.bottom);
    if (left >= right || top >= bottom) return false;  // not in view
    return left < a.right && a.left < right && top < a.bottom && a.top < bottom;
  }).map(node => node.dataset.nodeId);
}"""


def open_readable(page: Page, server: Server, operator: str, size: tuple[int, int]) -> Page:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    login(page, server, operator, then="/dags/demo-5e1c/")
    expect(page.locator("#graph")).to_have_class(re.compile("is-zoomable"))
    return page


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["1280x800", "390x844"])
def test_the_demo_run_opens_readable(
    server: Server, new_page: Callable[..., Page], operator: str, size: tuple[int, int]
) -> None:
    """Issue 18.1: labels at least 11 px high at the default view, none cut, the running
    nodes in view, nothing over the nodes, the card as wide as the page; Fit one click away."""
    demo_run()
    page = open_readable(new_page(), server, operator, size)
    graph = page.locator("#graph")
    heights = page.evaluate(LABEL_HEIGHTS)
    print(
        f"\n{size[0]}x{size[1]}: zoom {graph.get_attribute('data-zoom')} %, label heights"
        f" {min(heights):.1f}-{max(heights):.1f} px over {len(heights)} labels"
    )
    assert len(heights) == 12 and min(heights) >= 11
    assert sorted(page.evaluate(LABEL_TEXTS)) == sorted(DEMO_LABELS), "no label is cut"
    assert page.evaluate(LABELS_OUT_OF_THEIR_BOX) == [], "every line fits in its box"
    assert in_port(page, '#graph .node[data-status="running"]'), "the active part is in view"
    for over in ("#graph canvas.graph-minimap", "#graph .graph-tools"):
        assert page.evaluate(COVERED_NODES, over) in (None, []), f"{over} covers nodes"
    card = page.locator(".graph-card").bounding_box()
    head = page.locator(".page-head").bounding_box()
    assert card is not None and head is not None and card["width"] >= head["width"] - 2
    shoot(page, f"demo-{size[0]}x{size[1]}.png")

    page.get_by_role("button", name="Fit", exact=True).click()
    expect(graph).to_have_attribute("data-fit", "true")
    assert in_port(page, "#graph .node"), "Fit shows every node"
    if size[0] < 700:  # fitted, the phone's labels are small: the minimap comes, aside
        expect(graph.locator("canvas.graph-minimap")).to_be_visible()
        assert page.evaluate(COVERED_NODES, "#graph canvas.graph-minimap") == []


def test_the_opening_view_follows_the_run_until_the_person_moves_it(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    demo_run()
    page = open_readable(new_page(), server, operator, (390, 844))
    expect(connection(page)).to_have_attribute("data-connection", "open")
    merge = '#graph .node[data-node-id="merge"]'
    assert not in_port(page, merge)
    for key, _ in DEMO_READS[2:]:
        engine.reports("demo-5e1c").node_state(f"read-{key}", "completed")
    engine.reports("demo-5e1c").node_state("merge", "running")
    expect(page.locator(merge)).to_have_attribute("data-status", "running", timeout=WAIT)
    page.wait_for_function(
        """sel => {
          const port = document.querySelector('#graph .graph-port').getBoundingClientRect();
          const b = document.querySelector(sel).getBoundingClientRect();
          return b.left >= port.left && b.right <= port.right; }""",
        arg=merge,
        timeout=WAIT,
    )
    expect(page.locator("#graph")).to_have_attribute("data-home", "true")
    # Once the person pans, the view is theirs: the run moving on does not move it.
    page.locator("#graph").focus()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#graph")).to_have_attribute("data-home", "false")
    chosen = view_box(page)
    engine.reports("demo-5e1c").node_state("merge", "completed")
    engine.reports("demo-5e1c").node_state("review", "waiting")
    expect(node(page, "review")).to_have_attribute("data-status", "waiting", timeout=WAIT)
    assert view_box(page) == chosen


def test_on_a_phone_the_graph_comes_first_then_gates_then_the_rest(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    demo_run(at_gate=True)
    page = open_readable(new_page(), server, operator, (390, 844))
    tops = {
        sel: (page.locator(sel).bounding_box() or {"y": -1.0})["y"]
        for sel in (".graph-card", "#gates", "#controls", "#cost", "#gantt-card", ".timeline-card")
    }
    rest = [tops[s] for s in ("#controls", "#cost", "#gantt-card", ".timeline-card")]
    assert 0 < tops[".graph-card"] < tops["#gates"] < min(rest), tops
    assert in_port(page, '#graph .node[data-node-id="review"]'), "the waiting node is in view"
    # The gate's actions are on screen once the gate's top is, however long its body.
    gate = page.locator("#gate-list .gate")
    gate.evaluate("g => window.scrollBy(0, g.getBoundingClientRect().top - 64)")  # the top bar
    for name in ("Approve", "Reject", "Modify"):
        box = gate.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["y"] >= 64 and box["y"] + box["height"] <= 844
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator("#gates").evaluate(
        "g => window.scrollBy(0, g.getBoundingClientRect().top - 844 * 0.45)"
    )
    shoot(page, "demo-390x844-gate.png")


def gantt_page(server: Server, new_page: Callable[..., Page], operator: str) -> Page:
    """The research run, its review gate waiting, open in a page."""
    research_run()
    engine.open_gate("report-7f3a", "review", {"title": "Publish?"})
    page = new_page()
    login(page, server, operator, then="/dags/report-7f3a/")
    return page


def test_gantt_shows_where_the_time_went_and_follows_live(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    page = gantt_page(server, new_page, operator)
    gantt = page.locator("#gantt-card")
    expect(gantt).to_be_visible()
    rows = gantt.locator(".gantt-row")
    expect(rows).to_have_count(8)  # the 7 nodes that ran, and review, waiting at its gate
    expect(gantt.locator('.gantt-row[data-node-id="read_2"]')).to_have_attribute(
        "data-status", "running"
    )
    expect(gantt.locator('.gantt-row[data-node-id="review"] .gantt-wait')).to_have_count(1)
    engine.reports("report-7f3a").node_state("read_2", "completed")
    expect(gantt.locator('.gantt-row[data-node-id="read_2"]')).to_have_attribute(
        "data-status", "completed", timeout=WAIT
    )
    gantt.scroll_into_view_if_needed()
    IMG.mkdir(parents=True, exist_ok=True)
    gantt.screenshot(path=str(IMG / "gantt.png"))


def gantt_wait_width(page: Page) -> float:
    wait = page.locator('#gantt-card .gantt-row[data-node-id="review"] .gantt-wait')
    return float(wait.get_attribute("width") or 0)


def test_the_gantt_grows_while_a_gate_waits(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    page = gantt_page(server, new_page, operator)
    expect(connection(page)).to_have_attribute("data-connection", "open")
    axis_end = page.locator("#gantt-card text.gantt-axis").last
    first, label = gantt_wait_width(page), axis_end.text_content()
    # No event comes: the page's clock alone stretches the wait and relabels the axis.
    page.wait_for_function(
        """([width, label]) => {
            const wait = document.querySelector('.gantt-row[data-node-id="review"] .gantt-wait');
            const ticks = document.querySelectorAll("#gantt-card text.gantt-axis");
            return Number(wait.getAttribute("width")) > width + 1
                && ticks[ticks.length - 1].textContent !== label;
        }""",
        arg=[first, label],
        timeout=WAIT,
    )
    assert gantt_wait_width(page) > first
    running = page.locator('#gantt-card .gantt-row[data-node-id="read_2"] .gantt-bar')
    bar_end = running.evaluate("r => Number(r.getAttribute('x')) + Number(r.getAttribute('width'))")
    assert bar_end == pytest.approx(190 + 800, abs=2)  # a running bar reaches "now", the end
    page.locator("#gantt-card").scroll_into_view_if_needed()
    IMG.mkdir(parents=True, exist_ok=True)
    page.locator("#gantt-card").screenshot(path=str(IMG / "gantt-live.png"))


def test_a_long_gate_body_keeps_its_actions_on_an_800px_screen(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    engine.reports("report-7f3a").node_state("review", "waiting")
    body = "\n\n".join(
        f"Paragraph {i}: the evidence says a great deal here." * 3 for i in range(40)
    )
    engine.open_gate(
        "report-7f3a", "review", {"title": "Publish?", "body": body, "cost": 0.33, "words": 1840}
    )
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, server, operator, then="/dags/report-7f3a/")
    gate = page.locator("#gate-list .gate")
    expect(gate).to_contain_text("$0.33")
    gate.evaluate("g => g.scrollIntoView({block: 'start'})")
    approve = gate.get_by_role("button", name="Approve")
    for button in (approve, gate.get_by_role("button", name="Modify")):
        box = button.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800
    # The question scrolls inside the card, by keyboard too.
    question = gate.get_by_role("region", name="What is asked")
    question.focus()
    page.keyboard.press("PageDown")
    page.wait_for_function(
        "() => document.querySelector('#gate-list .gate-content').scrollTop > 0", timeout=WAIT
    )
    IMG.mkdir(parents=True, exist_ok=True)
    gate.screenshot(path=str(IMG / "gate-long-body.png"))
    approve.click()
    expect(gate).to_have_attribute("data-gate-status", "approved")
    decided = page.locator('#gantt-card .gantt-row[data-node-id="review"] .gantt-wait')
    expect(decided).to_have_attribute("data-decided", "", timeout=WAIT)
    page.locator("#gantt-card").scroll_into_view_if_needed()
    page.locator("#gantt-card").screenshot(path=str(IMG / "gantt-decided.png"))


def test_pause_resume_and_cancel(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    engine.create_dag("ctl-1", name="ctl", nodes=["a", "b"], edges=[("a", "b")])
    page = new_page()
    login(page, server, operator, then="/dags/ctl-1/")
    expect(connection(page)).to_have_attribute("data-connection", "open")
    status = page.locator("#dag-status")
    page.get_by_role("button", name="Pause").click()
    expect(status).to_have_attribute("data-status", "paused")
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    page.get_by_role("button", name="Resume").click()
    expect(status).to_have_attribute("data-status", "running")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled()
    assert Dag.objects.get().status == "running"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(status).to_have_attribute("data-status", "cancelling")
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    assert Dag.objects.get().status == "cancelling"
    states = page.locator('#timeline li[data-type="execution_state"]')
    expect(states).to_have_count(4)  # running, paused, running, cancelling


def test_viewer_without_view_permission_gets_403(
    server: Server, new_page: Callable[..., Page], make_user, errors: PageErrors
) -> None:
    errors.allow = re.compile(r"status of 403")  # Chromium logs the 403 page load
    engine.create_dag("secret", nodes=["a"])
    make_user(username="eve")
    page = new_page()
    page.goto(f"{server.http}/dags/secret/")
    page.get_by_label("Username").fill("eve")
    page.get_by_label("Password").fill(PASSWORD)
    response_codes: list[int] = []
    page.on("response", lambda r: response_codes.append(r.status))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="No access")).to_be_visible()
    assert 403 in response_codes


def test_reconnect_after_server_restart_catches_up_exactly_once(
    new_page: Callable[..., Page], operator: str, errors: PageErrors, django_db_blocker: Any
) -> None:
    engine.create_dag("resume-1", name="resume", nodes=[f"n{i}" for i in range(6)])
    srv = start_server()
    port = srv.port
    try:
        page = new_page()
        login(page, srv, operator, then="/dags/resume-1/")
        expect(connection(page)).to_have_attribute("data-connection", "open")
        for i in range(3):
            engine.reports("resume-1").node_state(f"n{i}", "running")
        expect(node(page, "n2")).to_have_attribute("data-status", "running", timeout=WAIT)

        kill_under(page, srv, errors)
        expect(page.locator("#ds-stale")).to_be_visible()
        expect(page.locator("body")).to_have_attribute("data-live", "stale")
        expect(page.locator(".layout")).to_have_css("opacity", "0.55")  # the stale view is dimmed

        # Emitted while the page cannot hear.
        for i in range(3):
            engine.reports("resume-1").node_state(f"n{i}", "completed")
        engine.reports("resume-1").node_state("n3", "running")
        engine.reports("resume-1").cost(spent=0.5)

        srv.stop()
        srv = start_server(port=port)
        expect(connection(page)).to_have_attribute("data-connection", "open", timeout=30_000)
        expect(page.locator("#ds-stale")).to_be_hidden()
        last = Dag.objects.get().last_seq
        expect(page.locator("#ds-seq")).to_have_attribute("data-seq", str(last), timeout=WAIT)
        for i in range(3):
            expect(node(page, f"n{i}")).to_have_attribute("data-status", "completed")
        expect(node(page, "n3")).to_have_attribute("data-status", "running")
        # Every event once, newest first: no gap, no duplicate.
        assert timeline_seqs(page) == list(range(last, 0, -1))

        # And it is live again afterwards.
        engine.reports("resume-1").node_state("n4", "running")
        expect(node(page, "n4")).to_have_attribute("data-status", "running", timeout=WAIT)
        assert timeline_seqs(page) == list(range(last + 1, 0, -1))
    finally:
        srv.stop()


def _burst(dag_id: str, count: int) -> None:
    """``count`` events committed in one transaction (so they arrive as one lag)."""
    with transaction.atomic():
        for i in range(count):
            services.reports(dag_id).node_state(f"n{i % 6}", "running" if i < 6 else "completed")


def test_a_client_too_far_behind_is_closed_4013_and_resumes_by_snapshot(
    new_page: Callable[..., Page], operator: str, errors: PageErrors
) -> None:
    engine.create_dag("lag-1", name="lag", nodes=[f"n{i}" for i in range(6)])
    srv = start_server(DAGSTREAM_JSON='{"MAX_LAG": 3}')
    try:
        page = new_page()
        login(page, srv, operator, then="/dags/lag-1/")
        expect(connection(page)).to_have_attribute("data-connection", "open")
        engine.pool.submit(_burst, "lag-1", 12).result(timeout=60)
        # 12 behind > MAX_LAG: the server closes with 4013, the page comes back and
        # gets every region re-rendered (a snapshot), not a replay.
        for i in range(6):
            expect(node(page, f"n{i}")).to_have_attribute("data-status", "completed", timeout=WAIT)
        expect(page.locator("#ds-seq")).to_have_attribute("data-seq", "13")
        expect(connection(page)).to_have_attribute("data-connection", "open")
        assert timeline_seqs(page) == list(range(13, 0, -1))
    finally:
        errors.allow = OUTAGE_NOISE  # the open page notices the server going away
        srv.stop()


@pytest.mark.redis
def test_scale_out_engine_process_over_a_lossy_layer_every_event_once(
    redis_servers: list[Server], new_page: Callable[..., Page], operator: str
) -> None:
    """An engine in its own process, daphne on Redis: pushes are live, and events the
    layer drops, repeats or reorders on purpose still show once each, in order."""
    count = 150
    engine.create_dag("chaos-ui", name="chaos", nodes=[f"n{i}" for i in range(10)])
    process = EngineProcess("chaos", "chaos-ui", count, REDIS_URL=REDIS_URL)
    try:
        page = new_page()
        login(page, redis_servers[0], operator, then="/dags/chaos-ui/")
        expect(connection(page)).to_have_attribute("data-connection", "open")
        process.go()
        process.finish()
        last = 1 + count
        expect(page.locator("#ds-seq")).to_have_attribute("data-seq", str(last), timeout=WAIT)
        assert timeline_seqs(page) == list(range(last, last - 100, -1))
        for k in range(10):  # the engine's last write to n<k> was i = 140 + k
            expect(node(page, f"n{k}")).to_have_attribute(
                "data-status", "running" if k % 2 == 0 else "completed"
            )
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.communicate(timeout=10)


def test_dark_mode_screenshot(server: Server, new_page: Callable[..., Page], operator: str) -> None:
    research_run()
    engine.reports("report-7f3a").node_state("read_2", "failed", output="Timeout after 30 s")
    engine.reports("report-7f3a").error("Timeout after 30 s", node_id="read_2")
    page = new_page(color_scheme="dark")
    login(page, server, operator, then="/dags/report-7f3a/")
    expect(connection(page)).to_have_attribute("data-connection", "open")
    shoot(page, "detail-dark.png")


def test_history_replays_state_by_seq(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    research_run()
    page = new_page()
    login(page, server, operator, then="/dags/report-7f3a/history/?seq=3")
    expect(node(page, "gather")).to_have_attribute("data-status", "running")
    expect(node(page, "sum_a")).to_have_attribute("data-status", "pending")
    page.get_by_role("button", name="Next event").click()
    expect(page.locator("#replay-view")).to_have_attribute("data-seq", "4")
    expect(node(page, "gather")).to_have_attribute("data-status", "completed")
    expect(page).to_have_url(re.compile(r"seq=4$"))
    # The address always names the event shown: each step, back and forth, from
    # a page opened at the last event (no seq in its URL).
    page.goto(f"{server.http}/dags/report-7f3a/history/")
    last = Dag.objects.get(pk="report-7f3a").last_seq
    for step, seq in (("Previous", last - 1), ("Previous", last - 2), ("Next", last - 1)):
        page.get_by_role("button", name=f"{step} event").click()
        expect(page.locator("#replay-view")).to_have_attribute("data-seq", str(seq))
        expect(page.locator("#replay-n")).to_have_text(str(seq))
        expect(page).to_have_url(re.compile(rf"seq={seq}$"))


# Computed styles of the host page's own elements (outside dagstream's root), less
# the sizes that follow from how tall the page's content is.
HOST_STYLES = """() => {
  const layout = ["height", "block-size", "width", "inline-size", "perspective-origin",
                  "transform-origin"];
  const out = {};
  for (const sel of ["html", "body", "#host-title", "#host-btn", "#host-card", "#host-card code",
                     "#host-select"]) {
    const style = getComputedStyle(document.querySelector(sel));
    const props = {};
    for (let i = 0; i < style.length; i++) {
      if (!layout.includes(style[i])) props[style[i]] = style.getPropertyValue(style[i]);
    }
    for (const name of ["--bg", "--surface", "--accent", "--text"]) {
      props[name] = style.getPropertyValue(name);
    }
    out[sel] = props;
  }
  return out;
}"""


def test_in_a_host_base_template_host_and_dagstream_styles_keep_apart(
    new_page: Callable[..., Page], operator: str, errors: PageErrors
) -> None:
    """A host project whose base has only dagstream's four blocks and a stylesheet of
    its own (:root --bg, .btn, .card): the page brings its CSS and htmx-config, neither
    stylesheet styles the other's elements, and htmx POSTs work (no HtmxMiddleware)."""
    engine.create_dag("host-1", name="host", nodes=["a", "b"], edges=[("a", "b")])
    srv = start_server(DJANGO_SETTINGS_MODULE="tests.host_settings")
    try:
        page = new_page()
        login(page, srv, operator, then="/dags/host-1/")
        expect(connection(page)).to_have_attribute("data-connection", "open")
        expect(page.locator("#host-title")).to_have_text("Host intranet")
        expect(page.locator('link[href$="dagstream_app/dagstream.css"]')).to_have_count(1)
        expect(page.locator('meta[name="htmx-config"]')).to_have_count(1)

        # dagstream's CSS changes nothing outside its root ...
        with_dagstream = page.evaluate(HOST_STYLES)
        stylesheet = "document.querySelector('link[href$=\"dagstream.css\"]').disabled = "
        page.evaluate(stylesheet + "true")
        without_dagstream = page.evaluate(HOST_STYLES)
        pause = page.get_by_role("button", name="Pause")
        assert pause.evaluate("b => getComputedStyle(b).borderRadius") != "8px"
        page.evaluate(stylesheet + "false")
        assert with_dagstream == without_dagstream
        assert with_dagstream["#host-btn"]["border-top-left-radius"] == "0px"
        assert with_dagstream["#host-card"]["border-top-width"] == "3px"

        # ... and inside it, the host's .btn, .card and --bg do not reach dagstream's.
        expect(pause).to_have_css("border-radius", "8px")
        expect(pause).to_have_css("background-color", "rgb(255, 255, 255)")  # after its transition
        root = page.locator("#host-main > .dagstream")
        expect(root).to_have_css("background-color", "rgb(246, 246, 248)")
        card = root.locator(".graph-card")
        expect(card).to_have_css("border-top-width", "1px")
        expect(card).to_have_css("border-top-color", "rgb(228, 228, 233)")
        # A --ds-* override in the host's stylesheet does theme it (docs/dashboard.md).
        expect(card).to_have_css("border-top-left-radius", "4px")

        # The root carries the CSRF header: the htmx POST goes through.
        pause.click()
        expect(page.locator("#dag-status")).to_have_attribute("data-status", "paused")
        assert Dag.objects.get(pk="host-1").status == "paused"
        page.close()
    finally:
        errors.allow = OUTAGE_NOISE  # a page left open notices the server going away
        srv.stop()


def test_a_run_deleted_while_away_is_a_terminal_close(
    new_page: Callable[..., Page], operator: str, errors: PageErrors
) -> None:
    engine.create_dag("gone-1", name="gone", nodes=["a"])
    srv = start_server()
    try:
        page = new_page()
        login(page, srv, operator, then="/dags/gone-1/")
        kill_under(page, srv, errors)
        Dag.objects.filter(pk="gone-1").delete()
        srv.stop()
        srv = start_server(port=srv.port)
        # The reconnect is refused with 4004 (a code the page takes from Python):
        # the page says why and stops retrying.
        expect(connection(page)).to_have_attribute("data-connection", "closed", timeout=30_000)
        expect(page.locator("#ds-stale")).to_contain_text("This run no longer exists.")
    finally:
        srv.stop()
