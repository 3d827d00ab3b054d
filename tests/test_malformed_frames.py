"""Frames that are not WebSocket at all are closed by the server below dagstream.

dagstream answers every bad *message* with an error and keeps the socket open;
a malformed *frame* (text that is not UTF-8, a reserved opcode) never reaches it:
daphne's WebSocket layer (autobahn) fails the connection with the close code
RFC 6455 gives, as docs/protocol.md says. These tests hold that statement true.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dagstream_app import services
from tests.servers import Server
from tests.wsclient import close_code, open_ws, recv

pytestmark = pytest.mark.django_db(transaction=True)


async def _viewer(server: Server, make_user: Any, make_token: Any, dag_id: str) -> Any:
    await sync_to_async(services.create_dag)(dag_id, nodes=["a"])
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    ws = await open_ws(server, dag_id, token=token)
    assert (await recv(ws))["type"] == "snapshot"
    return ws


async def test_text_that_is_not_utf8_closes_with_1007(
    server: Server, make_user: Any, make_token: Any
) -> None:
    ws = await _viewer(server, make_user, make_token, "bad-utf8")
    ws.protocol.send_text(b'{"type": "resume", "last_seq": 0, "x": "\xff\xfe"}')
    ws.send_data()
    assert await close_code(ws) == 1007


async def test_a_reserved_opcode_closes_with_1002(
    server: Server, make_user: Any, make_token: Any
) -> None:
    ws = await _viewer(server, make_user, make_token, "bad-opcode")
    # FIN + opcode 3 (reserved), masked, no payload: no library sends this.
    ws.transport.write(bytes([0x83, 0x80, 1, 2, 3, 4]))
    assert await close_code(ws) == 1002
