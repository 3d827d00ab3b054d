"""A Redis restart under a live server: consumers survive and fill from the event log."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async

from dagstream_app import services
from tests.servers import IN_CI, Server, release_database, start_server
from tests.wsclient import open_ws, recv

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of our own on loopback, so the test may stop and start it."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is required in CI")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # until it says it accepts connections
            if b"Ready to accept connections" in line:
                break
        redis.Redis.from_url(self.url).ping()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    instance = PrivateRedis()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def outage_server(private_redis: PrivateRedis, django_db_blocker: Any) -> Iterator[Server]:
    server = start_server(REDIS_URL=private_redis.url)
    yield server
    server.stop()
    release_database(django_db_blocker)


async def test_consumer_survives_a_redis_restart_and_misses_nothing(
    outage_server: Server, private_redis: PrivateRedis, make_user: Any, make_token: Any
) -> None:
    await sync_to_async(services.create_dag)("outage", nodes=["a"])
    token = await sync_to_async(make_token)(await sync_to_async(make_user)("view_dag"))
    ws = await open_ws(outage_server, "outage", token=token)
    assert (await recv(ws))["seq"] == 1
    await sync_to_async(private_redis.stop)()
    # Written while the layer is down (and never published to it).
    for status in ("running", "completed"):
        await sync_to_async(services.reports("outage").node_state)("a", status)
    got = [await recv(ws, timeout=20), await recv(ws, timeout=20)]
    assert [(m["seq"], m["status"]) for m in got] == [(2, "running"), (3, "completed")]
    await sync_to_async(private_redis.start)()
    await sync_to_async(services.reports("outage").node_state)("a", "failed")
    event = await recv(ws, timeout=20)
    assert (event["seq"], event["status"]) == (4, "failed")
    await ws.close()
