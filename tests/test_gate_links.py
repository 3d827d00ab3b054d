"""Signed links to gates, through Django's test client: sign-in first by default; with
GATE_LINKS_DECIDE a GET confirms and a POST decides, once; every refusal is a page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from dagstream_app import links, services
from dagstream_app.models import Gate, GateLink
from dagstream_app.render import dom_id
from dagstream_app.services import outbox
from tests.notify_servers import wait_for

pytestmark = pytest.mark.django_db

DECIDING = {"GATE_LINKS_DECIDE": True, "SITE_URL": "https://dags.example.com"}


@pytest.fixture
def alice() -> User:
    user = User.objects.create_user("alice", "alice@example.com", "pw-for-tests")
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_dag", "decide_gate"]))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def gate() -> Gate:
    services.create_dag("deploy-7", name="nightly deploy", nodes=["review", "second"])
    return services.open_gate("deploy-7", "review", {"title": "Deploy release 7?"})


@pytest.fixture
def deciding() -> Iterator[None]:
    with override_settings(DAGSTREAM=DECIDING):
        yield


def path_of(link: GateLink, token: str | None = None, node_id: str | None = None) -> str:
    return reverse(
        "dagstream:gate_link",
        args=[link.gate.dag_id, node_id or link.gate.node_id, token or links.link_token(link)],
    )


def status_of(gate: Gate) -> tuple[str, str]:
    gate.refresh_from_db()
    return gate.status, gate.decided_by


def test_by_default_a_link_signs_in_first_then_opens_the_gate(alice: User, gate: Gate) -> None:
    link = outbox.create_link(gate, alice)
    client = Client()
    answer = client.get(path_of(link))
    assert answer.status_code == 302
    assert answer["Location"] == f"/accounts/login/?next={path_of(link).replace(':', '%3A')}"
    client.force_login(alice)
    answer = client.get(path_of(link))
    assert answer.status_code == 302
    assert answer["Location"] == f"/dags/deploy-7/#{dom_id('gate', 'review')}"
    assert client.post(path_of(link), {"decision": "approve"}).status_code == 302
    assert status_of(gate) == ("pending", "")  # without the setting a link never decides


@pytest.mark.usefixtures("deciding")
def test_a_get_shows_a_confirmation_and_decides_nothing(alice: User, gate: Gate) -> None:
    link = outbox.create_link(gate, alice)
    for _ in range(2):  # a mail scanner, then the person
        answer = Client().get(path_of(link))
        assert answer.status_code == 200
        html = answer.content.decode()
        assert "Deploy release 7?" in html and 'method="post"' in html
        assert "deciding as <strong>alice</strong>" in html
    assert status_of(gate) == ("pending", "")
    link.refresh_from_db()
    assert link.used_at is None


@pytest.mark.usefixtures("deciding")
def test_a_post_decides_as_the_links_person_and_the_link_is_used_up(
    alice: User, gate: Gate
) -> None:
    link = outbox.create_link(gate, alice)
    client = Client()
    answer = client.post(path_of(link), {"decision": "approve", "feedback": "ship it"})
    assert answer.status_code == 200
    assert "Recorded as alice" in answer.content.decode()
    gate.refresh_from_db()
    assert (gate.status, gate.decided_by, gate.feedback) == ("approved", "alice", "ship it")
    again = client.post(path_of(link), {"decision": "reject"})
    assert again.status_code == 410
    assert "This link was already used" in again.content.decode()
    assert Client().get(path_of(link)).status_code == 410
    assert status_of(gate) == ("approved", "alice")


@pytest.mark.usefixtures("deciding")
def test_a_refused_decision_leaves_the_link_unused(alice: User, gate: Gate) -> None:
    link = outbox.create_link(gate, alice)
    answer = Client().post(path_of(link), {"decision": "modify", "feedback": ""})
    assert answer.status_code == 400
    assert "A modify decision needs feedback." in answer.content.decode()
    link.refresh_from_db()
    assert link.used_at is None
    assert Client().post(path_of(link), {"decision": "modify", "feedback": "v8"}).status_code == 200
    assert status_of(gate) == ("modified", "alice")


def refused(answer: Any, status: int, heading: str) -> None:
    assert answer.status_code == status
    assert heading in answer.content.decode()


@pytest.mark.usefixtures("deciding")
def test_an_expired_link_is_refused(alice: User, gate: Gate) -> None:
    with override_settings(DAGSTREAM={**DECIDING, "GATE_LINK_SECONDS": 0.2}):
        link = outbox.create_link(gate, alice)
    wait_for(lambda: timezone.now() > link.expires_at, what="the link to expire")
    refused(Client().get(path_of(link)), 410, "This link has expired")
    refused(Client().post(path_of(link), {"decision": "approve"}), 410, "This link has expired")
    assert status_of(gate) == ("pending", "")


@pytest.mark.usefixtures("deciding")
def test_a_link_on_another_gates_address_is_refused(alice: User, gate: Gate) -> None:
    services.open_gate("deploy-7", "second", {"title": "Second"})
    link = outbox.create_link(gate, alice)
    other = path_of(link, node_id="second")
    refused(Client().get(other), 400, "This link is for another gate")
    refused(Client().post(other, {"decision": "approve"}), 400, "This link is for another gate")
    assert Gate.objects.filter(status="pending").count() == 2


@pytest.mark.usefixtures("deciding")
def test_a_link_of_someone_who_lost_the_permission_is_refused(alice: User, gate: Gate) -> None:
    link = outbox.create_link(gate, alice)
    alice.user_permissions.remove(Permission.objects.get(codename="decide_gate"))
    refused(Client().get(path_of(link)), 403, "You may no longer decide this gate")
    answer = Client().post(path_of(link), {"decision": "approve"})
    refused(answer, 403, "You may no longer decide this gate")
    assert status_of(gate) == ("pending", "")
    alice.is_active = False
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="decide_gate"))
    refused(Client().get(path_of(link)), 403, "You may no longer decide this gate")


@pytest.mark.usefixtures("deciding")
def test_a_tampered_link_is_refused(alice: User, gate: Gate) -> None:
    link = outbox.create_link(gate, alice)
    token = links.link_token(link)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, "x" + token, token.split(":")[0], "nonsense"):
        refused(Client().get(path_of(link, bad)), 400, "This link is not valid")
        refused(Client().post(path_of(link, bad), {"decision": "approve"}), 400, "not valid")
    assert status_of(gate) == ("pending", "")


@pytest.mark.usefixtures("deciding")
def test_a_link_to_a_gate_decided_meanwhile_says_so(alice: User, gate: Gate) -> None:
    link = outbox.create_link(gate, alice)
    services.decide_gate("deploy-7", "review", "reject", actor=alice)
    refused(Client().get(path_of(link)), 409, "This gate no longer waits")
    refused(Client().post(path_of(link), {"decision": "approve"}), 409, "no longer waits")
    assert status_of(gate) == ("rejected", "alice")
