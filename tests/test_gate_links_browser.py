"""A gate's mail, sent by a real daphne server's embedded sender to an SMTP server on
loopback, and its link clicked in Debian's Chromium: sign-in then the gate by default;
with GATE_LINKS_DECIDE a confirmation page whose button decides, once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect

from dagstream_app.models import Gate
from dagstream_app.render import dom_id
from tests.browser import ServicesThread, sync_chromium
from tests.notify_servers import Mailbox, free_port, parts, smtp_server, wait_for
from tests.servers import Server, release_database, start_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests"
WAIT = 15_000  # ms


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


engine = ServicesThread()


@pytest.fixture(scope="module", autouse=True)
def _close_engine() -> Iterator[None]:
    yield
    engine.close()


def settings_for(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "NOTIFY_GATES": True,
        "SITE_URL": f"http://127.0.0.1:{port}",
        "NOTIFY_POLL_SECONDS": 0.1,
        **extra,
    }


@contextmanager
def notify_server(mailbox: Mailbox, django_db_blocker: Any, *, decide: bool) -> Iterator[Server]:
    """daphne whose embedded sender mails through ``mailbox`` (the only sender running,
    so links start with its address); its links decide with ``decide``."""
    port = free_port()
    dagstream = settings_for(port, GATE_LINKS_DECIDE=decide)
    with django_db_blocker.unblock():
        srv = start_server(
            port,
            DAGSTREAM_JSON=json.dumps(dagstream),
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(mailbox.port),
        )
    try:
        yield srv
    finally:
        srv.stop()
        release_database(django_db_blocker)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def mailed_link(server: Server, mailbox: Mailbox, dag_id: str) -> tuple[User, str]:
    """Open a gate as an engine does (this process writes only the outbox row) and
    return alice and the link of the mail the server's sender sent her."""
    alice = User.objects.create_user("alice", "alice@example.com", PASSWORD)
    alice.user_permissions.set(Permission.objects.filter(codename__in=["view_dag", "decide_gate"]))
    mailbox.received.clear()
    with override_settings(DAGSTREAM=settings_for(server.port, NOTIFY_EMBEDDED=False)):
        engine.create_dag(dag_id, name="nightly deploy", nodes=["review"])
        engine.open_gate(dag_id, "review", {"title": "Deploy release 7?", "body": "3 fixes"})
    (message,) = wait_for(lambda: mailbox.to("alice@example.com"), what="alice's mail")
    text = parts(message)["text/plain"]
    link = re.search(rf"{re.escape(server.http)}/\S+", text)
    assert link is not None, text
    return alice, link.group(0)


def gate_of(dag_id: str) -> Gate:
    return Gate.objects.get(dag_id=dag_id, node_id="review")


def sign_in(page: Page) -> None:
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_the_mailed_link_opens_the_gate_after_sign_in(
    mailbox: Mailbox, page: Page, django_db_blocker: Any
) -> None:
    with notify_server(mailbox, django_db_blocker, decide=False) as server:
        _, link = mailed_link(server, mailbox, "links-a")
        page.goto(link)
        sign_in(page)
        anchor = dom_id("gate", "review")
        expect(page).to_have_url(f"{server.http}/dags/links-a/#{anchor}", timeout=WAIT)
        card = page.locator(f"#{anchor}")
        expect(card).to_contain_text("Deploy release 7?")
        expect(card.get_by_role("button", name="Approve")).to_be_enabled()
    assert gate_of("links-a").status == "pending"  # opening a link decides nothing


def test_a_one_click_link_confirms_then_decides_once(
    mailbox: Mailbox, page: Page, django_db_blocker: Any
) -> None:
    with notify_server(mailbox, django_db_blocker, decide=True) as server:
        _, link = mailed_link(server, mailbox, "links-b")
        page.goto(link)  # no sign-in: the link stands for alice
        expect(page.get_by_role("heading", name="Deploy release 7?")).to_be_visible()
        expect(page.get_by_text("deciding as alice")).to_be_visible()
        assert gate_of("links-b").status == "pending"  # the GET decided nothing
        page.get_by_label("Feedback").fill("ship it")
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("heading")).to_contain_text("Approved: Deploy release 7?")
        gate = gate_of("links-b")
        assert (gate.status, gate.decided_by, gate.feedback) == ("approved", "alice", "ship it")
        page.goto(link)
        expect(page.get_by_role("heading", name="This link was already used")).to_be_visible()
        assert gate_of("links-b").status == "approved"
