"""What the LangGraph tests share: a checkpointer for the database in use, the run's
events, and a real WebSocket client that must see every event once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from dagstream_app.models import Event
from tests.servers import Server, database_url
from tests.test_runner import Watch
from tests.wsclient import events_until, open_ws, reply_to, send

TIMEOUT = 30


def events(dag_id: str) -> list[dict[str, Any]]:
    rows = Event.objects.filter(dag_id=dag_id).order_by("seq").values_list("seq", "type", "payload")
    return [{"seq": seq, "type": kind, **payload} for seq, kind, payload in rows]


@pytest.fixture
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """PostgreSQL's saver on a PostgreSQL run (the test database), else the in-memory one."""
    if connection.vendor != "postgresql":
        yield InMemorySaver()
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    url = database_url().replace("postgres://", "postgresql://", 1)
    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        await saver.setup()
        yield saver


@pytest.fixture
async def operator(make_user: Any, make_token: Any) -> tuple[Any, str]:
    """A person who may view, decide and control, and their API token."""

    def made() -> tuple[Any, str]:
        user = make_user("view_dag", "decide_gate", "control_dag")
        return user, make_token(user)

    return await database_sync_to_async(made)()


class Live:
    """A run started in the background, watched in-process and by a WebSocket client."""

    def __init__(self, server: Server, token: str, dag_id: str) -> None:
        self.server, self.token, self.dag_id = server, token, dag_id
        self.watch = Watch(dag_id)
        self.task: asyncio.Task[Any] | None = None
        self.ws: Any = None
        self.got: list[dict[str, Any]] = []  # events read while waiting for replies
        self.commands = 0

    async def start(self, run: Awaitable[Any]) -> Live:
        await self.watch.join()
        self.task = asyncio.ensure_future(run)
        await self.watch.until(lambda evs: len(evs) >= 1)
        self.ws = await open_ws(self.server, self.dag_id, token=self.token, query="last_seq=0")
        return self

    async def until(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return await self.watch.event(kind, **fields)

    async def result(self) -> Any:
        assert self.task is not None
        return await asyncio.wait_for(self.task, TIMEOUT)

    async def command(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a command over the socket; its ack (an error fails the test)."""
        self.commands += 1
        reply, seen = await reply_to_sent(self.ws, {**message, "id": f"c{self.commands}"})
        self.got += seen
        assert reply["type"] == "ack", reply
        return reply

    async def seen(self) -> list[dict[str, Any]]:
        """Every event of the run, as the client saw them; checked against the log."""
        logged = await database_sync_to_async(events)(self.dag_id)
        got = self.got
        if not got or got[-1]["seq"] < logged[-1]["seq"]:
            got += await events_until(self.ws, logged[-1]["seq"])
        await self.ws.close()
        assert [e["seq"] for e in got] == list(range(1, len(logged) + 1))
        assert [(e["type"], e["seq"]) for e in got] == [(e["type"], e["seq"]) for e in logged]
        return logged


async def reply_to_sent(ws: Any, message: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    await send(ws, message)
    return await reply_to(ws, message["id"])
