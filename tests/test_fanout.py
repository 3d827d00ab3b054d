"""fanout: one group membership per process, shared messages, the database tick."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from dagstream_app import broadcast, fanout, services
from dagstream_app.models import Dag
from dagstream_app.tokens import hash_token
from tests.servers import Server
from tests.wsclient import TIMEOUT, open_ws, recv

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def viewer(make_user, make_token) -> str:
    return make_token(make_user("view_dag"))


def communicator(path: str, token: str) -> WebsocketCommunicator:
    from project.asgi import application

    return WebsocketCommunicator(
        application,
        path,
        headers=[(b"origin", b"http://127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
    )


async def test_many_viewers_hold_one_membership_and_share_each_message(viewer: str) -> None:
    await sync_to_async(services.create_dag)("fan-1", nodes=["a"])
    layer = get_channel_layer()
    group = broadcast.group_name("fan-1")
    viewers = [communicator("/ws/dags/fan-1/?batch=1", viewer) for _ in range(5)]
    for comm in viewers:
        assert (await comm.connect())[0]
        assert json.loads(await comm.receive_from(TIMEOUT))["type"] == "snapshot"
    assert len(layer.groups[group]) == 1  # one channel for the whole process
    await sync_to_async(services.reports("fan-1").node_state)("a", "running")
    frames = [await comm.receive_from(TIMEOUT) for comm in viewers]
    assert len(set(frames)) == 1 and json.loads(frames[0])["seq"] == 2
    for comm in viewers:
        await comm.disconnect()
    assert group not in layer.groups  # the last one out leaves the group


async def test_a_full_inbox_drops_and_the_consumer_fills_from_the_log(viewer: str) -> None:
    inbox = fanout.Inbox(limit=2)
    for seq in (1, 2, 3):
        inbox.put({"type": "dagstream.events", "events": [{"seq": seq}]})
    assert await inbox.get() is None  # overflowed: catch up from the log
    assert len(inbox) == 0

    await sync_to_async(services.create_dag)("fan-2", nodes=["a"])
    comm = communicator("/ws/dags/fan-2/", viewer)
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from(TIMEOUT))["seq"] == 1
    for _ in range(3):
        await sync_to_async(services.reports("fan-2").node_state)("a", "running")
    # Every layer message lost: the overflow signal alone brings all three back.
    consumer_inboxes = next(iter(fanout.hub_for(get_channel_layer()).members.values()))
    (target,) = consumer_inboxes
    got = [json.loads(await comm.receive_from(TIMEOUT))["seq"] for _ in range(3)]
    assert got == [2, 3, 4]
    target.overflowed = True
    target.put({"type": "dagstream.events", "events": []})
    await sync_to_async(services.reports("fan-2").node_state)("a", "completed")
    assert json.loads(await comm.receive_from(TIMEOUT))["seq"] == 5
    await comm.disconnect()


async def test_the_tick_brings_what_the_layer_never_carried(server: Server, viewer: str) -> None:
    """An engine in another process, no shared layer: the run list and the stream stay live."""
    dag = await sync_to_async(services.create_dag)("fan-3", nodes=["a"])
    assert isinstance(dag, Dag)
    listing = await open_ws(server, "", token=viewer, path="/ws/dags/", query="ids=fan-3")
    stream = await open_ws(server, "fan-3", token=viewer)
    assert (await recv(stream))["type"] == "snapshot"
    await sync_to_async(services.reports("fan-3").node_state)("a", "running")  # this process only
    assert (await recv(stream))["seq"] == 2
    row = str(await asyncio.wait_for(listing.recv(), TIMEOUT))
    assert 'hx-swap-oob="true"' in row and "fan-3" in row
    await sync_to_async(services.create_dag)("fan-4", nodes=["a"])
    notice = str(await asyncio.wait_for(listing.recv(), TIMEOUT))
    assert "1 new run started" in notice
    await listing.close()
    await stream.close()


async def test_a_layer_outage_is_one_warning_not_one_per_consumer(caplog: Any, viewer: str) -> None:
    await sync_to_async(services.create_dag)("fan-5", nodes=["a"])
    layer = get_channel_layer()
    hub = fanout.hub_for(layer)
    real = layer.group_add

    async def failing(*args: Any) -> None:
        raise ConnectionError("layer down")

    layer.group_add = failing
    try:
        viewers = [communicator("/ws/dags/fan-5/", viewer) for _ in range(3)]
        for comm in viewers:
            assert (await comm.connect())[0]
            await comm.receive_from(TIMEOUT)
        await sync_to_async(services.reports("fan-5").node_state)("a", "running")
        # Not in the group: the tick delivers from the log.
        for comm in viewers:
            assert json.loads(await comm.receive_from(TIMEOUT))["seq"] == 2
    finally:
        layer.group_add = real
    failures = [r for r in caplog.records if "channel layer failed" in r.getMessage()]
    assert len(failures) == 1
    assert hub._down
    for comm in viewers:
        await comm.disconnect()


class _Layer:
    """Just enough of a channel layer for a hub that is fed by hand."""

    async def new_channel(self) -> str:
        return "hub!1"

    async def group_add(self, group: str, channel: str) -> None:
        return None

    async def group_discard(self, group: str, channel: str) -> None:
        return None

    async def receive(self, channel: str) -> Any:
        await asyncio.Event().wait()  # nothing comes: the test delivers


def _events(*seqs: int) -> dict[str, Any]:
    return {"type": "dagstream.events", "events": [{"seq": seq} for seq in seqs]}


async def test_the_batch_window_merges_a_storm_into_one_message_every_batch_viewer_shares(
    settings: Any,
) -> None:
    settings.DAGSTREAM = {"BATCH_WINDOW_SECONDS": 0.05}
    hub = fanout.Hub(_Layer())
    batch = [fanout.Inbox(100, coalesce=True) for _ in range(3)]
    plain = fanout.Inbox(100)
    for inbox in [*batch, plain]:
        await hub.join("g", inbox, dag_id="d")
    for seq in (2, 3, 4):
        hub._deliver("g", _events(seq))
    # Plain viewers get each message as it comes; batch viewers wait for the window.
    assert [(await plain.get() or {})["events"][0]["seq"] for _ in range(3)] == [2, 3, 4]
    assert all(len(inbox) == 0 for inbox in batch)
    got = [await asyncio.wait_for(inbox.get(), 5) for inbox in batch]
    assert got[0] is not None and [e["seq"] for e in got[0]["events"]] == [2, 3, 4]
    assert all(message is got[0] for message in got)  # one object: what they send is built once
    for inbox in [*batch, plain]:
        await hub.leave("g", inbox)


async def test_what_the_window_holds_goes_before_the_next_tick_and_a_full_frame_goes_at_once(
    settings: Any,
) -> None:
    settings.DAGSTREAM = {"BATCH_WINDOW_SECONDS": 60, "BATCH_MAX_EVENTS": 5}
    hub = fanout.Hub(_Layer())
    inbox = fanout.Inbox(100, coalesce=True)
    await hub.join("g", inbox, dag_id="d")
    hub._deliver("g", _events(2))
    hub._deliver("g", {"type": "dagstream.progress", "seq": 2, "status": "running"})
    first, second = await inbox.get(), await inbox.get()
    assert first is not None and first["events"] == [{"seq": 2}]  # order kept: events first
    assert second is not None and second["type"] == "dagstream.progress"
    hub._deliver("g", _events(3, 4, 5))
    assert len(inbox) == 0  # held: the window is a minute long ...
    hub._deliver("g", _events(6, 7))
    full = await inbox.get()  # ... but five events fill a frame
    assert full is not None and [e["seq"] for e in full["events"]] == [3, 4, 5, 6, 7]
    hub._deliver("g", _events(8))
    await hub.leave("g", inbox)  # the last viewer leaves: nothing held, no timer left
    assert not hub._windows


async def test_viewers_that_fill_the_same_run_from_the_log_share_it() -> None:
    hub = fanout.Hub(_Layer())
    run = [(3, '{"seq":3}'), (4, '{"seq":4}')]
    assert hub.shared_run("d", run) is hub.shared_run("d", list(run))
    assert hub.shared_run("d", run) is not hub.shared_run("d", run[:1])
    # A DAG deleted and created again has other frames at the same seqs.
    assert hub.shared_run("d", run) is not hub.shared_run("d", [run[0], (4, '{"seq":4,"x":1}')])


async def test_a_users_sockets_on_a_run_are_checked_again_with_one_read(
    viewer: str, make_user: Any, make_token: Any, settings: Any, monkeypatch: Any
) -> None:
    from dagstream_app.consumers import DagStreamConsumer

    settings.DAGSTREAM = {"KEEPALIVE_SECONDS": 0}  # each socket says it handled the tick
    other = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    await sync_to_async(services.create_dag)("fan-3", nodes=["a"])
    sockets = [communicator("/ws/dags/fan-3/", token) for token in (viewer, viewer, other)]
    for comm in sockets:
        assert (await comm.connect())[0]
        assert json.loads(await comm.receive_from(TIMEOUT))["type"] == "snapshot"
    reads: list[str] = []
    real = DagStreamConsumer._viewer_now

    def counted(self: DagStreamConsumer) -> Any:
        reads.append(self.credential()[1])
        return real(self)

    monkeypatch.setattr(DagStreamConsumer, "_viewer_now", counted)
    monkeypatch.setattr(DagStreamConsumer, "recheck_due", lambda self: True)
    hub = fanout.hub_for(get_channel_layer())
    hub._deliver(
        broadcast.group_name("fan-3"), {"type": "dagstream.progress", "seq": 1, "status": "running"}
    )
    for comm in sockets:  # the tick handled: a keep-alive, and the socket still open
        assert json.loads(await comm.receive_from(TIMEOUT))["type"] == "keepalive"
    # One read per credential (a token's is its SHA-256), not per socket.
    assert sorted(reads) == sorted([hash_token(viewer), hash_token(other)])
    for comm in sockets:
        await comm.disconnect()


async def test_when_channels_loop_is_not_as_checked_consumers_run_on_channels_own(
    viewer: str, monkeypatch: Any
) -> None:
    from channels.consumer import AsyncConsumer

    from dagstream_app.consumers import base

    monkeypatch.setattr(base, "_channels_mismatch", lambda: "Channels changed")
    warned: list[str] = []
    monkeypatch.setattr(base.log, "warning", lambda text, *args: warned.append(text % args))
    base.fast_dispatch.cache_clear()
    dispatched: list[str] = []
    channels_dispatch = AsyncConsumer.dispatch

    async def counted(self: Any, message: Any) -> None:
        dispatched.append(message["type"])
        await channels_dispatch(self, message)

    monkeypatch.setattr(AsyncConsumer, "dispatch", counted)
    try:
        await sync_to_async(services.create_dag)("fan-4", nodes=["a"])
        comm = communicator("/ws/dags/fan-4/", viewer)
        assert (await comm.connect())[0]
        assert json.loads(await comm.receive_from(TIMEOUT))["type"] == "snapshot"
        for status in ("running", "completed"):
            await sync_to_async(services.reports("fan-4").node_state)("a", status)
        frames = [json.loads(await comm.receive_from(TIMEOUT)) for _ in range(2)]
        assert [(f["seq"], f["status"]) for f in frames] == [(2, "running"), (3, "completed")]
        await comm.disconnect()
    finally:
        base.fast_dispatch.cache_clear()
    # Channels' own dispatch ran them, fed from the hub's inbox; the group is left.
    assert dispatched.count("dagstream.events") == 2 and "websocket.connect" in dispatched
    assert broadcast.group_name("fan-4") not in get_channel_layer().groups
    assert warned == ["dagstream: Channels changed; sockets use Channels' own dispatch (slower)"]
