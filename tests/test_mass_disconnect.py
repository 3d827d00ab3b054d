"""500 sockets leaving at once keep the DAG's group clean (issue #13, point 7).

A real daphne on a real Redis: 500 clients on one DAG hold ONE member of its group
(the process's hub), with the layer's ``group_expiry`` (300 s) as its TTL, not 24 h.
When all 500 go at once (half close cleanly, half drop their TCP connection), the
group empties, daphne logs no error, and a new client still gets events through it.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from websockets.asyncio.client import ClientConnection

from dagstream_app import broadcast, services
from tests.servers import (
    REDIS_URL,
    EngineProcess,
    Server,
    release_database,
    require_redis,
    start_server,
)
from tests.wsclient import open_ws, recv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

CLIENTS = 500
GROUP_EXPIRY = 300  # the example project's channels-redis group_expiry
PREFIX = f"dagstream-mass-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _raise_fd_limit(wanted: int) -> None:
    """Let this process (and the daphne it starts) hold ``wanted`` descriptors, if allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


@pytest.fixture
def mass_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    """daphne on Redis with a prefix of its own; the database tick slowed to 60 s, so that
    an event reaching a client can only have come through the group."""
    require_redis()
    _raise_fd_limit(4 * CLIENTS + 256)
    with django_db_blocker.unblock():
        srv = start_server(
            REDIS_URL=REDIS_URL,
            DAGSTREAM_REDIS_PREFIX=PREFIX,
            DAGSTREAM_JSON=json.dumps({"IDLE_CHECK_SECONDS": 60}),
        )
    yield srv
    srv.stop()
    release_database(django_db_blocker)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass; whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)  # the polling interval
    return True


async def test_five_hundred_sockets_leaving_at_once_leave_the_group_empty(
    mass_server: Server, make_user: Any, make_token: Any
) -> None:
    dag_id = f"mass-{uuid.uuid4().hex[:6]}"
    await sync_to_async(services.create_dag)(dag_id, nodes=["n0"])  # engine_proc writes n0
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    key = f"{PREFIX}:group:{broadcast.group_name(dag_id)}"
    store = aioredis.Redis.from_url(REDIS_URL)
    handshakes = asyncio.Semaphore(50)  # daphne's listen backlog is 50

    async def viewer() -> ClientConnection:
        async with handshakes:
            ws = await open_ws(mass_server, dag_id, token=token)
            assert (await recv(ws))["type"] == "snapshot"  # subscribed before the snapshot
            return ws

    try:
        sockets = await asyncio.gather(*(viewer() for _ in range(CLIENTS)))
        assert await store.zcard(key) == 1  # one member for the whole process
        ttl = await store.ttl(key)
        assert 0 < ttl <= GROUP_EXPIRY + 5  # group_expiry honoured, not 24 h

        # All at once: half with a closing handshake, half by dropping the connection.
        def drop(ws: ClientConnection) -> Awaitable[None]:
            ws.transport.abort()
            return ws.wait_closed()

        half = CLIENTS // 2
        await asyncio.wait_for(
            asyncio.gather(
                *(ws.close() for ws in sockets[:half]), *(drop(ws) for ws in sockets[half:])
            ),
            20,
        )

        async def empty() -> bool:
            return bool(await store.zcard(key) == 0)

        assert await _until(empty, 10), f"{await store.zcard(key)} members left behind"
        log = "".join(mass_server.log)
        assert "MaxConnectionsError" not in log and "Traceback" not in log, log[-4000:]

        # The group works again: a fresh viewer joins it and gets an event published
        # by an engine in another process (the database tick is too slow to bring it).
        fresh = await open_ws(mass_server, dag_id, token=token)
        assert (await recv(fresh))["seq"] == 1
        assert await store.zcard(key) == 1
        engine = await asyncio.to_thread(
            EngineProcess, "writes", dag_id, 1, REDIS_URL=REDIS_URL, DAGSTREAM_REDIS_PREFIX=PREFIX
        )
        engine.go()
        await asyncio.to_thread(engine.finish, 30)
        event = await recv(fresh, timeout=10)
        assert (event["type"], event["seq"]) == ("node_state", 2)
        await fresh.close()
        assert await _until(empty, 10)
    finally:
        await store.delete(key)
        await store.aclose()
