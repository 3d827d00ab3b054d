"""Floods: what one client sends past its limits costs next to nothing, and the
others keep every event; replays are budgeted per credential, not per connection.

Mechanisms, not timings: frames past the rate are counted unread, the flooder is
closed with its code, reconnecting gets no fresh replay budget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from dagstream_app import protocol, services
from dagstream_app.errors import CLOSE_TOO_MANY_FRAMES, CLOSE_TRY_AGAIN_LATER
from dagstream_app.models import Dag
from tests.servers import Server, configured_server
from tests.wsclient import TIMEOUT, events_until, open_ws, recv, send, until_closed

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 5


@pytest.fixture
def dag(db: Any) -> Dag:
    return services.create_dag("flood-1", nodes=["a"])


@pytest.fixture
def viewer(make_user: Any, make_token: Any) -> str:
    return make_token(make_user("view_dag"))  # type: ignore[no-any-return]


@pytest.fixture
def tight(settings: Any) -> None:
    """A burst of BURST frames and next to no refill: the counts below are exact."""
    settings.DAGSTREAM = {"RATE_LIMIT_PER_SECOND": 0.001, "RATE_LIMIT_BURST": BURST}


def _communicator(path: str, token: str) -> WebsocketCommunicator:
    from project.asgi import application

    return WebsocketCommunicator(
        application,
        path,
        headers=[(b"origin", b"http://127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
    )


async def _outputs_until_close(comm: WebsocketCommunicator) -> tuple[list[Any], int]:
    """The frames a consumer sends until it closes, and its close code."""
    sent: list[Any] = []
    while (output := await comm.receive_output(TIMEOUT))["type"] != "websocket.close":
        sent.append(json.loads(output["text"]) if "text" in output else output)
    return sent, output["code"]


async def test_frames_past_the_rate_are_not_read_and_a_flooder_is_closed(
    dag: Dag, viewer: str, tight: None, monkeypatch: Any
) -> None:
    parsed = 0
    parse = protocol.parse_command

    def counting(text: str) -> Any:
        nonlocal parsed
        parsed += 1
        return parse(text)

    monkeypatch.setattr(protocol, "parse_command", counting)
    comm = _communicator(f"/ws/dags/{dag.dag_id}/", viewer)
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from(TIMEOUT))["type"] == "snapshot"
    for number in range(4 * BURST):
        await comm.send_to(text_data=json.dumps({"type": "explode", "id": number}))
    replies, code = await _outputs_until_close(comm)
    assert parsed == BURST  # the burst; nothing past it was read
    assert [r["code"] for r in replies] == ["unknown_type"] * BURST + ["rate_limited"]
    assert code == CLOSE_TOO_MANY_FRAMES
    await comm.disconnect()


async def test_the_dashboard_socket_floods_shut_too(dag: Dag, viewer: str, tight: None) -> None:
    """Its frames are ignored, and bounded all the same."""
    comm = _communicator(f"/ws/dags/{dag.dag_id}/html/", viewer)
    assert (await comm.connect())[0]
    await comm.receive_from(TIMEOUT)  # the page's regions
    for _ in range(4 * BURST):
        await comm.send_to(text_data="junk")
    replies, code = await _outputs_until_close(comm)
    assert (replies, code) == ([], CLOSE_TOO_MANY_FRAMES)
    await comm.disconnect()


async def test_the_others_keep_every_event_while_one_floods(
    server: Server, dag: Dag, viewer: str, make_user: Any, make_token: Any
) -> None:
    flooder = await open_ws(
        server,
        dag.dag_id,
        token=await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag")),
    )
    watcher = await open_ws(server, dag.dag_id, token=viewer)
    assert (await recv(flooder))["type"] == (await recv(watcher))["type"] == "snapshot"
    for number in range(500):
        await send(flooder, {"type": "explode", "id": number})
    for i in range(20):
        await sync_to_async(services.reports(dag.dag_id).node_state)(
            "a", "running" if i % 2 == 0 else "completed"
        )
    _, code = await until_closed(flooder)
    assert code == CLOSE_TOO_MANY_FRAMES
    assert [e["seq"] for e in await events_until(watcher, 21)] == list(range(2, 22))
    await watcher.close()


# ------------------------------------------------------------ replay budget


@pytest.fixture(scope="module")
def small_budget(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, REPLAY_BUDGET_PER_MINUTE=100) as srv:
        yield srv


async def _replayed(server: Server, dag_id: str, token: str) -> list[int]:
    ws = await open_ws(server, dag_id, token=token, query="last_seq=1&batch=1")
    seqs = [e["seq"] for e in await events_until(ws, 61)]
    await ws.close()
    return seqs


async def test_reconnecting_gets_no_fresh_replay_budget(
    small_budget: Server, dag: Dag, viewer: str, make_user: Any, make_token: Any
) -> None:
    for i in range(60):  # seqs 2..61
        await sync_to_async(services.reports(dag.dag_id).node_state)(
            "a", "running" if i % 2 == 0 else "completed"
        )
    everything = list(range(2, 62))
    assert await _replayed(small_budget, dag.dag_id, viewer) == everything  # 60 of 100
    # A connection's first stream is owed even past what is left: 40 left, a debt of 20.
    assert await _replayed(small_budget, dag.dag_id, viewer) == everything
    # In debt: the next connection of this credential is told to come back later,
    # before anything is read or sent.
    ws = await open_ws(small_budget, dag.dag_id, token=viewer, query="last_seq=1")
    assert await until_closed(ws) == ([], CLOSE_TRY_AGAIN_LATER)
    # Another credential has its own budget.
    other = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    assert await asyncio.wait_for(_replayed(small_budget, dag.dag_id, other), TIMEOUT) == (
        everything
    )
