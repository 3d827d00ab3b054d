"""WebSocket tickets: issued over HTTP, single-use, DAG-scoped, short-lived, never logged.

Through the real endpoint and real daphne; every refusal (bad, reused, expired, wrong
DAG, wrong origin) is a 4001 close whose reason says what is wrong, and the session
cookie counts only on our own origins.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dagstream_app import auth, services, tickets
from dagstream_app.models import Dag, Ticket
from dagstream_app.tokens import hash_token
from tests.servers import Server, release_database, start_server
from tests.wsclient import TIMEOUT, close_code, close_frame, open_ws, recv, recv_messages

pytestmark = pytest.mark.django_db(transaction=True)

APP_ORIGIN = "http://app.example:5173"  # a React app on another origin, allowed for tickets


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ticket-logs")


# Session scope, as every server fixture: its teardown ends the other sessions on the
# PostgreSQL test database (release_database), which later async tests still use.
@pytest.fixture(scope="session")
def app_server(django_db_setup: Any, django_db_blocker: Any, log_dir: Path) -> Iterator[Server]:
    """daphne allowing tickets from APP_ORIGIN, with its access log and INFO logs kept."""
    with django_db_blocker.unblock():
        srv = start_server(
            access_log=log_dir / "access.log",
            DAGSTREAM_JSON=json.dumps({"ALLOWED_ORIGINS": [APP_ORIGIN]}),
            DJANGO_LOG_LEVEL="INFO",
        )
    yield srv
    srv.stop()
    release_database(django_db_blocker)


@pytest.fixture
def dag(db: Any) -> Dag:
    return services.create_dag("t-1", nodes=["a"])


@pytest.fixture
def viewer(make_user: Any) -> User:
    return make_user("view_dag")  # type: ignore[no-any-return]


def _ticket(user: User, dag_id: str = "t-1") -> str:
    return tickets.issue_ticket(user, Dag.objects.get(pk=dag_id))[0]


async def _open(server: Server, dag_id: str, key: str, origin: str = APP_ORIGIN) -> Any:
    return await open_ws(server, dag_id, query=f"ticket={key}", origin=origin)


# ------------------------------------------------------------------ the endpoint


def test_bearer_token_gets_a_ticket(dag: Dag, viewer: User, make_token: Any) -> None:
    response = Client().post(
        "/dags/t-1/ticket/", headers={"Authorization": f"Bearer {make_token(viewer)}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == 30
    assert body["ticket"].startswith(tickets.TICKET_PREFIX)
    assert response["Cache-Control"] == "no-store"
    stored = Ticket.objects.get()
    assert (stored.user, stored.dag_id) == (viewer, "t-1")
    assert stored.key_hash == hash_token(body["ticket"])  # only the hash is kept
    assert body["ticket"] not in json.dumps(list(Ticket.objects.values()), default=str)
    lifetime = (stored.expires_at - stored.created_at).total_seconds()
    assert 29 <= lifetime <= 30


def _error_code(response: Any) -> str:
    """The code of a refusal in the one JSON error shape, ``{"error": {"code", "message"}}``."""
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


def test_session_needs_the_csrf_token(dag: Dag, viewer: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    refused = client.post("/dags/t-1/ticket/")
    assert refused.status_code == 403
    assert _error_code(refused) == "forbidden"
    assert "CSRF" in refused.json()["error"]["message"]
    assert not Ticket.objects.exists()
    client.get("/dags/t-1/")  # the dashboard page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/dags/t-1/ticket/", headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert Ticket.objects.get().user == viewer


@pytest.mark.parametrize("header", [None, "Bearer dgs_wrong", "Basic dXNlcjpwdw=="])
def test_no_or_bad_credentials_are_401(dag: Dag, viewer: User, header: str | None) -> None:
    client = Client()
    client.force_login(viewer)  # a bad Authorization header wins over the session
    headers = {"Authorization": header} if header else {}
    if header is None:
        client.logout()
    response = client.post("/dags/t-1/ticket/", headers=headers)
    assert response.status_code == 401
    assert _error_code(response) == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"
    assert not Ticket.objects.exists()


def test_viewing_rights_are_needed(dag: Dag, make_user: Any, make_token: Any) -> None:
    nobody = make_token(make_user())
    response = Client().post("/dags/t-1/ticket/", headers={"Authorization": f"Bearer {nobody}"})
    assert (response.status_code, _error_code(response)) == (403, "forbidden")
    viewer = make_token(make_user("view_dag"))
    unknown = Client().post("/dags/nope/ticket/", headers={"Authorization": f"Bearer {viewer}"})
    assert (unknown.status_code, _error_code(unknown)) == (404, "not_found")
    services.create_dag("t-secret", name="secret", nodes=["a"])
    with override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.hide_secret_dags"}):
        hooked = Client().post(
            "/dags/t-secret/ticket/", headers={"Authorization": f"Bearer {viewer}"}
        )
    assert hooked.status_code == 403
    assert not Ticket.objects.exists()


def test_only_post(dag: Dag, viewer: User, make_token: Any) -> None:
    key = make_token(viewer)
    response = Client().get("/dags/t-1/ticket/", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 405
    assert (_error_code(response), response["Allow"]) == ("method_not_allowed", "POST")
    assert not Ticket.objects.exists()


def test_issuing_deletes_expired_tickets(dag: Dag, viewer: User) -> None:
    old = _ticket(viewer)
    Ticket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _ticket(viewer)
    assert not Ticket.objects.filter(key_hash=hash_token(old)).exists()
    assert Ticket.objects.count() == 1


# ------------------------------------------------------------------- redeeming


def test_redeem_refusals_say_why_and_consume(dag: Dag, viewer: User) -> None:
    services.create_dag("t-2", nodes=["a"])
    key = _ticket(viewer)
    with pytest.raises(tickets.TicketRefused) as wrong:
        tickets.redeem_ticket(key, "t-2")
    assert wrong.value.reason == "wrong_dag"
    with pytest.raises(tickets.TicketRefused) as gone:
        tickets.redeem_ticket(key, "t-1")  # spent by the wrong-DAG attempt
    assert gone.value.reason == "unknown"
    expired = _ticket(viewer)
    Ticket.objects.update(expires_at=timezone.now())
    with pytest.raises(tickets.TicketRefused) as late:
        tickets.redeem_ticket(expired, "t-1")
    assert late.value.reason == "expired"
    inactive = _ticket(viewer)
    User.objects.filter(pk=viewer.pk).update(is_active=False)
    with pytest.raises(tickets.TicketRefused) as off:
        tickets.redeem_ticket(inactive, "t-1")
    assert off.value.reason == "inactive"
    for bad in ("", "dgt_", "dgs_" + key[4:], key + "x"):
        with pytest.raises(tickets.TicketRefused):
            tickets.redeem_ticket(bad, "t-1")
    assert not Ticket.objects.exists()


# ----------------------------------------------------------- on the WebSocket


async def test_a_ticket_opens_the_stream_once(app_server: Server, dag: Dag, viewer: User) -> None:
    key = await sync_to_async(_ticket)(viewer)
    ws = await _open(app_server, "t-1", key)
    snap = await recv(ws)
    assert (snap["type"], snap["dag"]["dag_id"]) == ("snapshot", "t-1")
    await ws.close()
    reused = await _open(app_server, "t-1", key)
    assert await close_code(reused) == 4001


async def test_a_ticket_resumes_like_any_connection(
    app_server: Server, dag: Dag, viewer: User
) -> None:
    await sync_to_async(services.reports("t-1").node_state)("a", "running")
    key = await sync_to_async(_ticket)(viewer)
    ws = await _open(app_server, "t-1", f"{key}&last_seq=1&batch=1")
    [event] = await recv_messages(ws)
    assert (event["type"], event["seq"]) == ("node_state", 2)  # replayed, no snapshot
    await ws.close()


async def test_a_ticket_works_from_our_own_origin_too(
    app_server: Server, dag: Dag, viewer: User
) -> None:
    key = await sync_to_async(_ticket)(viewer)
    ws = await _open(app_server, "t-1", key, origin=app_server.http)
    assert (await recv(ws))["type"] == "snapshot"
    await ws.close()


async def test_refused_tickets_close_4001(app_server: Server, dag: Dag, viewer: User) -> None:
    await sync_to_async(services.create_dag)("t-2", nodes=["a"])
    wrong_dag = await sync_to_async(_ticket)(viewer, "t-2")
    expired = await sync_to_async(_ticket)(viewer)
    await sync_to_async(Ticket.objects.filter(key_hash=hash_token(expired)).update)(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    refused = (4001, str(auth.TICKET_REFUSED))
    for key in (wrong_dag, expired, "dgt_not-a-ticket", ""):
        ws = await _open(app_server, "t-1", key)
        assert await close_frame(ws) == refused, key
    # The wrong-DAG attempt spent the ticket: not even its own DAG takes it now.
    ws = await _open(app_server, "t-2", wrong_dag)
    assert await close_code(ws) == 4001


async def test_a_foreign_origin_is_refused(app_server: Server, dag: Dag, viewer: User) -> None:
    key = await sync_to_async(_ticket)(viewer)
    with pytest.raises(InvalidStatus) as exc:
        await _open(app_server, "t-1", key, origin="http://evil.example")
    assert exc.value.response.status_code == 403  # at the handshake (AllowedOriginsValidator)


async def test_a_ticket_from_an_origin_not_allowed_for_tickets_is_spent(
    dag: Dag, viewer: User
) -> None:
    """A host whose handshake check lets more through still refuses tickets from it."""
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from dagstream_app.routing import websocket_urlpatterns

    key = await sync_to_async(_ticket)(viewer)
    comm = WebsocketCommunicator(
        AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        f"/ws/dags/t-1/?ticket={key}",
        headers=[(b"origin", b"http://evil.example")],
    )
    connected, _ = await comm.connect()
    assert connected
    closed = await comm.receive_output(timeout=TIMEOUT)
    assert (closed["code"], closed["reason"]) == (4001, str(auth.ORIGIN_NOT_ALLOWED))
    await comm.disconnect()
    assert not await sync_to_async(Ticket.objects.exists)()


async def test_the_session_counts_only_on_our_own_origins(
    app_server: Server, dag: Dag, viewer: User
) -> None:
    client = Client()
    await sync_to_async(client.force_login)(viewer)
    cookie = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    url = f"{app_server.ws}/ws/dags/t-1/"
    async with connect(url, origin=app_server.http, additional_headers=cookie) as own:  # type: ignore[arg-type]
        assert (await recv(own))["type"] == "snapshot"
    # The app's origin passes the handshake, but a page there cannot ride the cookie.
    other = await connect(url, origin=APP_ORIGIN, additional_headers=cookie)  # type: ignore[arg-type]
    assert await close_frame(other) == (4001, str(auth.NO_TICKET))


async def test_each_refusal_says_what_is_wrong_and_where_the_fix_is(
    app_server: Server, dag: Dag, make_user: Any, make_token: Any
) -> None:
    """The close reasons a client shows: no one signed in, a bad token, no permission."""
    nobody = await open_ws(app_server, "t-1")
    assert await close_frame(nobody) == (4001, str(auth.NOT_SIGNED_IN))
    assert "docs/client.md#authentication" in str(auth.NOT_SIGNED_IN)
    bad_token = await open_ws(app_server, "t-1", token="dgs_not-a-token")
    assert await close_frame(bad_token) == (4001, str(auth.TOKEN_REFUSED))
    stranger = await sync_to_async(make_user)()  # signed in, no permission
    key = await sync_to_async(make_token)(stranger)
    forbidden = await open_ws(app_server, "t-1", token=key)
    assert await close_frame(forbidden) == (4003, "You may not view DAGs.")
    for reason in (auth.NO_TICKET, auth.ORIGIN_NOT_ALLOWED, auth.SIGNED_OUT):
        assert len(str(reason).encode()) <= 123  # what a close frame can carry


async def test_racing_handshakes_share_one_ticket_once(
    redis_servers: list[Server], dag: Dag, viewer: User
) -> None:
    key = await sync_to_async(_ticket)(viewer)
    attempts = [open_ws(redis_servers[i % 2], "t-1", query=f"ticket={key}") for i in range(8)]
    sockets = await asyncio.gather(*attempts)

    async def outcome(ws: Any) -> str:
        try:
            first = await recv(ws)
        except ConnectionClosed:
            return f"closed {ws.close_code}"
        await ws.close()
        return first["type"]

    outcomes = sorted(await asyncio.gather(*(outcome(ws) for ws in sockets)))
    assert outcomes == ["closed 4001"] * 7 + ["snapshot"]


async def test_tickets_are_never_logged(
    app_server: Server, dag: Dag, viewer: User, log_dir: Path
) -> None:
    used = await sync_to_async(_ticket)(viewer)
    ws = await _open(app_server, "t-1", used)
    assert (await recv(ws))["type"] == "snapshot"
    await ws.close()
    refused = await _open(app_server, "t-1", used)  # reused: refused, and said so
    assert await close_code(refused) == 4001
    access = (log_dir / "access.log").read_text()
    server_log = "".join(app_server.log)
    assert "WSCONNECT /ws/dags/t-1/" in access  # the log does record the connection
    assert "ticket refused on 't-1': unknown" in server_log
    assert used not in access + server_log
    assert "ticket=" not in access + server_log
