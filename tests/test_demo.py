"""The demo: its pipeline in-process, its command, and its server as ``make demo`` starts it."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command

from dagstream_app import services
from dagstream_app.models import Dag, Event, Gate
from dagstream_app.runner import HumanGate
from project.demo.pipeline import (
    DEMO_NAME,
    DemoSettings,
    build_pipeline,
    build_runner,
    pick_topic,
    reviewers,
)
from tests.servers import ROOT, Server, child_env
from tests.wsclient import open_ws, recv_messages, reply_to, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("release_engine_connections"),
]

LINE_TIMEOUT = 30.0


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


# ---------------------------------------------------------------- pipeline


async def test_demo_runs_are_repeatable_and_readable() -> None:
    settings = DemoSettings(seed=11, review_timeout=0.0001, budget=None, sleep=_no_wait)
    first = await build_runner("11:1", settings).run("demo-a")
    again = await build_runner("11:1", settings).run("demo-b")

    assert first.status == again.status == "completed"
    assert first.outputs == again.outputs and first.spent == again.spent
    topic = pick_topic("11:1")
    reads = sorted(k for k in first.outputs if k.startswith("read-"))
    assert reads == sorted(f"read-{s.key}" for s in topic.sources)
    draft = first.outputs["merge"]["draft"]
    assert draft.startswith(f"{topic.title}: what the evidence says")
    # The review card's heading names the report: its body does not say it again.
    review = await database_sync_to_async(
        lambda: Gate.objects.get(dag_id="demo-a", node_id="review").presentation
    )()
    assert first.outputs["merge"]["title"] in review["title"]
    assert not review["body"].startswith(first.outputs["merge"]["title"])
    assert review["body"].startswith("Question: ")
    assert all(s.finding in draft for s in topic.sources)
    assert first.results == {"publish": first.outputs["publish"]}
    assert first.results["publish"]["url"].startswith("https://reports.example.org/")
    # Three summarisers, a plan, one read per source and the merge report LLM-like costs.
    costs = await database_sync_to_async(
        lambda: Event.objects.filter(dag_id="demo-a", type="cost_update").count()
    )()
    assert costs == 1 + 3 + 1 + len(topic.sources) + 1
    assert 0.2 < first.spent < 0.5
    other = await build_runner("12:1", settings).run("demo-c")
    assert other.outputs != first.outputs


def test_about_half_the_reviews_wait_for_both_people() -> None:
    # A run's review gate waits for the people reviewers() names, with its quorum: the
    # demo user alone, or both (as the server's run with seed 5, below, has them approve).
    found = {seed: reviewers(f"{seed}:1") for seed in range(1, 41)}
    assert set(found.values()) == {(("demo",), 1), (("demo", "reviewer"), 2)}
    assert found[3] == (("demo",), 1) and found[5] == (("demo", "reviewer"), 2)
    assert 12 <= sum(quorum == 2 for _, quorum in found.values()) <= 28
    settings = DemoSettings(seed=5)
    for seed in (3, 5):
        steps = build_pipeline(f"{seed}:1", settings).steps
        (review,) = [s for s in steps if isinstance(s, HumanGate) and s.id == "review"]
        assert (tuple(review.assignees), review.quorum) == found[seed]


def test_dagstream_demo_command_runs_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "dagstream_demo", "--speed", "1000", "--seed", "4", "--review-timeout", "0.01",
        "--budget", "0",
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert "REDIS_URL is not set" in err
    match = re.search(r"Run (\S+) completed \(spent \$0\.\d\d\)", out)
    assert match, out
    dag = Dag.objects.get(pk=match.group(1))
    assert (dag.name, dag.status) == (DEMO_NAME, "completed")
    assert dag.results is not None and set(dag.results) == {"publish"}


# ------------------------------------------------------------------ server


@dataclass
class DemoServer:
    """``dagstream_demo_server`` as ``make demo`` runs it, from a shell that ignores SIGINT."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *args: str, command: str = "dagstream_demo_server") -> DemoServer:
        argv = [sys.executable, "manage.py", command, "--port", "0", *args]
        process = subprocess.Popen(
            # Like a shell without job control: SIGINT ignored, as exec passes it on.
            ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv],
            cwd=ROOT,
            env=child_env(PYTHONFAULTHANDLER="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = cls(process)
        server.drain.start()
        return server

    def __post_init__(self) -> None:
        self.drain = threading.Thread(target=self._drain, daemon=True)

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.process.stdout.close()

    async def expect(self, pattern: str) -> re.Match[str]:
        """Read output lines until one matches ``pattern`` (bounded by LINE_TIMEOUT)."""
        async with asyncio.timeout(LINE_TIMEOUT):
            while True:
                line = await asyncio.to_thread(self.lines.get)
                self.seen.append(line)
                match = re.search(pattern, line)
                if match:
                    return match

    def exit_code(self) -> int:
        """Wait (bounded) for the process to exit, and for its output to be read."""
        code = self.process.wait(timeout=15)
        self.drain.join(timeout=10)
        return code

    def output(self) -> str:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "\n".join(self.seen)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
async def demo_server() -> AsyncIterator[list[DemoServer]]:
    servers: list[DemoServer] = []
    yield servers
    for server in servers:
        server.stop()


@dataclass
class Ready:
    """What the demo printed once it serves: its server, the two people's passwords, its run."""

    http: Server
    password: str
    reviewer_password: str
    dag_id: str


async def _ready(server: DemoServer) -> Ready:
    url = await server.expect(r"Dashboard: (http://127\.0\.0\.1:(\d+)/dags/)")
    login = await server.expect(r"Log in as: demo / (\S+)")
    reviewer = await server.expect(r"Reviewer:  reviewer / (\S+) ")
    await server.expect(r"Inbox:     http://127\.0\.0\.1:\d+/dags/gates/")
    run = await server.expect(r"Run (\S+) started")
    http = Server(server.process, int(url.group(2)))
    return Ready(http, login.group(1), reviewer.group(1), run.group(1))


def _api_gates(http: Server, token: str) -> list[dict[str, Any]]:
    """The gates the token's person may decide, from the JSON API."""
    request = urllib.request.Request(
        f"{http.http}/api/gates/", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return list(json.load(response)["gates"])


async def _approve(http: Server, dag_id: str, node_id: str, token: str) -> None:
    """Approve ``node_id`` as the token's person, found first in their inbox (the API's
    list), over their own socket."""
    mine = await asyncio.to_thread(_api_gates, http, token)
    assert (dag_id, node_id) in {(g["dag_id"], g["gate"]["node_id"]) for g in mine}
    own = await open_ws(http, dag_id, token=token)
    decision = {"type": "human_decision", "node_id": node_id, "decision": "approve"}
    await send(own, {**decision, "id": node_id})  # a command id is used once per person
    reply, _ = await reply_to(own, node_id)
    await own.close()
    assert reply["type"] == "ack", reply


def _status(url: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_demo_server_serves_a_run_its_people_approve(
    demo_server: list[DemoServer], make_token: Any
) -> None:
    await database_sync_to_async(services.create_dag)(
        "report-left-over", name=DEMO_NAME, nodes=["gather"]
    )
    # Seed 5: the review waits for both people (see test_about_half_the_reviews_...).
    server = DemoServer.start("--speed", "40", "--seed", "5", "--loop", "0")
    demo_server.append(server)
    ready = await _ready(server)
    http, password, dag_id = ready.http, ready.password, ready.dag_id
    people = {
        name: await database_sync_to_async(
            lambda name=name: make_token(User.objects.get(username=name))
        )()
        for name in ("demo", "reviewer")
    }
    reviewer = await database_sync_to_async(authenticate)(
        username="reviewer", password=ready.reviewer_password
    )
    assert reviewer is not None and not reviewer.is_staff

    left_over = await database_sync_to_async(Dag.objects.get)(pk="report-left-over")
    assert left_over.status == "failed"
    demo = await database_sync_to_async(authenticate)(username="demo", password=password)
    assert demo is not None and demo.is_staff
    assert await database_sync_to_async(demo.has_perms)(
        ["dagstream_app.view_dag", "dagstream_app.decide_gate", "dagstream_app.control_dag"]
    )
    assert await asyncio.to_thread(_status, f"{http.http}/dags/") in (200, 302)

    ws = await open_ws(http, dag_id, token=people["demo"])
    snapshot = (await recv_messages(ws))[0]
    assert snapshot["type"] == "snapshot"
    waiting = [g for g in snapshot["dag"]["gates"] if g["status"] == "pending"]
    approved: list[tuple[str, str]] = []
    complete = None
    async with asyncio.timeout(LINE_TIMEOUT):
        while complete is None:
            # Every gate (the review, and a budget gate if this run hits one) approved by
            # the people it waits for.
            for gate in waiting:
                for name in gate.get("assignees") or ["demo"]:
                    await _approve(http, dag_id, gate["node_id"], people[name])
                    approved.append((gate["node_id"], name))
            waiting = []
            for message in await recv_messages(ws):
                if message["type"] == "human_gate_waiting":
                    waiting.append(message)
                elif message["type"] == "execution_complete":
                    complete = message
    await ws.close()

    review = [name for node_id, name in approved if node_id == "review"]
    assert review == ["demo", "reviewer"]
    assert set(complete["results"]) == {"publish"}
    assert complete["results"]["publish"]["title"].endswith("what the evidence says")
    await server.expect(rf"Run {re.escape(dag_id)} completed")

    server.process.send_signal(signal.SIGINT)  # Ctrl-C
    await server.expect(r"^Stopped\.$")
    assert await asyncio.to_thread(server.exit_code) == 0, server.output()


async def test_ctrl_c_stops_the_server_and_fails_the_run_in_flight(
    demo_server: list[DemoServer], make_user: Any, make_token: Any
) -> None:
    token = await database_sync_to_async(make_token)(
        await database_sync_to_async(make_user)("view_dag")
    )
    server = DemoServer.start("--speed", "0.5", "--loop", "0")
    demo_server.append(server)
    ready = await _ready(server)
    http, dag_id = ready.http, ready.dag_id
    ws = await open_ws(http, dag_id, token=token)
    snapshot = (await recv_messages(ws))[0]
    running = any(n["status"] == "running" for n in snapshot["dag"]["nodes"])
    async with asyncio.timeout(LINE_TIMEOUT):
        while not running:
            messages = await recv_messages(ws)
            running = any(m.get("status") == "running" for m in messages)

    server.process.send_signal(signal.SIGINT)  # with the first node running
    await server.expect(r"^Stopped\.$")
    assert await asyncio.to_thread(server.exit_code) == 0, server.output()
    dag = await database_sync_to_async(Dag.objects.get)(pk=dag_id)
    assert dag.status == "failed"
    last = await database_sync_to_async(
        lambda: Event.objects.filter(dag_id=dag_id, type="error").order_by("-seq").first()
    )()
    assert last is not None
    assert last.payload["message"] == "The runner stopped before the run finished."
