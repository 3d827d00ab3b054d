"""An event storm across two servers on Redis, with clients reconnecting mid-storm.

Every JSON client (plain and ``?batch=1``) gets every event once, in order — or, where
a resume lands further behind than ``MAX_LAG``, a snapshot at exactly the seq it
resumes from (then every event after it). Every dashboard stream's seq markers only
move forward, and its timeline entries never repeat, whichever server a reconnect
lands on.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dagstream_app import services
from tests.servers import REDIS_URL, EngineProcess, Server
from tests.wsclient import TIMEOUT, open_ws, recv_messages

pytestmark = pytest.mark.django_db(transaction=True)

STORM = 6_000
MARKER = re.compile(r'id="ds-seq" data-seq="(\d+)"')
ENTRY = re.compile(r'<li id="ev-(\d+)"')


async def _json_client(
    servers: list[Server],
    token: str,
    dag_id: str,
    last: int,
    batch: bool,
    hops: list[int],
    connected: asyncio.Event,
) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    seqs: list[int] = []
    turn = 0
    query = "batch=1" if batch else ""
    ws = await open_ws(servers[turn], dag_id, token=token, query=query)
    assert (await recv_messages(ws))[0]["seq"] == 1  # the snapshot, before the storm
    connected.set()
    while not seqs or seqs[-1] < last:
        for message in await recv_messages(ws, timeout=60):
            if message["type"] == "snapshot":
                seen.append(("snapshot", message["seq"]))
                seqs.append(message["seq"])
            elif "seq" in message:
                seen.append(("event", message["seq"]))
                seqs.append(message["seq"])
        if hops and seqs and seqs[-1] >= hops[0]:
            hops.pop(0)
            await ws.close()
            turn = 1 - turn
            resume = f"last_seq={seqs[-1]}" + ("&batch=1" if batch else "")
            ws = await open_ws(servers[turn], dag_id, token=token, query=resume)
    await ws.close()
    return seen


def _once_in_order(seen: list[tuple[str, int]], last: int) -> None:
    """Each event once, in order; a snapshot only ever jumps forward from where it resumed."""
    expected = 2
    for kind, seq in seen:
        if kind == "event":
            assert seq == expected, (kind, seq, expected)
        else:
            assert seq >= expected - 1, (kind, seq, expected)
        expected = seq + 1
    assert expected == last + 1


async def _html_client(
    servers: list[Server],
    token: str,
    dag_id: str,
    last: int,
    hops: list[int],
    connected: asyncio.Event,
) -> tuple[list[int], list[int]]:
    markers: list[int] = []
    entries: list[int] = []
    turn = 0
    path = f"/ws/dags/{dag_id}/html/"
    ws = await open_ws(servers[turn], dag_id, token=token, path=path)
    assert MARKER.findall(str(await asyncio.wait_for(ws.recv(), TIMEOUT))) == ["1"]
    connected.set()
    while not markers or markers[-1] < last:
        html = str(await asyncio.wait_for(ws.recv(), 60))
        found = MARKER.findall(html)
        if not found:
            continue  # a keep-alive
        markers.append(int(found[-1]))
        entries.extend(int(seq) for seq in ENTRY.findall(html))
        if hops and markers[-1] >= hops[0]:
            hops.pop(0)
            await ws.close()
            turn = 1 - turn
            query = f"last_seq={markers[-1]}"
            ws = await open_ws(servers[turn], dag_id, token=token, path=path, query=query)
    await ws.close()
    return markers, entries


async def test_a_storm_with_reconnects_loses_and_repeats_nothing(
    redis_servers: list[Server], make_user: Any, make_token: Any
) -> None:
    await sync_to_async(services.create_dag)("storm", nodes=[f"n{i}" for i in range(10)])
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    last = 1 + STORM
    engine = await asyncio.to_thread(EngineProcess, "storm", "storm", STORM, REDIS_URL=REDIS_URL)
    hops = [[1_000, 3_500], [2_000, 4_500], [1_500, 4_000], [500, 5_000]]
    ready = [asyncio.Event() for _ in hops]
    other_first = list(reversed(redis_servers))
    clients = [
        asyncio.ensure_future(
            _json_client(redis_servers, token, "storm", last, False, hops[0], ready[0])
        ),
        asyncio.ensure_future(
            _json_client(redis_servers, token, "storm", last, True, hops[1], ready[1])
        ),
        asyncio.ensure_future(_html_client(redis_servers, token, "storm", last, hops[2], ready[2])),
        asyncio.ensure_future(
            _json_client(other_first, token, "storm", last, True, hops[3], ready[3])
        ),
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), TIMEOUT)
    engine.go()
    results: list[Any] = list(await asyncio.wait_for(asyncio.gather(*clients), 240))
    await asyncio.to_thread(engine.finish)
    for index in (0, 1, 3):
        _once_in_order(results[index], last)
    markers, entries = results[2]
    assert markers == sorted(set(markers)) and markers[-1] == last
    assert len(entries) == len(set(entries)) and max(entries) == last
    assert all(len(hop) < 2 for hop in hops)  # every client reconnected mid-storm
