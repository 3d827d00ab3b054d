"""The dashboard shows a Celery run like any other: live from a real worker, steered
from the page (Debian's Chromium through Playwright's async API)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from celery import chain
from playwright.async_api import async_playwright, expect

from dagstream_app.celery import gate, launch
from dagstream_app.models import Node
from tests import celery_app as tasks
from tests.browser import chromium_options
from tests.celery_worker import Worker
from tests.servers import Server

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WAIT = 20_000  # ms


def _node_ids(dag_id: str) -> dict[str, str]:
    return dict(Node.objects.filter(dag_id=dag_id).values_list("label", "node_id"))


async def test_the_dashboard_shows_a_celery_run_live_and_decides_its_gate(
    celery_worker: Worker, redis_servers: list[Server], make_user: Any
) -> None:
    user = await sync_to_async(make_user)("view_dag", "decide_gate", "control_dag")
    canvas = chain(
        tasks.echo.si("draft"),
        gate.si(title="Ship the draft?", body="Three pages, two figures."),
        tasks.add.si(1, 2),
    )
    run = await sync_to_async(launch)(canvas, name="celery-report")
    ids = await sync_to_async(_node_ids)(run.dag_id)
    server = redis_servers[0]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(**chromium_options())
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        await page.goto(f"{server.http}/dags/{run.dag_id}/")
        await page.get_by_label("Username").fill(user.username)
        await page.get_by_label("Password").fill("pw-for-tests")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(rf"/dags/{run.dag_id}/$"))

        def node(label: str) -> Any:
            return page.locator(f'.node[data-node-id="{ids[label]}"]')

        await expect(node("echo")).to_contain_text("echo")
        await expect(node("echo")).to_have_attribute("data-status", "completed", timeout=WAIT)
        await expect(node("Ship the draft?")).to_have_attribute(
            "data-status", "waiting", timeout=WAIT
        )
        await expect(node("add")).to_have_attribute("data-status", "pending")
        pending = page.locator("#gate-list .gate")
        await expect(pending).to_contain_text("Three pages, two figures.")
        # Live first: a click before the page's socket is open can meet a card the
        # socket's first message is swapping in.
        await expect(page.locator("#ds-connection")).to_have_attribute(
            "data-connection", "open", timeout=WAIT
        )
        await pending.get_by_role("button", name="Approve").click()
        await expect(pending).to_have_attribute("data-gate-status", "approved", timeout=WAIT)
        await expect(node("add")).to_have_attribute("data-status", "completed", timeout=WAIT)
        await expect(page.locator("#dag-status")).to_have_attribute(
            "data-status", "completed", timeout=WAIT
        )
        await browser.close()
    assert problems == []
    assert await sync_to_async(lambda: run.result.get(timeout=30))() == 3
