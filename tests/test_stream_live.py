"""End to end, scale-out shape: engines in their own processes, two daphne servers
on Redis, real `websockets` clients. Every client gets every event once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dagstream_app import broadcast, services
from dagstream_app.models import Dag, Event
from tests.servers import REDIS_URL, EngineProcess, Server, child_env
from tests.wsclient import open_ws, recv_messages

pytestmark = pytest.mark.django_db(transaction=True)

NODES = [f"n{i}" for i in range(10)]


@pytest.fixture
def engines() -> Iterator[list[EngineProcess]]:
    started: list[EngineProcess] = []
    yield started
    for engine in started:
        if engine.process.poll() is None:
            engine.process.kill()
            engine.process.communicate(timeout=10)


def test_seqs_stay_gap_free_with_concurrent_writer_processes(db: Any, engines: list) -> None:
    services.create_dag("busy", nodes=NODES)
    writers, per_writer = 4, 150
    engines.extend(EngineProcess("writes", "busy", per_writer) for _ in range(writers))
    for engine in engines:
        engine.go()
    for engine in engines:
        engine.finish()
    seqs = list(Event.objects.filter(dag_id="busy").order_by("seq").values_list("seq", flat=True))
    total = 1 + writers * per_writer  # the creation event, then every write
    assert seqs == list(range(1, total + 1))
    assert Dag.objects.get(pk="busy").last_seq == total


async def _watch(
    servers: list[Server],
    token: str,
    dag_id: str,
    last: int,
    connected: asyncio.Future[None],
    reconnect_at: tuple[int, ...] = (),
    batch: bool = False,
) -> list[int]:
    """Collect event seqs up to ``last``; reconnect (to the other server) at the given seqs."""
    seqs: list[int] = []
    plan = list(reconnect_at)
    turn = 0
    query = "batch=1" if batch else ""
    ws = await open_ws(servers[turn], dag_id, token=token, query=query)
    snapshot = (await recv_messages(ws))[0]
    assert (snapshot["type"], snapshot["seq"]) == ("snapshot", 1)
    connected.set_result(None)
    while not seqs or seqs[-1] < last:
        for message in await recv_messages(ws, timeout=60):
            assert message["type"] != "snapshot", "a resume in the window must replay"
            seqs.append(message["seq"])
        if plan and seqs and seqs[-1] >= plan[0]:
            plan.pop(0)
            await ws.close()
            turn = 1 - turn
            resume = f"last_seq={seqs[-1]}" + ("&batch=1" if batch else "")
            ws = await open_ws(servers[turn], dag_id, token=token, query=resume)
    await ws.close()
    return seqs


async def test_three_clients_get_every_event_once_across_reconnects_and_servers(
    redis_servers: list[Server], make_user: Any, make_token: Any, engines: list
) -> None:
    count = 2000
    await sync_to_async(services.create_dag)("live", nodes=NODES)
    user = await sync_to_async(make_user)("view_dag")
    tokens = [await sync_to_async(make_token)(user) for _ in range(3)]
    engine = await asyncio.to_thread(EngineProcess, "stream", "live", count, REDIS_URL=REDIS_URL)
    engines.append(engine)
    last = 1 + count
    other = redis_servers[::-1]
    loop = asyncio.get_running_loop()
    connected = [loop.create_future() for _ in range(3)]
    watchers = [
        asyncio.ensure_future(_watch(redis_servers, tokens[0], "live", last, connected[0])),
        asyncio.ensure_future(
            _watch(redis_servers, tokens[1], "live", last, connected[1], reconnect_at=(400, 1200))
        ),
        asyncio.ensure_future(
            _watch(other, tokens[2], "live", last, connected[2], (700, 1500), batch=True)
        ),
    ]
    await asyncio.wait_for(asyncio.gather(*connected), 30)
    engine.go()
    results = await asyncio.wait_for(asyncio.gather(*watchers), 180)
    await asyncio.to_thread(engine.finish)
    expected = list(range(2, last + 1))
    for seqs in results:
        assert seqs == expected


async def test_dropped_duplicated_and_reordered_layer_messages_are_repaired(
    redis_servers: list[Server], make_user: Any, make_token: Any, engines: list
) -> None:
    count = 300
    await sync_to_async(services.create_dag)("chaotic", nodes=NODES)
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    engine = await asyncio.to_thread(EngineProcess, "chaos", "chaotic", count, REDIS_URL=REDIS_URL)
    engines.append(engine)
    connected = asyncio.get_running_loop().create_future()
    watcher = asyncio.ensure_future(_watch(redis_servers, token, "chaotic", 1 + count, connected))
    await asyncio.wait_for(connected, 30)
    engine.go()
    seqs = await asyncio.wait_for(watcher, 120)
    await asyncio.to_thread(engine.finish)
    assert seqs == list(range(2, count + 2))


async def test_events_the_log_cannot_account_for_are_not_forwarded(
    redis_servers: list[Server], make_user: Any, make_token: Any
) -> None:
    from channels_redis.core import RedisChannelLayer

    await sync_to_async(services.create_dag)("phantom", nodes=NODES)
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    ws = await open_ws(redis_servers[0], "phantom", token=token)
    assert (await recv_messages(ws))[0]["seq"] == 1
    # Another deployment sharing Redis and prefix publishes "its" seq 50 of this id.
    layer = RedisChannelLayer(hosts=[REDIS_URL], prefix=child_env()["DAGSTREAM_REDIS_PREFIX"])
    frame = '{"type":"node_state","dag_id":"phantom","seq":50,"node_id":"n1","status":"failed"}'
    group = broadcast.group_name("phantom")
    await layer.group_send(
        group,
        {
            "type": "dagstream.events",
            "group": group,
            "events": [{"seq": 50, "frame": frame, "terminal": False}],
        },
    )
    await sync_to_async(services.reports("phantom").node_state)("n1", "running")  # the real seq 2
    (event,) = await recv_messages(ws)
    assert (event["seq"], event["status"]) == (2, "running")
    await ws.close()
    await layer.close_pools()
