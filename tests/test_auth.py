"""auth: bearer tokens, and no permission outliving its revocation on an open socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.test import Client
from websockets.asyncio.client import connect

from dagstream_app import services, tokens
from dagstream_app.models import ApiToken, Dag, Gate
from tests.servers import Server, configured_server
from tests.wsclient import TIMEOUT, close_code, open_ws, recv, send

pytestmark = pytest.mark.django_db(transaction=True)

# Re-checked this often; each close is awaited with a bound, not slept for.
RECHECK = 0.5
WITHIN = 10.0


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, REVALIDATE_SECONDS=RECHECK) as srv:
        yield srv


@pytest.fixture
def dag(db: Any) -> Dag:
    dag = services.create_dag("auth-1", nodes=["review"])
    services.open_gate("auth-1", "review", {"title": "Ship?"})
    return dag


@pytest.fixture
def operator(make_user: Any) -> User:
    user: User = make_user("view_dag", "decide_gate", "control_dag")
    return user


async def _token(user: User) -> str:
    key: str = (await sync_to_async(tokens.create_api_token)(user, "tests"))[1]
    return key


async def _watching(server: Server, token: str, path: str | None = None) -> Any:
    ws = await open_ws(server, "auth-1", token=token, path=path)
    await asyncio.wait_for(ws.recv(), TIMEOUT)  # the snapshot (or the list's first word)
    return ws


async def test_a_revoked_token_closes_its_open_sockets(
    server: Server, dag: Dag, operator: User
) -> None:
    token = await _token(operator)
    stream = await _watching(server, token)
    listing = await open_ws(server, "", token=token, path="/ws/dags/")
    await sync_to_async(ApiToken.objects.filter(user=operator).delete)()
    assert await close_code(stream, WITHIN) == 4001
    assert await close_code(listing, WITHIN) == 4001


async def test_a_deactivated_user_cannot_act_on_an_open_socket(
    server: Server, dag: Dag, operator: User
) -> None:
    ws = await _watching(server, await _token(operator))
    await sync_to_async(User.objects.filter(pk=operator.pk).update)(is_active=False)
    # The very next command is refused: it is checked against the user as they are now.
    await send(ws, {"type": "pause_execution", "id": "late"})
    assert await close_code(ws, WITHIN) == 4001
    fresh = await sync_to_async(Dag.objects.get)(pk="auth-1")
    assert fresh.status == "running"


async def test_a_lost_permission_is_lost_on_an_open_socket(
    server: Server, dag: Dag, operator: User
) -> None:
    ws = await _watching(server, await _token(operator))
    decide = await sync_to_async(Permission.objects.get)(codename="decide_gate")
    await sync_to_async(operator.user_permissions.remove)(decide)
    await send(ws, {"type": "human_decision", "node_id": "review", "decision": "approve", "id": 1})
    while (reply := await recv(ws)).get("id") != 1:
        pass  # events of the run, if any
    assert (reply["type"], reply["code"]) == ("error", "forbidden")
    gate = await sync_to_async(Gate.objects.get)(dag=dag, node_id="review")
    assert gate.status == "pending"
    view = await sync_to_async(Permission.objects.get)(codename="view_dag")
    await sync_to_async(operator.user_permissions.remove)(view)
    assert await close_code(ws, WITHIN) == 4003


async def test_signing_out_closes_the_sessions_sockets(
    server: Server, dag: Dag, make_user: Any
) -> None:
    user = await sync_to_async(make_user)("view_dag", password="pw-for-tests")
    client = Client()
    assert await sync_to_async(client.login)(username=user.username, password="pw-for-tests")
    cookie = client.cookies["sessionid"].value
    ws = await connect(
        f"{server.ws}/ws/dags/auth-1/",
        origin=server.http,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={cookie}"},
    )
    assert (await recv(ws))["type"] == "snapshot"
    await sync_to_async(client.post)("/accounts/logout/")
    assert await close_code(ws, WITHIN) == 4001


async def test_a_socket_whose_user_keeps_access_stays_open(
    server: Server, dag: Dag, operator: User
) -> None:
    ws = await _watching(server, await _token(operator))
    for number in range(3):  # over several re-checks, commands keep working
        await send(ws, {"type": "resume", "last_seq": 3, "id": number})
        assert await recv(ws, TIMEOUT) == {"type": "ack", "id": number}
        await asyncio.wait_for(_ticks(server, RECHECK), TIMEOUT)
    await ws.close()


async def _ticks(server: Server, seconds: float) -> None:
    """Let the server's re-check come round (bounded by the caller's timeout)."""
    deadline = asyncio.get_running_loop().time() + seconds * 2
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(seconds / 2)  # wall time passing is the point here


async def test_a_session_from_another_port_is_not_signed_in(
    server: Server, dag: Dag, make_user: Any
) -> None:
    """ALLOWED_HOSTS names hosts, not ports: a page on another port of the same host
    must not ride the visitor's cookie onto the stream."""
    user = await sync_to_async(make_user)("view_dag", password="pw-for-tests")
    client = Client()
    assert await sync_to_async(client.login)(username=user.username, password="pw-for-tests")
    cookie = client.cookies["sessionid"].value
    headers = {"Cookie": f"sessionid={cookie}"}
    other = f"http://127.0.0.1:{server.port + 1 if server.port < 65535 else server.port - 1}"
    ws = await connect(f"{server.ws}/ws/dags/auth-1/", origin=other, additional_headers=headers)  # type: ignore[arg-type]
    assert await close_code(ws, WITHIN) == 4001
    ws = await connect(
        f"{server.ws}/ws/dags/auth-1/", origin=server.http, additional_headers=headers
    )  # type: ignore[arg-type]
    assert (await recv(ws))["type"] == "snapshot"
    await ws.close()


async def test_a_dashboards_buttons_follow_a_permission_lost_while_it_is_open(
    server: Server, dag: Dag, operator: User
) -> None:
    ws = await _watching(server, await _token(operator), path="/ws/dags/auth-1/html/")
    decide = await sync_to_async(Permission.objects.get)(codename="decide_gate")
    await sync_to_async(operator.user_permissions.remove)(decide)
    await asyncio.wait_for(_ticks(server, RECHECK), TIMEOUT)  # a re-check comes round
    await sync_to_async(services.open_gate)("auth-1", "second", {"title": "And this?"})
    while "And this?" not in (html := str(await asyncio.wait_for(ws.recv(), TIMEOUT))):
        pass  # keep-alives
    assert "You don't have permission to decide gates." in html
    await ws.close()
