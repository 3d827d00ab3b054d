"""A fan-out in Chromium: one group node, live counts, its panel, finding a node (issue 18.2)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests import test_dashboard_browser as dash
from tests.browser import ServicesThread
from tests.servers import Server
from tests.test_dashboard_browser import WAIT, login, node, shoot

# The dashboard's browser fixtures: one Chromium per module, pages that fail on JS errors.
browser, errors, new_page, operator = dash.browser, dash.errors, dash.new_page, dash.operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHUNKS = [f"chunk-{i:04d}" for i in range(120)]

engine = ServicesThread()  # this module's own: test_dashboard_browser closes its one


@pytest.fixture(scope="module", autouse=True)
def _close_engine() -> Iterator[None]:
    yield
    engine.close()


def fan_out_run(dag_id: str = "fan-7") -> None:
    nodes = [{"id": "split", "label": "Split input"}]
    nodes += [{"id": c, "label": f"Chunk {c[6:]}"} for c in CHUNKS]
    nodes.append({"id": "join", "label": "Join results"})
    edges = [("split", c) for c in CHUNKS] + [(c, "join") for c in CHUNKS]
    engine.create_dag(dag_id, name="fan-out", nodes=nodes, edges=edges)
    reports = engine.reports(dag_id)
    reports.node_state("split", "completed")
    for c in CHUNKS[:40]:
        reports.node_state(c, "completed")
    for c in CHUNKS[40:44]:
        reports.node_state(c, "running")


def test_a_fan_out_is_one_group_node_with_live_counts_and_a_panel(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    fan_out_run()
    page = new_page()
    login(page, server, operator, then="/dags/fan-7/")
    group = page.locator(".graph .node.group")
    expect(group).to_have_count(1)
    expect(page.locator(".graph .node")).to_have_count(3)
    expect(group).to_have_attribute("data-status", "running")
    expect(group.locator(".node-label")).to_contain_text("Chunk")
    expect(group).to_contain_text("40 / 120 done")
    expect(group).to_contain_text("4 running")
    expect(page.locator("#ds-connection")).to_have_attribute("data-connection", "open")

    # A member's update changes the group's counts, live.
    engine.reports("fan-7").node_state(CHUNKS[100], "failed")
    expect(group).to_contain_text("1 failed · 4 running", timeout=WAIT)
    expect(group).to_have_attribute("aria-label", re.compile("1 failed · 4 running · 40 done"))
    expect(node(page, CHUNKS[100])).to_have_count(0)  # members are not drawn one by one

    # Opened (a click, or Enter on it), it lists its members, failures first.
    group.focus()
    page.keyboard.press("Enter")
    panel = page.locator("#node-panel")
    rows = panel.locator(".node-row")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-node-id", CHUNKS[100])
    expect(rows.first).to_have_attribute("data-status", "failed")
    expect(panel).to_contain_text("page 1 of 3")
    shoot(page, "group-panel.png")
    # The panel follows the group live.
    engine.reports("fan-7").node_state(CHUNKS[101], "failed")
    expect(panel.locator(".group-summary")).to_contain_text("2 failed", timeout=WAIT)

    # A search among the members, then a member's own panel.
    panel.get_by_role("searchbox").fill("0077")
    panel.get_by_role("searchbox").press("Enter")
    expect(rows).to_have_count(1)
    rows.first.click()
    expect(panel.locator("#node-panel-title")).to_have_text("Chunk 0077")

    # The graph's search box finds any node by id or label.
    page.locator(".graph-find input").fill("join")
    page.locator(".graph-find input").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-node-id", "join")
    expect(rows.first.locator(".node-label")).to_have_text("Join results")
    page.keyboard.press("Escape")
    expect(panel).to_be_empty()
    assert re.search(r"group", group.get_attribute("class") or "")


def test_the_timeline_shows_a_fan_out_as_one_row_live(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    fan_out_run("fan-8")
    page = new_page()
    login(page, server, operator, then="/dags/fan-8/")
    group_id = page.locator(".graph .node.group").get_attribute("data-node-id")
    timeline = page.locator("#timeline")
    row = timeline.locator("li.tl-group")
    # 44 members' events in one row: the group's, with its status and counts.
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-node-id", group_id or "")
    expect(row).to_have_attribute("data-status", "running")
    expect(row).to_contain_text("4 running · 40 done · 76 pending")
    expect(timeline.locator("li:not(.tl-group)")).to_have_count(2)  # split's, the run's start
    expect(page.locator("#ds-connection")).to_have_attribute("data-connection", "open")

    # A member's event moves the row to the top, its counts updated: still one row.
    reports = engine.reports("fan-8")
    reports.node_state("join", "running")
    expect(timeline.locator("li").first).to_have_attribute("data-type", "node_state")
    expect(timeline.locator("li").first).not_to_have_class(re.compile("tl-group"))
    for c in CHUNKS[40:44]:
        reports.node_state(c, "failed")
    expect(row).to_contain_text("4 failed · 40 done · 76 pending", timeout=WAIT)
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "pending")
    expect(timeline.locator("li").first).to_have_attribute("data-node-id", group_id or "")
    expect(row).to_contain_text("Chunk 0043")

    # Focused, it keeps the focus when a member's event moves it.
    row.focus()
    reports.node_state(CHUNKS[44], "running")
    expect(row).to_contain_text("Chunk 0044", timeout=WAIT)
    expect(row).to_be_focused()

    # Opened, it lists its members' events, newest first; the panel follows it live.
    row.click()
    panel = page.locator("#node-panel .group-events")
    entries = panel.locator("li.tl")
    expect(entries).to_have_count(49)
    expect(entries.first).to_contain_text("Chunk 0044")
    expect(entries.first).to_have_attribute("data-type", "node_state")
    reports.node_state(CHUNKS[50], "running")
    expect(entries.first).to_contain_text("Chunk 0050", timeout=WAIT)
    expect(entries).to_have_count(50)
    expect(row).to_have_attribute("data-status", "running")
