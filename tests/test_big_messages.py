"""Big messages on a real daphne: bounded in the log, never taken for a client that does not read.

An engine's 6 MB output is stored as a truncated stand-in and every client gets it
and what follows; a 30,000-node DAG's snapshot (over 5 MB, far past the server's
unread-bytes bound here) reaches a client that reads, and events follow it; a
client that reads nothing is still dropped; and clients that vanish mid-snapshot
leave nothing of theirs in the server's memory.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import ClientConnection

from dagstream_app import services
from dagstream_app.models import Node
from tests.servers import Server, configured_server, non_reader, rss_mb
from tests.wsclient import events_until, open_ws, recv

pytestmark = pytest.mark.django_db(transaction=True)

UNSENT = 256 * 1024  # the server's unread-bytes bound: far below the big messages
NODES = 30_000
OUTPUT = 6_000_000


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, MAX_UNSENT_BYTES=UNSENT) as srv:
        yield srv


@pytest.fixture
def token(make_user: Any, make_token: Any) -> str:
    return str(make_token(make_user("view_dag")))


def _big_dag(dag_id: str) -> None:
    services.create_dag(
        dag_id,
        nodes=[{"id": f"n{i}", "label": f"node number {i}"} for i in range(NODES)],
        edges=[(f"n{i}", f"n{i + 1}") for i in range(NODES - 1)],
    )


async def _snapshot(ws: ClientConnection) -> dict[str, Any]:
    snapshot = await recv(ws, timeout=60)
    assert snapshot["type"] == "snapshot"
    return snapshot  # type: ignore[no-any-return]


async def test_a_6mb_output_is_stored_truncated_and_every_client_gets_it_and_what_follows(
    server: Server, token: str
) -> None:
    await sync_to_async(services.create_dag)("big-output", nodes=["a", "b"])
    clients = [await open_ws(server, "big-output", token=token) for _ in range(5)]
    for ws in clients:
        await _snapshot(ws)
    big = await sync_to_async(services.reports("big-output").node_state)(
        "a", "completed", output={"text": "x" * OUTPUT}
    )
    for i in range(20):
        last = await sync_to_async(services.reports("big-output").node_state)(
            "b", "running", output={"i": i}
        )
    for ws in clients:
        events = await events_until(ws, last, timeout=30)
        assert [e["seq"] for e in events] == list(range(big, last + 1))  # nobody was dropped
        output = events[0]["output"]
        assert output["truncated"] is True and output["bytes"] == OUTPUT + len('{"text":""}')
        assert output["preview"] == '{"text":"' + "x" * (64 * 1024 - 9)
        await ws.close()
    stored = await sync_to_async(Node.objects.get)(dag__dag_id="big-output", node_id="a")
    assert stored.output == output


async def test_a_snapshot_past_the_bound_reaches_a_client_that_reads_and_events_follow(
    server: Server, token: str
) -> None:
    await sync_to_async(_big_dag)("big-dag")
    ws = await open_ws(server, "big-dag", token=token)
    snapshot = await _snapshot(ws)
    assert len(snapshot["dag"]["nodes"]) == NODES
    for i in range(10):
        last = await sync_to_async(services.reports("big-dag").node_state)(f"n{i}", "running")
    events = await events_until(ws, last, timeout=30)
    assert [e["seq"] for e in events] == list(range(snapshot["seq"] + 1, last + 1))
    await ws.close()


async def test_a_client_that_does_not_read_a_big_snapshot_is_still_dropped(
    server: Server, token: str
) -> None:
    await sync_to_async(_big_dag)("big-unread")
    sock = non_reader(server, "big-unread", token)
    await asyncio.sleep(1)  # the snapshot is read and written
    for i in range(100):  # 2 MB more than it does not read
        await sync_to_async(services.reports("big-unread").node_state)(
            "n0", "running", output={"i": i, "blob": "y" * 20_000}
        )
    received = 0
    sock.settimeout(30)
    with pytest.raises((ConnectionResetError, EOFError)):
        while True:
            chunk = await asyncio.to_thread(sock.recv, 65536)
            if not chunk:
                raise EOFError
            received += len(chunk)
    assert received < 6_000_000  # the snapshot and at most the bound behind it, not 2 MB more
    sock.close()


def _vanish(sock: socket.socket) -> None:
    """Close with a reset, as a client whose machine went away: no close frame, no FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def test_clients_dropped_mid_replay_or_snapshot_leave_no_memory_behind(
    server: Server, token: str
) -> None:
    """What the server held for them goes with them, at once: not at the cyclic collector's
    next full pass, which a few big buffers do not bring about (old: 400 MB held)."""
    await sync_to_async(services.create_dag)("big-log", nodes=["a"])
    for i in range(200):  # 10 MB of log, replayed to each client that resumes from the start
        await sync_to_async(services.reports("big-log").node_state)(
            "a", "running", output={"i": i, "blob": "z" * 50_000}
        )
    await sync_to_async(_big_dag)("big-gone")
    for dag_id in ("big-log", "big-gone"):  # warm-up: what a first replay and snapshot cost
        _vanish(non_reader(server, dag_id, token, query="last_seq=1"))
    await asyncio.sleep(3)
    before = rss_mb(server.process.pid)
    for dag_id in ("big-gone", "big-gone", "big-log", "big-log"):
        socks = [non_reader(server, dag_id, token, query="last_seq=1") for _ in range(20)]
        await asyncio.sleep(3)  # each replay or snapshot read and written, then held unread
        for sock in socks:
            _vanish(sock)
    await asyncio.sleep(3)
    grown = rss_mb(server.process.pid) - before
    assert grown < 100, grown
    assert not any("Traceback" in line for line in server.log)
