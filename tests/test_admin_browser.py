"""A person approves a pending gate in Django admin (Chromium, live daphne); the engine hears it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from playwright.async_api import async_playwright, expect

from dagstream_app import tokens
from dagstream_app.engine import DagStream
from tests.browser import chromium_options
from tests.servers import Server
from tests.wsclient import open_ws, recv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "a-long-test-password"


def _reviewer() -> tuple[User, str]:
    user = User.objects.create_user("reviewer", password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="dagstream_app",
            codename__in=["view_dag", "decide_gate"],
        )
    )
    return user, tokens.create_api_token(user, "browser test")[1]


async def test_approving_in_admin_reaches_the_engine(server: Server, tmp_path: Path) -> None:
    user, token = await database_sync_to_async(_reviewer)()
    stream = await DagStream.create(
        "release-7", name="release", nodes=["build", "review", "deploy"], budget=3.0
    )
    watcher = await open_ws(server, "release-7", token=token)
    assert (await recv(watcher))["type"] == "snapshot"
    waiting = asyncio.ensure_future(
        stream.gate(
            "review",
            {"title": "Deploy release 7?", "changes": ["fix <b>login</b>", "faster search"]},
        )
    )
    # A viewer on the server sees the gate open before the person goes looking for it.
    while (await recv(watcher))["type"] != "human_gate_waiting":
        pass

    async with async_playwright() as p:
        browser = await p.chromium.launch(**chromium_options())
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{server.http}/admin/login/?next=/admin/dagstream_app/gate/")
        await page.fill("#id_username", user.username)
        await page.fill("#id_password", PASSWORD)
        await page.click("input[type=submit]")
        row = page.locator("#result_list tbody tr").first
        await expect(row).to_contain_text("release-7")
        await expect(row).to_contain_text("Pending")
        await row.get_by_role("link", name="review").click()

        # The presentation is shown read-only and escaped, not rendered.
        await expect(page.locator("pre.dagstream-json")).to_contain_text("fix <b>login</b>")
        await page.get_by_label("Feedback:").fill("Ship it after lunch")
        await page.screenshot(path=str(tmp_path / "pending.png"), full_page=True)
        await page.get_by_role("button", name="Approve", exact=True).click()
        await expect(page.locator(".messagelist")).to_contain_text("Approved gate review")
        await expect(page.locator("#dagstream-decided")).to_contain_text("by reviewer")
        await expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
        await page.screenshot(path=str(tmp_path / "decided.png"), full_page=True)
        await browser.close()

    decision = await asyncio.wait_for(waiting, 15)
    assert (decision.decision, decision.feedback, decision.decided_by) == (
        "approve",
        "Ship it after lunch",
        "reviewer",
    )
    while (event := await recv(watcher))["type"] != "gate_decided":
        pass
    assert (event["decision"], event["decided_by"]) == ("approve", "reviewer")
    await watcher.close()
    await stream.close()
