"""transport: a server never holds without bound for a client that does not read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dagstream_app import services, transport
from tests.servers import Server, configured_server, non_reader, rss_mb

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 256 * 1024
EVENTS, BLOB = 400, 20_000  # 8 MB of frames for a client that reads none of them


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, MAX_UNSENT_BYTES=LIMIT) as srv:
        yield srv


async def test_a_client_that_does_not_read_is_dropped_and_costs_no_memory(
    server: Server, make_user: Any, make_token: Any
) -> None:
    await sync_to_async(services.create_dag)("slow", nodes=["a"])
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    sock = non_reader(server, "slow", token)
    before = rss_mb(server.process.pid)
    for i in range(EVENTS):
        await sync_to_async(services.reports("slow").node_state)(
            "a", "running", output={"b": "x" * BLOB, "i": i}
        )
    # The server holds at most LIMIT for this socket, then drops it: reading now
    # finds only what the kernels had buffered, then the end of the connection.
    received = 0
    with pytest.raises((ConnectionResetError, EOFError)):
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            received += len(chunk)
    assert received < EVENTS * BLOB / 4
    assert rss_mb(server.process.pid) - before < 40  # not the 8 MB per such client it held
    assert not any("Traceback" in line for line in server.log)
    sock.close()


async def test_frames_go_past_the_session_wrapper_which_acts_on_http_only() -> None:
    from channels.sessions import SessionMiddleware

    sent: list[Any] = []
    seen: dict[str, Any] = {}

    async def server_send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["send"] = send
        await transport.frame_send(send)({"type": "websocket.send", "text": "x"})

    scope = {"type": "websocket", "cookies": {}, "path": "/"}
    await SessionMiddleware(app)(scope, None, server_send)
    assert seen["send"] is not server_send  # Channels wrapped it ...
    assert transport.frame_send(seen["send"]) is server_send  # ... and frames skip that
    assert sent == [{"type": "websocket.send", "text": "x"}]


def _parse_frames(data: bytes) -> list[str]:
    """Server-to-client WebSocket frames (RFC 6455, unmasked, unfragmented), decoded."""
    texts = []
    while data:
        assert data[0] == 0x81  # FIN, text
        assert not data[1] & 0x80  # a server does not mask
        length, at = data[1] & 0x7F, 2
        if length == 126:
            length, at = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, at = int.from_bytes(data[2:10], "big"), 10
        texts.append(data[at : at + length].decode())
        data = data[at + length :]
    return texts


def test_frames_are_framed_for_the_wire_once_as_text_frames() -> None:
    texts = ["{}", "é" * 100, "x" * 70_000]  # the three length encodings
    frames = transport.Frames(texts)
    wire = frames.wire()
    assert _parse_frames(wire) == texts
    assert frames.wire() is wire  # built once, however many sockets send it


class _Socket:
    """The parts of Twisted's TCP transport the writer reads: a kernel that takes ``room`` bytes."""

    connected, disconnecting, disconnected = True, False, False

    def __init__(self, room: int) -> None:
        self.room = room
        self.kernel = b""
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
        self._tempDataBuffer: list[bytes] = []

    def writeSomeData(self, data: bytes) -> Any:
        if self.room < 0:
            from twisted.internet import main

            return main.CONNECTION_LOST
        taken = data[: self.room]
        self.kernel += taken
        self.room -= len(taken)
        return len(taken)

    def write(self, data: bytes) -> None:  # Twisted buffers what the kernel did not take
        self.dataBuffer += data


class _Protocol:
    """The parts of daphne's WebSocket protocol (autobahn's) the writer uses."""

    STATE_OPEN = 3
    state = STATE_OPEN

    def __init__(self, sock: _Socket) -> None:
        from twisted.internet.defer import Deferred

        self.transport = sock
        self.send_queue: list[Any] = []
        self.through_autobahn: list[bytes] = []
        self.is_closed: Deferred[Any] = Deferred()

    def sendData(self, data: bytes) -> None:
        self.through_autobahn.append(data)


def _writer(protocol: _Protocol) -> Any:
    import functools

    def handle_reply(protocol: Any, message: Any) -> None: ...

    write = transport.wire_writer(functools.partial(handle_reply, protocol))
    assert write is not None
    return write


def test_ready_frames_go_to_the_socket_at_once_and_the_rest_in_order() -> None:
    sock = _Socket(room=4)
    protocol = _Protocol(sock)
    write = _writer(protocol)
    write(transport.Frames(["a", "bcd"]))  # 3 + 5 bytes: the kernel takes 4
    assert sock.kernel + sock.dataBuffer == transport.Frames(["a", "bcd"]).wire()
    write(transport.Frames(["e"]))  # Twisted holds bytes: this waits behind them
    assert protocol.through_autobahn == [transport.Frames(["e"]).wire()]
    assert _parse_frames(sock.kernel + sock.dataBuffer + protocol.through_autobahn[0]) == [
        "a",
        "bcd",
        "e",
    ]


def test_a_lost_or_closed_connection_gets_no_bytes_past_autobahn() -> None:
    from autobahn.exception import Disconnected

    lost = _Protocol(_Socket(room=-1))
    _writer(lost)(transport.Frames(["a"]))  # Twisted learns of the loss on its own write
    assert lost.through_autobahn == [transport.Frames(["a"]).wire()]
    closing = _Protocol(_Socket(room=100))
    closing.state = 4
    with pytest.raises(Disconnected):
        _writer(closing)(transport.Frames(["a"]))
    assert closing.transport.kernel == b"" and not closing.through_autobahn


async def test_other_servers_get_frames_through_send() -> None:
    async def send(message: Any) -> None: ...

    assert transport.wire_writer(send) is None  # not daphne: HubConsumer uses send


class _Twisted27Socket(_Socket):
    """A Twisted that keeps its pending writes some other way: no ``_tempDataLen``."""

    def __getattribute__(self, name: str) -> Any:
        if name == "_tempDataLen":
            raise AttributeError(name)
        return super().__getattribute__(name)


def _handle_reply_partial(protocol: Any, replies: list[Any]) -> Any:
    import functools

    async def handle_reply(protocol: Any, message: Any) -> None:  # daphne's send
        replies.append(message)

    return functools.partial(handle_reply, protocol)


def test_without_twisteds_buffer_frames_go_through_autobahn_in_order_and_say_so(
    monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.setattr(transport, "_verdicts", {})
    protocol = _Protocol(_Twisted27Socket(room=100))
    send = _handle_reply_partial(protocol, [])
    write = transport.wire_writer(send)
    assert write is not None
    for texts in (["a", "bc"], ["d"]):
        write(transport.Frames(texts))
    assert protocol.transport.kernel == b""  # nothing written past autobahn
    assert _parse_frames(b"".join(protocol.through_autobahn)) == ["a", "bc", "d"]
    assert transport.unsent_bytes(send) is None  # it cannot tell
    warnings = [r.getMessage() for r in caplog.records if r.name == "dagstream_app.transport"]
    assert warnings == [
        "dagstream: Twisted's transport has no _tempDataLen of type int; frames go through "
        "autobahn's sendData; a socket that does not read is not bounded"
    ]  # once, for every socket of its kind


async def test_when_the_fast_path_check_fails_frames_go_through_daphnes_send_in_order(
    monkeypatch: Any, caplog: Any, make_user: Any
) -> None:
    """A real consumer on a connection whose parts are not as checked: daphne's send."""
    from channels.layers import get_channel_layer

    from dagstream_app import fanout
    from dagstream_app.consumers import DagJsonConsumer

    monkeypatch.setattr(transport, "_verdicts", {})
    monkeypatch.setattr(transport, "autobahn_problem", lambda connection: "autobahn changed")
    await sync_to_async(services.create_dag)("fallback", nodes=["a"])
    user = await sync_to_async(make_user)("view_dag")
    protocol = _Protocol(_Socket(room=10**6))
    replies: list[Any] = []
    client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await client.put({"type": "websocket.connect"})
    scope = {
        "type": "websocket",
        "path": "/ws/dags/fallback/",
        "query_string": b"",
        "url_route": {"kwargs": {"dag_id": "fallback"}},
        "user": user,
    }
    consumer = asyncio.ensure_future(
        DagJsonConsumer.as_asgi()(scope, client.get, _handle_reply_partial(protocol, replies))
    )

    async def texts(count: int) -> list[str]:
        async with asyncio.timeout(10):
            while len(replies) < count:
                await asyncio.sleep(0.01)
        return [r["text"] for r in replies[1:count]]

    await texts(2)  # accepted, then the snapshot
    for state in ("running", "completed"):
        await sync_to_async(services.reports("fallback").node_state)("a", state)
    frames = [json.loads(text) for text in await texts(4)]
    assert [f["type"] for f in frames] == ["snapshot", "node_state", "node_state"]
    assert [f["seq"] for f in frames[1:]] == [2, 3]
    assert not protocol.through_autobahn and protocol.transport.kernel == b""
    assert any(
        "autobahn changed; frames go through daphne's send" in r.getMessage()
        for r in caplog.records
    )
    await client.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(consumer, 10)
    assert not fanout.hub_for(get_channel_layer()).members


class _Autobahn(_Protocol):
    """sendData as autobahn's: behind what Twisted holds."""

    def sendData(self, data: bytes) -> None:
        self.transport.write(data)


def _socket_of(room: int) -> tuple[_Socket, _Autobahn, Any, Any]:
    sock = _Socket(room)
    protocol = _Autobahn(sock)
    send = _handle_reply_partial(protocol, [])
    return sock, protocol, transport.wire_writer(send), transport.unsent_bytes(send)


def test_a_big_frame_being_read_does_not_count_but_what_waits_behind_it_does() -> None:
    sock, _, write, unsent = _socket_of(room=1_000)
    write(transport.Frames(["s" * 100_000]))  # a snapshot: the kernel takes 1,000 bytes of it
    assert len(sock.dataBuffer) > 99_000 and unsent() == 0
    write(transport.Frames(["e" * 10]))  # an event behind it
    assert unsent() == 12
    sock.offset = len(sock.dataBuffer) - 12  # the client has read the snapshot
    assert unsent() == 12
    write(transport.Frames(["t" * 50_000]))  # a bigger one behind the event: the one in flight
    assert unsent() == 12
    sock.offset = len(sock.dataBuffer)
    assert unsent() == 0


def test_a_client_that_reads_nothing_is_held_to_one_frame_and_the_bound() -> None:
    sock, _, write, unsent = _socket_of(room=0)
    write(transport.Frames(["s" * 100_000]))
    events = transport.Frames(["e" * 1_000] * 50)  # a replay chunk: 50 frames in one write
    write(events)
    assert unsent() == len(sock.dataBuffer) - 100_010  # all but the largest frame
    assert unsent() == len(events.wire()) > 50_000


def test_a_lost_connection_lets_go_of_what_it_held_to_send() -> None:
    sock, protocol, write, unsent = _socket_of(room=0)
    write(transport.Frames(["s" * 100_000]))
    protocol.is_closed.callback(protocol)  # closed, Twisted still sending: kept
    assert len(sock.dataBuffer) > 100_000
    assert protocol.is_closed.result is None  # no longer a cycle through the protocol
    sock, protocol, write, unsent = _socket_of(room=0)
    write(transport.Frames(["s" * 100_000]))
    sock.disconnected = True  # the connection is lost
    protocol.is_closed.callback(protocol)
    assert sock.dataBuffer == b"" and unsent() == 0
