"""``make demo-celery``: the server, a real worker and the demo canvas, from one command."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from tests.servers import REDIS_URL, ROOT, Server, child_env, release_database, require_redis
from tests.wsclient import open_ws, recv_messages

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def _first_completed_task(server: Server, token: str, dag_id: str) -> dict[str, Any]:
    ws = await open_ws(server, dag_id, token=token, query="last_seq=0")
    try:
        while True:
            for event in await recv_messages(ws, timeout=60):
                if event["type"] == "node_state" and event["status"] == "completed":
                    return event
    finally:
        await ws.close()


def test_the_celery_demo_serves_works_and_stops_with_its_children(
    django_db_blocker: Any, make_user: Any, make_token: Any
) -> None:
    require_redis()
    token = make_token(make_user("view_dag"))
    prefix = f"dagstream-demo-test-{os.getpid()}:"
    with django_db_blocker.unblock():
        process = subprocess.Popen(
            [sys.executable, "manage.py", "dagstream_demo_celery", "--port", "0", "--loop", "600"],
            cwd=ROOT,
            env=child_env(REDIS_URL=REDIS_URL, DAGSTREAM_DEMO_CELERY_PREFIX=prefix),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    bound = threading.Timer(120, process.kill)  # a hung demo fails the test, not CI
    bound.start()
    try:
        assert process.stdout is not None
        seen: dict[str, str] = {}
        banner = ""
        for line in process.stdout:
            banner += line
            for key, pattern in (
                ("port", r"Dashboard: http://127\.0\.0\.1:(\d+)/"),
                ("run", r"Launched (celery-\S+)"),
            ):
                match = re.search(pattern, line)
                if match:
                    seen[key] = match.group(1)
            if len(seen) == 2:
                break
        server = Server(process, int(seen["port"]))
        event = asyncio.run(_first_completed_task(server, token, seen["run"]))
        assert event["metrics"]["worker"].startswith("dagstream-demo-")
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()  # EOF: the server and the worker have exited too
        assert process.wait(timeout=30) == 0, rest
        assert "Stopping." in rest
        # Ctrl-C lets the worker's running tasks finish: no pool process is lost.
        assert "WorkerLostError" not in rest and "exited prematurely" not in rest, rest
        output = banner + rest
        assert "Engine:    a Celery worker (prefork, 2 processes) runs the tasks" in output
        assert "none in this process" not in output
    finally:
        bound.cancel()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        release_database(django_db_blocker)
