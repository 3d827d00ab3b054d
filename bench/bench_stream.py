"""Event storm benchmark: engine → services → Redis → daphne → N WebSocket clients.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_stream.py``). Needs Redis on
127.0.0.1:6379. Uses a throwaway SQLite file and loopback only; bounded in size.

Prints, in one run: engine write rates (one task, then many concurrent tasks whose
deltas share transactions), and the delivery rate to N clients with one JSON message
per frame versus ``?batch=1`` arrays. Compare the ratios, not the absolute numbers:
the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = Path(tempfile.mkdtemp()) / "bench.sqlite3"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.update(
    DATABASE_URL=f"sqlite:///{DB}",
    REDIS_URL=REDIS_URL,
    DJANGO_SETTINGS_MODULE="project.settings",
    DAGSTREAM_REDIS_PREFIX=f"bench{os.getpid()}",
)

import django  # noqa: E402

django.setup()

from channels.db import database_sync_to_async  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from dagstream_app import tokens  # noqa: E402
from dagstream_app.engine import DagStream  # noqa: E402
from tests.servers import start_server  # noqa: E402

EVENTS = int(os.environ.get("BENCH_EVENTS", "3000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
NODES = [f"n{i}" for i in range(50)]


def setup_user() -> str:
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="bench-password")
    user.user_permissions.set(Permission.objects.filter(codename="view_dag"))
    return tokens.create_api_token(user, "bench")[1]


async def write_rates() -> tuple[float, float]:
    stream = await DagStream.create("rates", nodes=NODES)
    count = EVENTS // 2
    start = time.perf_counter()
    for i in range(count):
        await stream.node_state(NODES[i % 50], "running")
    sequential = count / (time.perf_counter() - start)

    async def worker(k: int) -> None:
        for _ in range(count // 50):
            await stream.node_state(NODES[k], "completed")

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(50)))
    concurrent = (count // 50 * 50) / (time.perf_counter() - start)
    await stream.close()
    return sequential, concurrent


async def client(url: str, origin: str, token: str, last: int, ready: asyncio.Future[None]) -> int:
    frames = 0
    async with connect(
        url, origin=origin, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**24
    ) as ws:
        seq = json.loads(await ws.recv())["seq"]  # snapshot
        ready.set_result(None)
        while seq < last:
            data = json.loads(await asyncio.wait_for(ws.recv(), 60))
            frames += 1
            for message in data if isinstance(data, list) else [data]:
                assert message["seq"] == seq + 1, "out of order"
                seq = message["seq"]
    return frames


async def fan_out(port: int, token: str, dag_id: str, batch: bool) -> tuple[float, int]:
    stream = await DagStream.create(dag_id, nodes=NODES)
    last = 1 + EVENTS
    url = f"ws://127.0.0.1:{port}/ws/dags/{dag_id}/" + ("?batch=1" if batch else "")
    loop = asyncio.get_running_loop()
    ready = [loop.create_future() for _ in range(CLIENTS)]
    clients = [
        asyncio.ensure_future(client(url, f"http://127.0.0.1:{port}", token, last, r))
        for r in ready
    ]
    await asyncio.gather(*ready)
    start = time.perf_counter()

    async def worker(k: int) -> None:
        for _ in range(EVENTS // 50):
            await stream.node_state(NODES[k], "running")

    await asyncio.gather(*(worker(k) for k in range(50)))
    frames = await asyncio.wait_for(asyncio.gather(*clients), 300)
    elapsed = time.perf_counter() - start
    await stream.close()
    return EVENTS * CLIENTS / elapsed, sum(frames)


async def main() -> None:
    token = await database_sync_to_async(setup_user)()
    sequential, concurrent = await write_rates()
    print(f"engine writes, one task:        {sequential:8.0f} events/s")
    print(
        f"engine writes, 50 tasks:        {concurrent:8.0f} events/s  "
        f"(x{concurrent / sequential:.1f}: concurrent deltas share transactions)"
    )
    server = await asyncio.to_thread(
        start_server,
        0,
        REDIS_URL=REDIS_URL,
        DAGSTREAM_REDIS_PREFIX=os.environ["DAGSTREAM_REDIS_PREFIX"],
    )
    try:
        plain, plain_frames = await fan_out(server.port, token, "storm-plain", batch=False)
        batched, batch_frames = await fan_out(server.port, token, "storm-batch", batch=True)
    finally:
        server.stop()
    print(
        f"delivery to {CLIENTS} clients, one message per frame: {plain:8.0f} events/s "
        f"({plain_frames} frames)"
    )
    print(
        f"delivery to {CLIENTS} clients, ?batch=1:              {batched:8.0f} events/s "
        f"({batch_frames} frames; x{batched / plain:.2f} throughput, "
        f"{plain_frames / max(batch_frames, 1):.1f}x fewer frames)"
    )
    print(f"every client received all {EVENTS} events once, in order, in both modes")


if __name__ == "__main__":
    asyncio.run(main())
