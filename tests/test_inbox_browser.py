"""The gate inbox in Chromium: gates across runs, live, decidable in place; a quorum gate
half-decided (issue 22 items 1 and 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from tests import test_dashboard_browser as dash
from tests.browser import ServicesThread
from tests.servers import Server
from tests.test_dashboard_browser import WAIT, login, shoot

# The dashboard's browser fixtures: one Chromium per module, pages that fail on JS errors.
browser, errors, new_page, operator = dash.browser, dash.errors, dash.new_page, dash.operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

engine = ServicesThread()  # this module's own: test_dashboard_browser closes its one


@pytest.fixture(scope="module", autouse=True)
def _close_engine() -> Iterator[None]:
    yield
    engine.close()


def entry(page: Page, dag_id: str) -> Any:
    return page.locator(f'.inbox-entry[data-dag-id="{dag_id}"]')


def run_with_gate(dag_id: str, name: str, title: str, **gate: Any) -> None:
    engine.create_dag(dag_id, name=name, nodes=[{"id": "review", "label": "Review"}])
    engine.open_gate(dag_id, "review", {"title": title, "body": "Please **check**."}, **gate)


def test_the_inbox_lists_gates_across_runs_live_and_decides_in_place(
    server: Server, new_page: Callable[..., Page], operator: str, make_user: Any
) -> None:
    make_user("view_dag", "decide_gate", username="bob")
    run_with_gate("etl-7", "nightly etl", "Load into the warehouse?")
    run_with_gate(
        "rel-42", "release 4.2", "Ship 4.2 to production?", assignees=["ada", "bob"], quorum=2
    )
    run_with_gate("ops-1", "ops rotation", "Rotate the keys?", assignees=["group:ops"])

    page = new_page()
    login(page, server, operator, then="/dags/gates/")
    expect(page.locator("#ds-connection")).to_have_attribute("data-connection", "open")
    # Oldest first; a gate assigned to others (ops) is not ada's to decide.
    entries = page.locator(".inbox-entry")
    expect(entries).to_have_count(2)
    assert [e.get_attribute("data-dag-id") for e in entries.all()] == ["etl-7", "rel-42"]
    expect(page.locator(".topnav .ds-gate-count")).to_have_text("2")
    expect(entry(page, "rel-42")).to_contain_text("Waits for ada, bob")
    expect(entry(page, "rel-42")).to_contain_text("0 of 2 approvals")

    # A gate opening in another run appears, live; the count follows.
    run_with_gate("doc-3", "docs build", "Publish the docs?")
    expect(entries).to_have_count(3, timeout=WAIT)
    expect(entries.last).to_have_attribute("data-dag-id", "doc-3")
    expect(page.locator(".topnav .ds-gate-count")).to_have_text("3")
    shoot(page, "gate-inbox.png")

    # Bob watches the release's run page while ada votes in her inbox.
    bobs = new_page()
    login(bobs, server, "bob", then="/dags/rel-42/")
    bobs_card = bobs.locator('.gate[data-node-id="review"]')
    expect(bobs_card).to_contain_text("0 of 2 approvals")
    expect(bobs.locator("#ds-connection")).to_have_attribute("data-connection", "open")

    # A vote in place: ada's card says so, then leaves her inbox (nothing left for her).
    card = entry(page, "rel-42")
    card.get_by_label("Feedback").fill("Changelog reads well.")
    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text("You voted; waiting for the others.")
    expect(entry(page, "rel-42")).to_have_count(0, timeout=WAIT)
    expect(page.locator(".topnav .ds-gate-count")).to_have_text("2")

    # Bob sees the gate half-decided, live: the vote, who it was, what it said.
    expect(bobs_card).to_contain_text("1 of 2 approvals", timeout=WAIT)
    expect(bobs_card).to_contain_text("ada approved: Changelog reads well.")
    expect(bobs_card).to_have_attribute("data-gate-status", "pending")
    bobs_card.get_by_label("Feedback").fill("Ship it after the freeze.")
    bobs_card.scroll_into_view_if_needed()
    bobs_card.screenshot(path=str(dash.IMG / "gate-quorum-half.png"))
    # A draft being written in one of ada's cards survives the live updates around it.
    other = entry(page, "doc-3")
    other.get_by_label("Feedback").fill("half-written thought")
    # Bob's vote decides it: one decision, by both of them.
    bobs_card.get_by_role("button", name="Approve").click()
    expect(bobs_card).to_have_attribute("data-gate-status", "approved", timeout=WAIT)
    expect(bobs_card).to_contain_text("Approved by ada, bob")
    expect(other.get_by_label("Feedback")).to_have_value("half-written thought")

    # Decided in place: the card shows the decision, then the gate leaves the list.
    first = entry(page, "etl-7")
    first.get_by_role("button", name="Approve").click()
    expect(first.locator(".gate")).to_have_attribute("data-gate-status", "approved")
    expect(entry(page, "etl-7")).to_have_count(0, timeout=WAIT)
    expect(page.locator(".topnav .ds-gate-count")).to_have_text("1")

    # A run that ends closes its gate: it leaves too.
    engine.reports("doc-3").fail("the docs build broke")
    expect(entries).to_have_count(0, timeout=WAIT)
    expect(page.locator(".gate-empty")).to_be_visible()
    expect(page.locator(".topnav .ds-gate-count")).to_have_text("0")


def test_the_inbox_filters_by_run_name_and_the_navigation_counts(
    server: Server, new_page: Callable[..., Page], operator: str
) -> None:
    run_with_gate("etl-8", "nightly etl", "Load?")
    run_with_gate("rel-43", "release 4.3", "Ship?")
    page = new_page()
    login(page, server, operator, then="/dags/")
    nav = page.locator(".topnav .nav-gates")
    expect(nav.locator(".ds-gate-count")).to_have_text("2")
    nav.click()
    expect(page.locator(".inbox-entry")).to_have_count(2)
    page.get_by_placeholder("Filter by run name or id").fill("release")
    page.get_by_placeholder("Filter by run name or id").press("Enter")
    expect(page.locator(".inbox-entry")).to_have_count(1)
    expect(entry(page, "rel-43")).to_contain_text("release 4.3")
    # Live within the filter: a new matching run's gate appears, another run's does not.
    run_with_gate("rel-44", "release 4.4", "Ship this one too?")
    run_with_gate("etl-9", "nightly etl", "Load again?")
    expect(page.locator(".inbox-entry")).to_have_count(2, timeout=WAIT)
    expect(entry(page, "rel-44")).to_have_count(1)
    expect(page.locator(".topnav .ds-gate-count")).to_have_text("4")  # the count is all of them


def test_the_run_page_shows_who_else_is_here_and_who_is_writing(
    server: Server, new_page: Callable[..., Page], operator: str, make_user: Any
) -> None:
    make_user("view_dag", "decide_gate", username="bob")
    run_with_gate("pr-5", "pull request 5", "Merge it?")
    ada = new_page()
    login(ada, server, operator, then="/dags/pr-5/")
    presence = ada.locator("#ds-presence")
    expect(presence).to_be_hidden()  # nobody else yet
    bob = new_page()
    login(bob, server, "bob", then="/dags/pr-5/")
    expect(presence).to_have_text("Also looking at this run: bob", timeout=WAIT)
    expect(bob.locator("#ds-presence")).to_have_text("Also looking at this run: ada", timeout=WAIT)

    # Bob writes feedback on the gate: ada's card says so, and stops when he leaves the box.
    typing = ada.locator('.gate-typing[data-typing-for="review"]')
    bob.locator('.gate[data-node-id="review"]').get_by_label("Feedback").fill("Needs a rebase")
    expect(typing).to_have_text("bob is writing…", timeout=WAIT)
    expect(typing).to_be_visible()
    ada.locator('.gate[data-node-id="review"]').scroll_into_view_if_needed()
    ada.locator('.gate[data-node-id="review"]').screenshot(path=str(dash.IMG / "gate-typing.png"))
    bob.locator("#graph-title").click()  # the feedback box loses focus
    expect(typing).to_be_hidden(timeout=WAIT)

    # Bob closes his page: he is gone from ada's within seconds.
    bob.close()
    expect(presence).to_be_hidden(timeout=WAIT)


def test_a_gate_for_others_that_opens_live_is_read_only_to_the_rest(
    server: Server, new_page: Callable[..., Page], operator: str, make_user: Any
) -> None:
    make_user("view_dag", "decide_gate", username="bob")
    carol = make_user("view_dag", "decide_gate", username="carol")
    carol.groups.add(Group.objects.create(name="release managers"))
    engine.create_dag("rel-50", name="release 5.0", nodes=[{"id": "review", "label": "Review"}])
    pages = {}
    for name in (operator, "bob", "carol"):
        pages[name] = new_page()
        login(pages[name], server, name, then="/dags/rel-50/")
        expect(pages[name].locator("#ds-connection")).to_have_attribute("data-connection", "open")

    # The gate opens while all three have the page open; it waits for bob and the group.
    engine.open_gate(
        "rel-50", "review", {"title": "Ship 5.0?"}, assignees=["bob", "group:release managers"]
    )
    cards = {name: page.locator('.gate[data-node-id="review"]') for name, page in pages.items()}
    for card in cards.values():
        expect(card).to_contain_text("Waits for bob, group:release managers", timeout=WAIT)

    # Ada may decide gates, but not this one: no form, the line a page load shows.
    expect(cards[operator]).to_contain_text("Waiting for a decision.")
    expect(cards[operator].get_by_role("button")).to_have_count(0)
    expect(cards[operator].get_by_label("Feedback")).to_have_count(0)
    # Bob, named, and carol, through her group, decide it.
    for name in ("bob", "carol"):
        expect(cards[name].get_by_role("button", name="Approve")).to_be_enabled()
        expect(cards[name]).not_to_contain_text("Waiting for a decision.")
    cards["carol"].get_by_role("button", name="Approve").click()
    for card in cards.values():
        expect(card).to_have_attribute("data-gate-status", "approved", timeout=WAIT)
    expect(cards[operator]).to_contain_text("Approved by carol")
