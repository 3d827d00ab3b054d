"""Gate notifications through real receivers: mail to an SMTP server on loopback
(aiosmtpd), webhooks to an HTTP server on loopback that fails the first tries; the
outbox written with the gate, sent later, once, by any number of senders."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings

from dagstream_app import services
from dagstream_app.models import Gate, Notification
from dagstream_app.notify import sender
from dagstream_app.render import dom_id
from dagstream_app.services import outbox
from tests.notify_servers import (
    Mailbox,
    parts,
    smtp_server,
    wait_for,
    webhook_server,
)
from tests.servers import ROOT, child_env, start_server

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "a-webhook-secret-for-tests"
NOTIFY = {
    "NOTIFY_GATES": True,
    "SITE_URL": "https://dags.example.com",
    "NOTIFY_POLL_SECONDS": 0.05,
    "NOTIFY_RETRY_SECONDS": 0.3,
    "NOTIFY_EMBEDDED": False,  # the tests run their senders themselves
}


def person(username: str, *perms: str, email: bool = True, **fields: Any) -> User:
    user = User.objects.create(
        username=username, email=f"{username}@example.com" if email else "", **fields
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    return user


@contextmanager
def mail_to(box: Mailbox, **dagstream: Any) -> Iterator[None]:
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=box.port,
        DEFAULT_FROM_EMAIL="dagstream@example.com",
        DAGSTREAM={**NOTIFY, **dagstream},
    ):
        yield


def send_all() -> None:
    """Rounds of sending until nothing is due (a gate's row makes its messages due)."""
    for _ in range(20):
        if not sender.send_due():
            return
    raise AssertionError("the outbox never ran dry")


@contextmanager
def sender_thread() -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def open_review(dag_id: str = "deploy-7", node_id: str = "review") -> Gate:
    services.create_dag(dag_id, name="nightly deploy", nodes=[node_id])
    return services.open_gate(
        dag_id,
        node_id,
        {"title": "Deploy release 7?", "body": "Changes: **3 fixes**, one migration."},
    )


def test_opening_a_gate_only_writes_its_outbox_row() -> None:
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate")
        gate = open_review()
        rows = list(Notification.objects.values_list("channel", "stage", "status"))
        assert rows == [("gate", "opened", "pending")]
        assert box.received == []  # nothing is sent on the engine's write path
        services.open_gate("deploy-7", "review", {"title": "again"})  # the same gate
        assert Notification.objects.filter(gate=gate).count() == 1


def test_deciders_get_a_mail_with_text_html_title_body_and_their_link() -> None:
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate", "view_dag")
        person("bob", "view_dag")  # may not decide
        person("carol", "decide_gate", email=False)  # no address
        person("dora", is_superuser=True)
        person("eve", "decide_gate", is_active=False)
        ops = Group.objects.create(name="ops")
        ops.permissions.set(Permission.objects.filter(codename="decide_gate"))
        person("fred").groups.add(ops)
        open_review()
        send_all()
        assert sorted(r[0] for r, _ in box.received) == [
            "alice@example.com",
            "dora@example.com",
            "fred@example.com",
        ]
        (message,) = box.to("alice@example.com")
        assert message["Subject"] == "Decision needed: Deploy release 7? (run nightly deploy)"
        assert message["From"] == "dagstream@example.com"
        text, html = parts(message)["text/plain"], parts(message)["text/html"]
        link = next(w for w in text.split() if w.startswith("https://dags.example.com/"))
        assert link.startswith("https://dags.example.com/dags/deploy-7/gates/review/link/")
        assert "Deploy release 7?" in text and "**3 fixes**" in text
        assert "<strong>3 fixes</strong>" in html and f'href="{link}"' in html
        # Each person's link is their own.
        (other,) = box.to("dora@example.com")
        assert link not in parts(other)["text/plain"]
        sent = Notification.objects.filter(channel="email")
        assert {n.status for n in sent} == {"sent"} and {n.attempts for n in sent} == {1}


def test_the_people_notified_are_capped_by_the_setting() -> None:
    with smtp_server() as box, mail_to(box, NOTIFY_MAX_RECIPIENTS=2):
        for name in ("p1", "p2", "p3", "p4"):
            person(name, "decide_gate")
        open_review()
        send_all()
        assert sorted(r[0] for r, _ in box.received) == ["p1@example.com", "p2@example.com"]


def test_a_gate_with_assignees_notifies_them_and_no_one_else() -> None:
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate")  # may decide, but not named
        person("bob", "decide_gate")
        person("carol", "view_dag")  # named, but may not decide
        ops = Group.objects.create(name="ops")
        person("fred", "decide_gate").groups.add(ops)
        services.create_dag("deploy-8", name="nightly deploy", nodes=["review"])
        services.open_gate(
            "deploy-8",
            "review",
            {"title": "Deploy release 8?"},
            assignees=["bob", "carol", "group:ops"],
        )
        send_all()
        assert sorted(r[0] for r, _ in box.received) == ["bob@example.com", "fred@example.com"]


def not_bob(user: Any, action: str, dag: Any) -> bool:
    return user.get_username() != "bob"


def test_the_permission_hook_narrows_who_is_notified() -> None:
    with smtp_server() as box, mail_to(box, PERMISSION_HOOK=not_bob):
        person("alice", "decide_gate")
        person("bob", "decide_gate")
        open_review()
        send_all()
        assert [r[0] for r, _ in box.received] == ["alice@example.com"]


def test_webhooks_are_signed_and_retried_with_growing_waits() -> None:
    with (
        smtp_server() as box,
        webhook_server(fail_first=2) as hook,
        mail_to(box, NOTIFY_WEBHOOKS=[hook.url], NOTIFY_WEBHOOK_SECRET=SECRET),
        sender_thread(),
    ):
        open_review()
        wait_for(lambda: len(hook.posts) >= 3, what="the third webhook POST")
        sent = Notification.objects.filter(channel="webhook", status="sent")
        row = wait_for(sent.first, what="the webhook marked sent")
    (t1, h1, b1), (t2, _, b2), (t3, h3, b3) = hook.posts
    assert t2 - t1 >= 0.3 * 0.9 and t3 - t2 >= 0.6 * 0.9  # the wait doubles
    assert b1 == b2 == b3 and h1["X-Dagstream-Delivery"] == h3["X-Dagstream-Delivery"]
    expected = "sha256=" + hmac.new(SECRET.encode(), b3, hashlib.sha256).hexdigest()
    assert h3["X-Dagstream-Signature"] == expected
    payload = json.loads(b3)
    assert payload["text"].startswith("Decision needed: Deploy release 7? (run nightly deploy)")
    anchor = dom_id("gate", "review")
    assert payload["url"] == f"https://dags.example.com/dags/deploy-7/#{anchor}"
    assert payload["url"] in payload["text"]
    assert (payload["event"], payload["dag_id"], payload["node_id"]) == (
        "gate_opened",
        "deploy-7",
        "review",
    )
    assert row.attempts == 3 and "500" in row.last_error


def test_a_message_that_keeps_failing_is_given_up_after_the_attempts() -> None:
    with (
        smtp_server() as box,
        webhook_server(fail_first=1000) as hook,
        mail_to(
            box,
            NOTIFY_WEBHOOKS=[hook.url],
            NOTIFY_WEBHOOK_SECRET=SECRET,
            NOTIFY_MAX_ATTEMPTS=2,
            NOTIFY_RETRY_SECONDS=0.05,
        ),
        sender_thread(),
    ):
        open_review()
        row = wait_for(lambda: Notification.objects.filter(status="failed").first())
        assert len(hook.posts) == 2
    assert (row.channel, row.attempts) == ("webhook", 2)
    assert "HTTPError" in row.last_error and "500" in row.last_error


def test_a_message_marked_sent_is_never_sent_again() -> None:
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate")
        gate = open_review()
        send_all()
        assert len(box.received) == 1
        # Asked again for the same gate (a redelivered open, a second sender's expansion):
        # the keys already exist, so nothing new is written, and nothing is due.
        assert not outbox.enqueue_opened([gate]) or Notification.objects.count() == 2
        assert outbox.claim() == ("", [])
        send_all()
        assert len(box.received) == 1
        # A sender whose lease was lost cannot mark a row again.
        row = Notification.objects.get(channel="email")
        assert outbox.done(row, "not-its-lease") is False


def test_a_message_claimed_by_a_sender_that_died_is_sent_when_its_lease_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At least once: a sender that claimed rows and never marked them (it died) does
    not lose them; another takes them once the lease ends, and not before."""
    monkeypatch.setattr(outbox, "LEASE_SECONDS", 0.5)
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate")
        open_review()
        send_all()  # the gate's row expanded, alice's mail sent
        open_review("deploy-8")
        lease, rows = outbox.claim()  # the gate row of deploy-8: then this "sender" dies
        assert [row.gate.dag_id for row in rows] == ["deploy-8"] and lease
        assert outbox.claim() == ("", [])  # held by its lease: nobody else takes it
        wait_for(lambda: sender.send_due(), what="the lease to end")
        send_all()
        assert len(box.to("alice@example.com")) == 2
        assert outbox.done(rows[0], lease) is False  # the dead sender's lease is gone


def test_a_gate_decided_before_its_mail_goes_out_is_not_mailed() -> None:
    with smtp_server() as box, mail_to(box):
        alice = person("alice", "decide_gate")
        open_review()
        services.decide_gate("deploy-7", "review", "approve", actor=alice)
        send_all()
        assert box.received == []
        assert Notification.objects.get().status == "skipped"


def test_escalation_notifies_the_second_list_once_the_gate_has_waited() -> None:
    escalation = {"ESCALATE_AFTER_SECONDS": 3.0, "ESCALATE_TO": ["group:leads"]}
    with smtp_server() as box, mail_to(box, **escalation):
        alice = person("alice", "decide_gate")
        leads = Group.objects.create(name="leads")
        person("lena", "view_dag").groups.add(leads)  # sees it; may not decide
        gate = open_review()
        services.create_dag("quick-1", nodes=["review"])
        quick = services.open_gate("quick-1", "review", {"title": "Quick one"})
        send_all()
        services.decide_gate("quick-1", "review", "approve", actor=alice)
        with sender_thread():
            (message,) = wait_for(lambda: box.to("lena@example.com"), what="the escalation")
        arrived = datetime.now(tz=gate.created_at.tzinfo)
        assert (arrived - gate.created_at).total_seconds() >= 3.0
        assert message["Subject"] == "Still waiting: Deploy release 7? (run nightly deploy)"
        text = parts(message)["text/plain"]
        assert "is still waiting for a decision" in text
        # lena may not decide: her mail opens the run's page, not a link of her own
        assert f"https://dags.example.com/dags/deploy-7/#{dom_id('gate', 'review')}" in text
        assert "/link/" not in text
        assert len(box.to("alice@example.com")) == 2  # opened, quick one; no escalation
        escalated = Notification.objects.filter(stage="escalated", channel="gate")
        assert [n.gate_id for n in escalated] == [gate.pk]  # not the decided one
        assert quick.pk != gate.pk


def test_rows_written_while_no_server_runs_are_sent_by_the_server_that_starts_later() -> None:
    """The outbox survives restarts: a server (its embedded sender, mail settings from
    the environment) sends what was written before it started."""
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate")
        open_review()
        assert Notification.objects.get().status == "pending"
        settings = {**NOTIFY, "NOTIFY_EMBEDDED": True}
        server = start_server(
            DAGSTREAM_JSON=json.dumps(settings),
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(box.port),
            DEFAULT_FROM_EMAIL="gates@example.com",
        )
        try:
            (message,) = wait_for(lambda: box.to("alice@example.com"), what="the mail")
        finally:
            server.stop()
        assert message["From"] == "gates@example.com"
        assert "Deploy release 7?" in parts(message)["text/plain"]


def test_two_sender_processes_send_each_message_once() -> None:
    """Scaled out: two ``manage.py dagstream_notify`` processes share the outbox."""
    gates = 30
    with smtp_server() as box, mail_to(box):
        person("alice", "decide_gate")
        for n in range(gates):
            open_review(f"run-{n}")
        env = child_env(
            DAGSTREAM_JSON=json.dumps(NOTIFY),
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(box.port),
        )
        command = [sys.executable, "manage.py", "dagstream_notify"]
        senders = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(2)]
        try:
            wait_for(
                lambda: (
                    Notification.objects.filter(channel="email", status="sent").count() == gates
                ),
                timeout=60,
                what="every mail sent",
            )
        finally:
            for process in senders:
                process.terminate()
            for process in senders:
                process.wait(timeout=30)
        subjects = [message["Subject"] for message in box.to("alice@example.com")]
        assert len(subjects) == gates
        links = {parts(m)["text/plain"].split("/dags/")[1].split("/")[0] for _, m in box.received}
        assert links == {f"run-{n}" for n in range(gates)}
