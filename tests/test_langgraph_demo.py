"""``make demo-langgraph``: the dashboard and the research agent, served as the Makefile does."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from channels.db import database_sync_to_async

from dagstream_app.models import Dag
from tests.servers import Server
from tests.test_demo import DemoServer
from tests.wsclient import open_ws, recv_messages

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_the_langgraph_demo_serves_a_run_that_reaches_its_review_gate(
    make_user: Any, make_token: Any
) -> None:
    token = await database_sync_to_async(lambda: make_token(make_user("view_dag")))()
    server = DemoServer.start(
        "--speed", "20", "--loop", "600", "--budget", "0", command="dagstream_demo_langgraph"
    )
    try:
        await _reaches_its_review_gate(server, token)
    finally:
        server.stop()


async def _reaches_its_review_gate(server: DemoServer, token: str) -> None:
    url = await server.expect(r"Dashboard: http://127\.0\.0\.1:(\d+)/dags/")
    run = await server.expect(r"Run (langgraph-research-\S+) started")
    live = Server(server.process, int(url.group(1)))
    ws = await open_ws(live, run.group(1), token=token, query="last_seq=0")
    seen: list[dict[str, Any]] = []
    try:
        while not any(e.get("type") == "human_gate_waiting" for e in seen):
            seen += await recv_messages(ws, timeout=60)
    finally:
        await ws.close()
    seqs = [e["seq"] for e in seen if "seq" in e]
    assert seqs == list(range(1, len(seqs) + 1))  # every event once, in order
    added = [
        e["mutation"]["node"]["id"]
        for e in seen
        if e["type"] == "dag_mutated" and e["mutation"]["op"] == "add_node"
    ]
    assert len(added) >= 3 and all(n.startswith("research#") for n in added)  # the Send
    assert any(e["type"] == "cost_update" and e["spent"] > 0 for e in seen)  # fake tokens
    gate = next(e for e in seen if e["type"] == "human_gate_waiting")
    assert (gate["node_id"], gate["presentation"]["title"]) == ("review", "Publish this draft?")
    server.process.send_signal(signal.SIGINT)
    assert server.exit_code() == 0, server.output()
    assert "Stopped." in server.output()
    status = await database_sync_to_async(lambda: Dag.objects.get(pk=run.group(1)).status)()
    assert status == "failed"  # stopped while its gate waited
