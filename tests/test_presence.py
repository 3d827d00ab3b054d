"""Presence on a run page: who else is looking, who is writing feedback, from the channel
layer only (issue 22 item 5). Real daphne processes, real WebSocket clients; the run page
in Chromium is tests/test_inbox_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from websockets.asyncio.client import ClientConnection

from dagstream_app import services, tokens
from dagstream_app.consumers.presence import GONE_AFTER_SECONDS, HEARTBEAT_SECONDS
from dagstream_app.errors import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from dagstream_app.models import Event
from tests.servers import Server, redis_pair
from tests.wsclient import TIMEOUT, close_code, open_ws

pytestmark = pytest.mark.django_db(transaction=True)


def _token(username: str, *perms: str) -> str:
    user = User.objects.create(username=username)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    return tokens.create_api_token(User.objects.get(pk=user.pk), "tests")[1]


async def _present(server: Server, dag_id: str, token: str) -> ClientConnection:
    return await open_ws(server, dag_id, token=token, path=f"/ws/dags/{dag_id}/presence/")


async def _until(ws: ClientConnection, check: Any, within: float = TIMEOUT) -> dict[str, Any]:
    """Presence messages until one satisfies ``check``; that one."""
    end = time.monotonic() + within
    while True:
        left = end - time.monotonic()
        assert left > 0, "presence did not change in time"
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if check(message):
            return message  # type: ignore[no-any-return]


async def test_presence_refuses_who_may_not_view_the_run(server: Server) -> None:
    await database_sync_to_async(services.create_dag)("pres-1", nodes=["a"])
    outsider = await database_sync_to_async(_token)("outsider")
    viewer = await database_sync_to_async(_token)("viewer", "view_dag")
    anonymous = await open_ws(server, "", path="/ws/dags/pres-1/presence/")
    assert await close_code(anonymous) == CLOSE_UNAUTHENTICATED
    assert await close_code(await _present(server, "pres-1", outsider)) == CLOSE_FORBIDDEN
    assert await close_code(await _present(server, "nope", viewer)) == CLOSE_NOT_FOUND


async def test_who_is_here_and_writing_and_gone_when_they_leave(server: Server) -> None:
    await database_sync_to_async(services.create_dag)("pres-2", nodes=["review"])
    ann = await _present(server, "pres-2", await database_sync_to_async(_token)("ann", "view_dag"))
    ben = await _present(server, "pres-2", await database_sync_to_async(_token)("ben", "view_dag"))
    assert (await _until(ann, lambda m: m["here"] == ["ben"]))["typing"] == {}
    await _until(ben, lambda m: m["here"] == ["ann"])
    await ben.send(json.dumps({"typing": "review"}))
    await _until(ann, lambda m: m["typing"] == {"review": ["ben"]})
    await ben.send(json.dumps({"typing": ""}))
    await _until(ann, lambda m: m["typing"] == {} and m["here"] == ["ben"])
    await ben.send("not json")  # ignored, the socket stays
    await ben.close()
    await _until(ann, lambda m: m["here"] == [])
    await ann.close()
    # Presence writes nothing: the run's log holds only its creation.
    types = await database_sync_to_async(
        lambda: list(Event.objects.filter(dag_id="pres-2").values_list("type", flat=True))
    )()
    assert types == ["execution_state"]


@pytest.fixture(scope="module")
def doomed_servers(django_db_setup: Any, django_db_blocker: Any) -> Iterator[list[Server]]:
    """Two daphne processes of its own on Redis: the test kills one."""
    with redis_pair(django_db_blocker) as servers:
        yield servers


@pytest.mark.redis
async def test_a_viewer_on_a_server_that_died_is_gone_within_seconds(
    doomed_servers: list[Server],
) -> None:
    first, doomed = doomed_servers
    await database_sync_to_async(services.create_dag)("pres-3", nodes=["review"])
    keys = [await database_sync_to_async(_token)(name, "view_dag") for name in ("cat", "dan")]
    cat = await _present(first, "pres-3", keys[0])
    dan = await _present(doomed, "pres-3", keys[1])  # across processes, on Redis
    await _until(cat, lambda m: m["here"] == ["dan"])
    await dan.send(json.dumps({"typing": "review"}))
    await _until(cat, lambda m: m["typing"] == {"review": ["dan"]})
    os.kill(doomed.process.pid, signal.SIGKILL)  # says nothing as it goes
    began = time.monotonic()
    await _until(cat, lambda m: m["here"] == [], within=GONE_AFTER_SECONDS + 3 * HEARTBEAT_SECONDS)
    assert time.monotonic() - began <= GONE_AFTER_SECONDS + 2 * HEARTBEAT_SECONDS
    await cat.close()
