"""The gate inbox over HTTP: the JSON list, the page, and who sees what (issue 22 item 1).

The live list in Chromium is tests/test_inbox_browser.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from dagstream_app import services, tokens
from dagstream_app.errors import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from dagstream_app.models import Gate
from tests import test_api
from tests.servers import Server
from tests.test_api import signed_in
from tests.wsclient import TIMEOUT, close_code, open_ws

_fast_passwords = test_api._fast_passwords  # autouse: signing in hashes no password


@pytest.fixture
def gates(db: Any) -> None:
    """Four waiting gates (one each in four runs, oldest first) and a decided one."""
    for dag_id, name, gate in [
        ("etl-1", "nightly etl", {}),
        ("rel-1", "release 1", {"assignees": ["ada", "bob"], "quorum": 2}),
        ("ops-1", "key rotation", {"assignees": ["group:ops"]}),
        ("etl-2", "nightly etl", {"assignees": ["bob"]}),
        ("old-1", "done", {}),
    ]:
        services.create_dag(dag_id, name=name, nodes=[{"id": "review", "label": "Review"}])
        services.open_gate(dag_id, "review", {"title": f"{name}?"}, **gate)
    services.decide_gate("old-1", "review", "approve")


def listed(client: Client, **query: str) -> list[str]:
    body = client.get("/api/gates/", query).json()
    assert body["count"] == len(body["gates"])
    return [g["dag_id"] for g in body["gates"]]


def test_the_api_lists_what_each_person_may_decide_oldest_first(
    gates: None, make_user: Any
) -> None:
    ada = make_user("view_dag", "decide_gate", username="ada")
    olga = make_user("view_dag", "decide_gate", username="olga")
    olga.groups.add(Group.objects.create(name="ops"))
    assert listed(signed_in(ada)) == ["etl-1", "rel-1"]
    assert listed(signed_in(olga)) == ["etl-1", "ops-1"]
    body = signed_in(ada).get("/api/gates/").json()
    release = body["gates"][1]
    assert {k: release[k] for k in ("dag_id", "run_name", "label")} == {
        "dag_id": "rel-1",
        "run_name": "release 1",
        "label": "Review",
    }
    gate = release["gate"]
    assert (gate["node_id"], gate["status"], gate["assignees"], gate["quorum"]) == (
        "review",
        "pending",
        ["ada", "bob"],
        2,
    )
    # Once ada voted, the gate waits for others, not for her.
    services.decide_gate("rel-1", "review", "approve", actor=ada)
    assert listed(signed_in(ada)) == ["etl-1"]


def test_the_api_filters_by_run_name_or_id(gates: None, make_user: Any) -> None:
    bob = signed_in(make_user("view_dag", "decide_gate", username="bob"))
    assert listed(bob) == ["etl-1", "rel-1", "etl-2"]
    assert listed(bob, run="nightly") == ["etl-1", "etl-2"]
    assert listed(bob, run="REL-") == ["rel-1"]
    assert listed(bob, run="nothing like it") == []


def test_the_api_refuses_who_may_not_decide(gates: None, make_user: Any) -> None:
    viewer = signed_in(make_user("view_dag"))
    response = viewer.get("/api/gates/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    response = Client().get("/api/gates/")
    assert response.status_code == 401
    ada = signed_in(make_user("view_dag", "decide_gate", username="ada"))
    response = ada.get("/api/gates/", {"run": "a\x00b"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_parameter")


def test_the_page_lists_the_same_and_counts_them_in_the_navigation(
    gates: None, make_user: Any
) -> None:
    ada = signed_in(make_user("view_dag", "decide_gate", username="ada"))
    page = ada.get("/dags/gates/").content.decode()
    assert page.count('class="inbox-entry"') == 2
    assert page.index('data-dag-id="etl-1"') < page.index('data-dag-id="rel-1"')
    assert 'class="nav-count ds-gate-count"' in page
    runs = ada.get("/dags/").content.decode()
    assert '<a href="/dags/gates/" class="nav-gates">Gates <span' in runs
    filtered = ada.get("/dags/gates/", {"run": "release"}).content.decode()
    assert filtered.count('class="inbox-entry"') == 1
    assert "ws/gates/?run=release" in filtered


def test_the_page_refuses_who_may_not_decide(gates: None, make_user: Any) -> None:
    viewer = signed_in(make_user("view_dag"))
    response = viewer.get("/dags/gates/")
    assert response.status_code == 403
    assert "You may not decide gates." in response.content.decode()
    assert "nav-gates" not in viewer.get("/dags/").content.decode()  # no link to it either
    assert Client().get("/dags/gates/").status_code == 302  # to sign in


def test_a_gate_assigned_to_others_is_read_only_on_the_run_page(
    gates: None, make_user: Any
) -> None:
    ada = signed_in(make_user("view_dag", "decide_gate", username="ada"))
    page = ada.get("/dags/ops-1/").content.decode()
    assert "Waits for group:ops" in page
    assert "Waiting for a decision." in page
    assert 'name="decision"' not in page
    mine = ada.get("/dags/rel-1/").content.decode()
    assert 'name="decision"' in mine


def test_a_vote_refused_in_place_says_why_and_changes_nothing(gates: None, make_user: Any) -> None:
    ada = signed_in(make_user("view_dag", "decide_gate", username="ada"))
    response = ada.post("/dags/ops-1/gates/review/decide/", {"decision": "approve"})
    assert response.status_code == 403
    assert "This gate waits for group:ops; you are not one of them." in response.content.decode()
    ada.post("/dags/rel-1/gates/review/decide/", {"decision": "approve", "across_runs": "1"})
    again = ada.post("/dags/rel-1/gates/review/decide/", {"decision": "reject"})
    assert again.status_code == 409
    assert "You already voted on this gate: approve." in again.content.decode()
    assert [v["voter"] for v in Gate.objects.get(dag_id="rel-1").votes] == ["ada"]


# ------------------------------------------------------------ the live socket


@pytest.mark.django_db(transaction=True)
async def test_the_inbox_socket_refuses_who_may_not_decide(server: Server) -> None:
    viewer = await database_sync_to_async(_token)("view_dag")
    anonymous = await open_ws(server, "", path="/ws/gates/")
    assert await close_code(anonymous) == CLOSE_UNAUTHENTICATED
    watching = await open_ws(server, "", token=viewer, path="/ws/gates/")
    assert await close_code(watching) == CLOSE_FORBIDDEN


@pytest.mark.django_db(transaction=True)
async def test_the_inbox_socket_sends_the_list_then_what_changes(server: Server) -> None:
    token = await database_sync_to_async(_token)("view_dag", "decide_gate")
    await database_sync_to_async(services.create_dag)("live-1", nodes=["a", "b"])
    await database_sync_to_async(services.open_gate)("live-1", "a", {"title": "First?"})
    ws = await open_ws(server, "", token=token, path="/ws/gates/", query="run=live")
    first = await recv_text(ws)
    assert 'id="inbox-list"' in first and first.count('class="inbox-entry"') == 1
    assert 'hx-swap-oob="innerHTML:.ds-gate-count">1<' in first
    await database_sync_to_async(services.open_gate)("live-1", "b", {"title": "Second?"})
    added = await recv_text(ws)
    assert 'hx-swap-oob="beforeend:#inbox-list"' in added and "Second?" in added
    assert "First?" not in added  # only what changed
    await database_sync_to_async(services.decide_gate)("live-1", "a", "approve")
    gone = await recv_text(ws)
    assert gone.count('hx-swap-oob="delete"') == 1
    assert 'hx-swap-oob="innerHTML:.ds-gate-count">1<' in gone
    await ws.close()


def _token(*perms: str) -> str:
    user = User.objects.create(username=f"inbox-{len(perms)}-{User.objects.count()}")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    return tokens.create_api_token(User.objects.get(pk=user.pk), "tests")[1]


async def recv_text(ws: Any) -> str:
    """The next dashboard message that is not a keepalive."""
    while True:
        text = str(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if "ds-keepalive" not in text:
            return text
