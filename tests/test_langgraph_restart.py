"""A LangGraph engine process killed while a gate waits, and a new process that picks
the run up from the graph's database checkpointer (SQLite's on the SQLite run,
PostgreSQL's on the PostgreSQL run), with the decision made while no engine ran.

Everything crosses real processes: two engines (tests/langgraph_engine.py), daphne on
Redis, and a WebSocket client that decides the gate and must see every event once, in
order.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from dagstream_app.models import Gate
from tests.langgraph_support import events, operator
from tests.servers import REDIS_URL, ROOT, Server, child_env, database_url
from tests.test_runner import statuses
from tests.wsclient import events_until, open_ws, reply_to, send

__all__ = ["operator"]  # fixtures

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("release_engine_connections"),
]

DAG_ID = "lg-crash"
TIMEOUT = 60


def engine(mode: str, checkpoints: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.langgraph_engine", mode, DAG_ID, checkpoints],
        cwd=ROOT,
        env=child_env(REDIS_URL=REDIS_URL),
        stdout=subprocess.PIPE,
        text=True,
    )


def checkpoints_for(tmp_path: Path) -> str:
    """Where both engine processes keep the graph's checkpoints."""
    if connection.vendor == "postgresql":
        return database_url().replace("postgres://", "postgresql://", 1)
    return str(tmp_path / "checkpoints.sqlite")


def gate_is_open() -> bool:
    return Gate.objects.filter(dag_id=DAG_ID, node_id="review", status="pending").exists()


async def until_gate_opens(process: subprocess.Popen[str]) -> None:
    """Bounded: the engine opens the gate, or exits, or the test fails in TIMEOUT s."""
    deadline = time.monotonic() + TIMEOUT
    while not await database_sync_to_async(gate_is_open)():
        assert process.poll() is None, f"the engine exited with {process.returncode}"
        assert time.monotonic() < deadline, "the engine never opened its gate"
        await asyncio.sleep(0.05)


async def test_a_killed_engine_process_is_picked_up_by_a_new_one(
    redis_servers: list[Server], operator: tuple[Any, str], tmp_path: Path
) -> None:
    user, token = operator
    checkpoints = checkpoints_for(tmp_path)
    first = engine("start", checkpoints)
    try:
        await until_gate_opens(first)
    finally:
        first.kill()  # SIGKILL: nothing in the engine gets to clean up
        first.communicate(timeout=10)

    ws = await open_ws(redis_servers[0], DAG_ID, token=token, query="last_seq=0")
    decision = {"type": "human_decision", "id": "d1", "node_id": "review"}
    await send(ws, {**decision, "decision": "approve", "feedback": "ship it"})
    reply, seen = await reply_to(ws, "d1")
    assert reply["type"] == "ack", reply

    second = engine("resume", checkpoints)
    out, _ = await asyncio.to_thread(second.communicate, timeout=TIMEOUT)
    assert second.returncode == 0
    output = json.loads(out.strip().splitlines()[-1])
    assert output["review"]["review"] == {
        "decision": "approve",
        "feedback": "ship it",
        "decided_by": user.username,
    }
    assert output["published"] is True

    logged = await database_sync_to_async(events)(DAG_ID)
    assert logged[-1]["type"] == "execution_state"
    assert logged[-1]["state"] == "completed"
    got = seen
    if not got or got[-1]["seq"] < logged[-1]["seq"]:
        got += await events_until(ws, logged[-1]["seq"])
    await ws.close()
    assert [e["seq"] for e in got] == list(range(1, len(logged) + 1))
    assert [e["type"] for e in got] == [e["type"] for e in logged]
    assert statuses(logged, "review") == ["running", "waiting", "running", "completed"]
    assert statuses(logged, "publish") == ["running", "completed"]
    assert [e["type"] for e in logged].count("human_gate_waiting") == 1
    assert [e["type"] for e in logged].count("gate_decided") == 1
