"""A thin `websockets` client for the tests: JSON in, JSON out, with timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.servers import Server

TIMEOUT = 15.0


async def open_ws(
    server: Server,
    dag_id: str,
    *,
    token: str | None = None,
    query: str = "",
    origin: str | None = "default",
    path: str | None = None,
) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{server.ws}{path or f'/ws/dags/{dag_id}/'}{'?' + query if query else ''}"
    return await connect(
        url,
        origin=server.http if origin == "default" else origin,  # type: ignore[arg-type]
        additional_headers=headers,
        max_size=2**24,
        open_timeout=TIMEOUT,
    )


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_messages(ws: ClientConnection, timeout: float = TIMEOUT) -> list[Any]:
    """One frame's messages: a batch array flattened, or a single message."""
    data = await recv(ws, timeout)
    return data if isinstance(data, list) else [data]


async def send(ws: ClientConnection, message: Any) -> None:
    await ws.send(json.dumps(message))


async def close_code(ws: ClientConnection, timeout: float = TIMEOUT) -> int | None:
    """Wait for the server to close the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def close_frame(ws: ClientConnection, timeout: float = TIMEOUT) -> tuple[int | None, str]:
    """Wait for the server to close the socket; its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")


async def until_closed(
    ws: ClientConnection, timeout: float = TIMEOUT
) -> tuple[list[Any], int | None]:
    """What the server sends until it closes the socket, and its close code."""
    messages: list[Any] = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as exc:
        return messages, exc.rcvd.code if exc.rcvd else None


async def events_until(ws: ClientConnection, last_seq: int, timeout: float = TIMEOUT) -> list[Any]:
    """Collect event messages (those with a seq) until ``last_seq`` arrives."""
    got: list[Any] = []
    while not got or got[-1]["seq"] < last_seq:
        for message in await recv_messages(ws, timeout):
            if "seq" in message and message["type"] != "snapshot":
                got.append(message)
    return got


async def reply_to(ws: ClientConnection, command_id: Any) -> tuple[dict[str, Any], list[Any]]:
    """Read until the ack / error for ``command_id``; also return the events seen meanwhile."""
    events: list[Any] = []
    while True:
        for message in await recv_messages(ws):
            if message["type"] in ("ack", "error") and message.get("id") == command_id:
                return message, events
            if "seq" in message and message["type"] != "snapshot":
                events.append(message)
