"""Every ```python block of docs/*.md, as written: run, applied to a fresh project, or
declared (with the reason) as one that cannot run here.

- **Run**: complete programs run against the test database and a real daphne
  (tests/servers.py); fragments run in a harness that gives them the names they
  assume (an open ``stream`` on a fresh DAG, a ``ws`` ...), with top-level ``await``
  as inside an async engine, and the test checks what the block promises.
- **Applied**: settings, ``asgi.py`` and the like go into a fresh ``startproject``
  (tests/freshproject.py) that then passes ``manage.py check --fail-level WARNING``.
- **Declared**: ``DECLARED`` below, block by block, says why not.

A block is known by its doc and its first line (``"engine.md:# engine.py"``): a new
block that is none of the three, or a listed one that is gone, fails
``test_every_block_is_run_applied_or_declared``.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import typing
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import redis
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group, Permission, User
from websockets.sync.client import connect

from dagstream_app import permissions, services, tokens
from dagstream_app.engine import DagStream, GateDecision, SyncDagStream, Vote
from dagstream_app.models import Dag, Event, Gate, Node
from project.demo.workers import worker_command
from tests.celery_worker import Worker
from tests.freshproject import DEADLINE, PROJECT, adopt, apply, env, manage, start_project
from tests.servers import REDIS_URL, ROOT, Server, child_env, require_redis
from tests.wsclient import events_until, open_ws, reply_to

T = TypeVar("T")
pytestmark = pytest.mark.timeout(120)  # each test; the file takes well under a minute

DOCS = sorted((ROOT / "docs").glob("*.md"))
# A fenced block as CommonMark reads it: the closing fence is alone on its line.
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M
)
TOP_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass(frozen=True)
class Block:
    doc: str  # "engine.md"
    line: int  # of the opening fence
    lang: str
    code: str  # dedented

    @property
    def key(self) -> str:
        return f"{self.doc}:{self.code.splitlines()[0]}"

    @property
    def where(self) -> str:
        return f"docs/{self.doc}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        code = textwrap.dedent(match["body"])
        line = text[: match.start()].count("\n") + 1
        assert not re.search(r"^ *```", code, re.M), (
            f"docs/{doc.name}:{line}: a fence inside a block: one is not closed on a line "
            "of its own"
        )
        blocks.append(Block(doc.name, line, match["lang"], code))
    return blocks


def python_blocks() -> list[Block]:
    return [b for doc in DOCS for b in fenced_blocks(doc) if b.lang == "python"]


BLOCKS = {b.key: b for b in python_blocks()}


def block(key: str) -> Block:
    assert key in BLOCKS, f"no ```python block {key!r} in docs/ (its first line changed?)"
    return BLOCKS[key]


# ------------------------------------------------------------------ every block


def test_blocks_are_told_apart_by_their_doc_and_first_line() -> None:
    twice = [k for k, n in Counter(b.key for b in python_blocks()).items() if n > 1]
    assert not twice, f"blocks that start alike (make their first lines differ): {twice}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_python_block_in_the_docs_compiles_and_its_imports_exist(doc: Path) -> None:
    """Each block is Python as written (``await`` as inside an async engine), and what it
    imports from dagstream (and Django, Channels) exists under that name."""
    for b in fenced_blocks(doc):
        if b.lang != "python":
            continue
        tree = compile(b.code, b.where, "exec", ast.PyCF_ONLY_AST | TOP_AWAIT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in ("dagstream_app", "django", "channels"):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert (
                        alias.name == "*"
                        or hasattr(module, alias.name)
                        or _submodule(node.module, alias.name)
                    ), f"{b.where}: {node.module} has no {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ("dagstream_app", "django", "channels"):
                        importlib.import_module(alias.name)


def _submodule(package: str, name: str) -> bool:
    try:
        importlib.import_module(f"{package}.{name}")
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ the harness

# Which test runs or applies each block (filled as the tests below are defined).
COVERED: dict[str, str] = {}


def runs(*keys: str) -> Callable[[T], T]:
    """Mark a test as the one that runs (or applies) these blocks."""

    def mark(test: T) -> T:
        for key in keys:
            assert key not in COVERED, f"{key} is run by {COVERED[key]} already"
            COVERED[key] = test.__name__  # type: ignore[attr-defined]
        return test

    return mark


def _compiled(key: str) -> Any:
    b = block(key)
    # dont_inherit: the block compiles as a file of its own would, without this
    # module's `from __future__ import annotations`.
    return compile(b.code, b.where, "exec", TOP_AWAIT, dont_inherit=True)


async def run_async(key: str, **names: Any) -> dict[str, Any]:
    """Run a block as inside an async engine (top-level ``await``), with ``names`` in
    scope; its namespace afterwards."""
    namespace: dict[str, Any] = {"__name__": "docs_snippet", **names}
    done = eval(_compiled(key), namespace)  # the docs' own code, as written
    if inspect.isawaitable(done):
        await done
    return namespace


def run_sync(key: str, **names: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_snippet", **names}
    exec(_compiled(key), namespace)  # the docs' own code, as written
    return namespace


def write_program(key: str, path: Path, replace: dict[str, str] | None = None) -> Path:
    """A complete program from the docs, as a file (``replace``: the placeholders the
    doc's reader fills in, such as a token)."""
    code = block(key).code
    for old, new in (replace or {}).items():
        assert old in code, f"{block(key).where} no longer says {old!r}"
        code = code.replace(old, new)
    path.write_text(code)
    return path


@dataclass(frozen=True)
class Person:
    """Somebody with every dagstream permission and an API token, at a real daphne."""

    username: str
    token: str
    server: Server

    def _snapshot(self, dag_id: str) -> dict[str, Any] | None:
        request = urllib.request.Request(
            f"{self.server.http}/api/dags/{dag_id}/",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE) as response:
                snapshot: dict[str, Any] = json.load(response)
                return snapshot
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None  # not created yet
            raise

    def wait_for(self, what: str, dag_id: str, check: Callable[[dict[str, Any]], bool]) -> None:
        """Poll the run's snapshot (the read API) until ``check`` holds."""
        end = time.monotonic() + DEADLINE
        while not ((snap := self._snapshot(dag_id)) is not None and check(snap)):
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what} of {dag_id}")
            time.sleep(0.05)  # polling another process's outcome, bounded by DEADLINE

    def wait_for_gate(self, dag_id: str, node_id: str) -> None:
        self.wait_for(
            f"the gate at {node_id}",
            dag_id,
            lambda snap: any(
                g["node_id"] == node_id and g["status"] == "pending" for g in snap["gates"]
            ),
        )

    def send(self, dag_id: str, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Send commands over the run's socket, as the dashboard's person; their replies."""
        replies: list[dict[str, Any]] = []
        with connect(
            f"{self.server.ws}/ws/dags/{dag_id}/",
            origin=self.server.http,  # type: ignore[arg-type]
            additional_headers={"Authorization": f"Bearer {self.token}"},
            open_timeout=DEADLINE,
        ) as ws:
            for n, command in enumerate(commands):
                ws.send(json.dumps({**command, "id": f"person-{n}"}))
                while not replies or replies[-1].get("id") != f"person-{n}":
                    data = json.loads(ws.recv(timeout=DEADLINE))
                    for message in data if isinstance(data, list) else [data]:
                        if message["type"] in ("ack", "error") and "id" in message:
                            replies.append(message)
        assert [r["type"] for r in replies] == ["ack"] * len(commands), replies
        return replies

    def decide(self, dag_id: str, node_id: str, decision: str = "approve", **more: str) -> None:
        """Wait until the gate is open, then decide it over the socket."""
        self.wait_for_gate(dag_id, node_id)
        self.send(
            dag_id, {"type": "human_decision", "node_id": node_id, "decision": decision, **more}
        )

    def control(self, dag_id: str, *actions: str) -> None:
        self.wait_for("the run", dag_id, lambda snap: True)
        self.send(dag_id, *({"type": f"{action}_execution"} for action in actions))


def _user(username: str, *perms: str) -> User:
    """A user with dagstream permissions (no password: the tests use tokens)."""
    user = User.objects.create(username=username)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def person(transactional_db: Any, server: Server) -> Person:
    user = _user("ada", "view_dag", "decide_gate", "control_dag")
    return Person(user.username, tokens.create_api_token(user, "docs")[1], server)


def dag_row(dag_id: str) -> Dag:
    return Dag.objects.get(dag_id=dag_id)


def event_types(dag_id: str) -> list[str]:
    return list(Event.objects.filter(dag_id=dag_id).order_by("seq").values_list("type", flat=True))


async def _in_db(func: Callable[..., T], *args: Any) -> T:
    return await database_sync_to_async(func)(*args)  # type: ignore[no-any-return]


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, DEADLINE)


# ------------------------------------------------------------------ engine.md


@runs("engine.md:from dagstream_app.engine import DagStream")
@pytest.mark.django_db(transaction=True)
async def test_engine_the_opening_example_runs_to_its_gate_and_completes(person: Person) -> None:
    engine = asyncio.ensure_future(
        run_async("engine.md:from dagstream_app.engine import DagStream")
    )
    await asyncio.to_thread(person.decide, "etl-42", "load", "approve")
    names = await within(engine)
    assert names["decision"].decided_by == "ada"
    dag = await _in_db(dag_row, "etl-42")
    assert (dag.status, dag.results, dag.spent, dag.budget) == (
        "completed",
        {"rows": 1200},
        1.25,
        5.0,
    )
    assert await _in_db(event_types, "etl-42") == [
        "execution_state",
        "node_state",
        "node_state",
        "edge_active",
        "dag_mutated",
        "cost_update",
        "node_state",  # load: waiting
        "human_gate_waiting",
        "gate_decided",
        "execution_complete",
        "execution_state",
    ]


@runs('engine.md:stream.nowait.node_state("extract", "running")')
@pytest.mark.django_db(transaction=True)
async def test_engine_nowait_reports_are_durable_after_flush() -> None:
    stream = await DagStream.create(
        "nowait-doc", nodes=["extract", "transform"], edges=[("extract", "transform")]
    )
    await run_async('engine.md:stream.nowait.node_state("extract", "running")', stream=stream)
    # No await between the reports and flush(): all of them are written by now.
    assert await _in_db(event_types, "nowait-doc") == [
        "execution_state",
        "node_state",
        "edge_active",
        "cost_update",
        "error",
        "dag_mutated",
    ]
    await stream.close()


@runs("langgraph.md:from langgraph.checkpoint.memory import InMemorySaver")
async def test_langgraph_the_one_call_runs_to_its_gate_and_completes(person: Person) -> None:
    engine = asyncio.ensure_future(
        run_async("langgraph.md:from langgraph.checkpoint.memory import InMemorySaver")
    )
    await asyncio.to_thread(person.decide, "notes-1", "review", "approve")
    names = await within(engine)
    assert names["dag_id"] == "notes-1"
    assert names["output"]["approved"] is True
    assert names["output"]["feedback"] is None
    assert (await _in_db(dag_row, "notes-1")).status == "completed"


@runs("engine.md:@dataclass(frozen=True)")
def test_engine_the_gate_decision_excerpt_is_the_real_class() -> None:
    names = run_sync(
        "engine.md:@dataclass(frozen=True)",
        dataclass=dataclass,
        Literal=Literal,
        datetime=datetime,
        Vote=Vote,
    )
    excerpt = names["GateDecision"]
    assert typing.get_type_hints(excerpt) == typing.get_type_hints(GateDecision)
    assert [f.name for f in dataclasses.fields(excerpt)] == [
        f.name for f in dataclasses.fields(GateDecision)
    ]
    assert excerpt.__dataclass_params__.frozen and GateDecision.__dataclass_params__.frozen  # type: ignore[attr-defined]


class Scheduler:
    """What engine.md's ``obey`` drives: it records what it was told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def stop(self) -> None:
        self.calls.append("stop")


@runs("engine.md:async def obey(stream: DagStream) -> None:")
@pytest.mark.django_db(transaction=True)
async def test_engine_obey_follows_pause_resume_and_cancel(person: Person) -> None:
    scheduler = Scheduler()
    names = await run_async(
        "engine.md:async def obey(stream: DagStream) -> None:",
        DagStream=DagStream,
        scheduler=scheduler,
    )
    stream = await DagStream.create("obey-doc", nodes=["a"])
    obeying = asyncio.ensure_future(names["obey"](stream))
    await asyncio.to_thread(person.control, "obey-doc", "pause", "resume", "cancel")
    await within(obeying)  # commands() ended with the run
    assert scheduler.calls == ["pause", "resume", "stop"]
    assert (await _in_db(dag_row, "obey-doc")).status == "cancelled"
    await stream.close()


@runs("engine.md:from dagstream_app.engine import SyncDagStream")
@pytest.mark.django_db(transaction=True)
def test_engine_the_sync_example_runs_in_a_script(person: Person) -> None:
    deciding = threading.Thread(target=person.decide, args=("etl-43", "b", "approve"))
    deciding.start()
    try:
        names = run_sync("engine.md:from dagstream_app.engine import SyncDagStream")
    finally:
        deciding.join(timeout=DEADLINE)
    assert names["decision"].decided_by == "ada"
    dag = dag_row("etl-43")
    assert (dag.status, dag.results) == ("completed", {"ok": True})


@runs("engine.md:from dagstream_app.services import Conflict, InvalidDelta")
def test_engine_the_errors_import_names_the_refusals() -> None:
    names = run_sync("engine.md:from dagstream_app.services import Conflict, InvalidDelta")
    assert issubclass(names["InvalidDelta"], ValueError)
    assert issubclass(names["Conflict"], services.DagstreamError)


@runs("engine.md:# engine.py")
@pytest.mark.django_db(transaction=True)
async def test_engine_the_separate_process_script_reports_to_the_server(
    person: Person, tmp_path: Path
) -> None:
    script = write_program("engine.md:# engine.py", tmp_path / "engine.py")
    engine = await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=tmp_path, env=child_env(), stderr=asyncio.subprocess.PIPE
    )
    _, err = await within(engine.communicate())
    assert engine.returncode == 0, err.decode()
    # What it reported, replayed by the server to a client that starts from the beginning.
    ws = await open_ws(person.server, "etl-44", token=person.token, query="last_seq=0")
    try:
        events = await events_until(ws, 2)
    finally:
        await ws.close()
    assert [(e["type"], e.get("state") or e.get("status")) for e in events] == [
        ("execution_state", "running"),
        ("node_state", "running"),
    ]


# ------------------------------------------------------------------ gates.md


@runs("gates.md:decision = await stream.gate(")
@pytest.mark.django_db(transaction=True)
async def test_gates_a_gate_with_a_timeout_returns_the_persons_decision(person: Person) -> None:
    stream = await DagStream.create("release-6", nodes=["review"])
    waiting = asyncio.ensure_future(
        run_async("gates.md:decision = await stream.gate(", stream=stream)
    )
    await asyncio.to_thread(person.decide, "release-6", "review", "approve")
    names = await within(waiting)
    assert (names["decision"].decision, names["decision"].decided_by) == ("approve", "ada")
    gate = await _in_db(lambda: Gate.objects.get(dag_id="release-6", node_id="review"))
    assert gate.default_decision == "reject"
    assert (
        gate.timeout_at is not None
        and 3500 < (gate.timeout_at - gate.created_at).total_seconds() <= 3600
    )
    await stream.close()


@runs("gates.md:release = await stream.gate(")
@pytest.mark.django_db(transaction=True)
async def test_gates_a_quorum_gate_returns_one_decision_with_every_vote(person: Person) -> None:
    stream = await DagStream.create("release-42", nodes=["ship"])
    waiting = asyncio.ensure_future(
        run_async("gates.md:release = await stream.gate(", stream=stream, print=print)
    )
    await asyncio.to_thread(person.decide, "release-42", "ship", "approve")

    def manager_votes() -> None:
        bob = _user("bob", "view_dag", "decide_gate")
        bob.groups.add(Group.objects.create(name="release-managers"))
        services.decide_gate("release-42", "ship", "modify", feedback="after 18:00", actor=bob)

    await _in_db(manager_votes)
    names = await within(waiting)
    decision = names["release"]
    assert (decision.decision, decision.feedback, decision.decided_by) == (
        "modify",
        "after 18:00",
        "ada, bob",
    )
    assert [(v.voter, v.decision) for v in decision.votes] == [
        ("ada", "approve"),
        ("bob", "modify"),
    ]
    await stream.close()


@runs('gates.md:stream = await DagStream.open("release-7")')
@pytest.mark.django_db(transaction=True)
async def test_gates_a_restarted_engine_gets_the_decision_made_meanwhile(person: Person) -> None:
    first = await DagStream.create("release-7", nodes=["review"])
    asking = asyncio.ensure_future(first.gate("review", {"title": "Deploy release 7?"}))
    await asyncio.to_thread(person.wait_for_gate, "release-7", "review")
    asking.cancel()  # the engine goes away ...
    await first.close()
    await asyncio.to_thread(person.decide, "release-7", "review", "reject", feedback="not today")
    # ... and comes back.
    names = await within(
        run_async('gates.md:stream = await DagStream.open("release-7")', DagStream=DagStream)
    )
    decision = names["decision"]
    assert (decision.decision, decision.feedback, decision.decided_by) == (
        "reject",
        "not today",
        "ada",
    )
    await names["stream"].close()


@runs("gates.md:async for command in stream.commands():  # ends when the run ends")
@pytest.mark.django_db(transaction=True)
async def test_gates_the_command_loop_confirms_a_cancel_and_ends(person: Person) -> None:
    stream = await DagStream.create("control-doc", nodes=["a"])
    looping = asyncio.ensure_future(
        run_async(
            "gates.md:async for command in stream.commands():  # ends when the run ends",
            stream=stream,
        )
    )
    await asyncio.to_thread(person.control, "control-doc", "pause", "resume", "cancel")
    await within(looping)
    assert (await _in_db(dag_row, "control-doc")).status == "cancelled"
    assert (await _in_db(event_types, "control-doc"))[-4:] == ["execution_state"] * 4
    await stream.close()


@runs('gates.md:review = asyncio.create_task(stream.gate("review", presentation))')
@pytest.mark.django_db(transaction=True)
async def test_gates_a_cancel_ends_the_run_while_its_gate_waits(person: Person) -> None:
    stream = await DagStream.create("cancel-doc", nodes=["review"])
    running = asyncio.ensure_future(
        run_async(
            'gates.md:review = asyncio.create_task(stream.gate("review", presentation))',
            asyncio=asyncio,
            stream=stream,
            presentation={"title": "Deploy?"},
        )
    )
    await asyncio.to_thread(person.wait_for_gate, "cancel-doc", "review")
    await asyncio.to_thread(person.control, "cancel-doc", "cancel")
    names = await within(running)
    with pytest.raises(asyncio.CancelledError):
        await names["review"]
    assert (await _in_db(dag_row, "cancel-doc")).status == "cancelled"
    gate = await _in_db(lambda: Gate.objects.get(dag_id="cancel-doc"))
    assert gate.status == "closed"  # the run ended: its gate closed, undecided
    await stream.close()


# ------------------------------------------------------------------ runner.md


@runs("runner.md:import asyncio")
@pytest.mark.django_db(transaction=True)
async def test_runner_the_first_pipeline_prints_what_it_promises(person: Person) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        running = asyncio.ensure_future(run_async("runner.md:import asyncio"))
        await asyncio.to_thread(person.decide, "etl-42", "review", "approve")
        names = await within(running)
    assert out.getvalue() == "completed {'load': 'loaded 200'}\n"  # as its comment says
    assert names["result"].spent == pytest.approx(0.02)
    nodes = await _in_db(
        lambda: dict(Node.objects.filter(dag_id="etl-42").values_list("node_id", "metrics"))
    )
    assert nodes["extract"]["rows"] == 2


@runs("runner.md:async def plan(ctx: Context) -> list[str]:")
@pytest.mark.django_db(transaction=True)
async def test_runner_the_fan_out_adds_a_node_per_source_before_the_merge() -> None:
    from dagstream_app.runner import Context, Pipeline, Runner, Task

    def read(ctx: Context) -> str:
        return f"read {ctx.node_id}"

    def merge(ctx: Context) -> list[str]:
        return sorted(ctx.inputs)

    names = await run_async(
        "runner.md:async def plan(ctx: Context) -> list[str]:",
        Context=Context,
        Task=Task,
        read=read,
    )
    pipeline = Pipeline(
        "fan-out",
        [
            Task("gather", lambda ctx: {"sources": ["a", "b", "c"]}),
            Task("plan", names["plan"], after=["gather"]),
            Task("merge", merge, after=["plan"]),
        ],
    )
    result = await within(Runner(pipeline).run("fan-out-doc"))
    assert result.status == "completed"
    assert result.results == {"merge": ["plan", "read-a", "read-b", "read-c"]}
    assert result.outputs["read-b"] == "read read-b"


# ------------------------------------------------------------------ protocol.md, http-api.md


@runs("protocol.md:import asyncio")
@pytest.mark.django_db(transaction=True)
async def test_protocol_the_reconnecting_client_watches_a_run_to_its_end(
    person: Person, tmp_path: Path
) -> None:
    stream = await DagStream.create(
        "etl-42", nodes=["extract", "load"], edges=[("extract", "load")]
    )
    server = person.server
    program = write_program(
        "protocol.md:import asyncio",
        tmp_path / "watch.py",
        replace={
            '"ws://127.0.0.1:8000"': repr(server.ws),
            '"http://127.0.0.1:8000"': repr(server.http),
            '"dgs_..."': repr(person.token),
        },
    )
    client = await asyncio.create_subprocess_exec(
        sys.executable, str(program), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert client.stdout is not None
        first = await within(client.stdout.readline())
        assert first == b"state: running\n"  # its snapshot: the client is connected
        await stream.node_state("extract", "running")
        await stream.node_state("extract", "completed")
        await stream.edge_active("extract", "load")
        await stream.complete({"rows": 1})
        out, err = await within(client.communicate())
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
    assert client.returncode == 0, err.decode()
    printed = [line.split(" ", 2)[:2] for line in out.decode().splitlines()]
    assert printed == [
        ["2", "node_state"],
        ["3", "node_state"],
        ["4", "edge_active"],
        ["5", "execution_complete"],
        ["6", "execution_state"],
    ]
    await stream.close()


@runs("protocol.md:await ws.send(")
@pytest.mark.django_db(transaction=True)
async def test_protocol_a_decision_sent_on_an_open_connection_is_acked_and_applied(
    person: Person,
) -> None:
    stream = await DagStream.create("decide-doc", nodes=["load"])
    asking = asyncio.ensure_future(stream.gate("load", {"title": "Load?"}))
    await asyncio.to_thread(person.wait_for_gate, "decide-doc", "load")
    ws = await open_ws(person.server, "decide-doc", token=person.token)
    try:
        await run_async("protocol.md:await ws.send(", ws=ws, json=json)
        reply, _ = await reply_to(ws, "c-1")
    finally:
        await ws.close()
    assert reply["type"] == "ack"
    decision = await within(asking)
    assert (decision.decision, decision.decided_by) == ("approve", "ada")
    await stream.close()


@runs("http-api.md:import json")
@pytest.mark.django_db(transaction=True)
def test_http_api_all_events_reads_the_whole_log_page_by_page(person: Person) -> None:
    stream = SyncDagStream.create("long-log", nodes=["a"])
    for n in range(1499):  # with the first one, 1,500 events: two pages of 1,000
        stream.nowait.node_state("a", "running", metrics={"n": n})
    stream.close()
    names = run_sync("http-api.md:import json")
    events = names["all_events"](person.server.http, "long-log", person.token)
    assert [e["seq"] for e in events] == list(range(1, 1501))
    assert events[-1]["metrics"] == {"n": 1498}


# ------------------------------------------------------------------ client.md


@runs("client.md:import json")
@pytest.mark.django_db(transaction=True)
def test_client_the_ticket_view_gets_a_ticket_that_opens_the_stream(
    person: Person, rf: Any
) -> None:
    SyncDagStream.create("etl-42", nodes=["a"]).close()
    names = run_sync("client.md:import json")
    # What the doc's reader fills in: their dagstream server's address, and its token.
    names["DAGSTREAM"], names["DAGSTREAM_TOKEN"] = person.server.http, person.token
    request = rf.post("/api/dagstream-ticket/?dag=etl-42")
    request.user = User.objects.get(username="ada")  # signed in to the app's own site
    response = names["dagstream_ticket"](request)
    assert response.status_code == 200
    ticket = json.loads(response.content)
    assert ticket["ticket"].startswith("dgt_") and ticket["expires_in"] == 30
    with connect(
        f"{person.server.ws}/ws/dags/etl-42/?ticket={ticket['ticket']}",
        origin=person.server.http,  # type: ignore[arg-type]
        open_timeout=DEADLINE,
    ) as ws:
        assert json.loads(ws.recv(timeout=DEADLINE))["type"] == "snapshot"


@runs("gates.md:import hashlib")
def test_gates_the_webhook_check_accepts_dagstream_signatures_only() -> None:
    from dagstream_app.notify.webhooks import signature

    verify = run_sync("gates.md:import hashlib")["verify"]
    secret, body = "a-secret-of-16-chars", b'{"text": "Decision needed"}'
    assert verify(body, signature(body, secret), secret)  # what send_webhook puts in its header
    assert not verify(body + b" ", signature(body, secret), secret)
    assert not verify(body, signature(body, secret), "another-secret-16-chars")


# ------------------------------------------------------------------ applied to a fresh project


@dataclass(frozen=True)
class Edit:
    """One doc block (or the part of it under a ``# path`` comment) put into a project."""

    key: str  # "doc.md:first line"; any fenced block, not only python ones
    path: str  # in the fresh project
    how: str = "add at the end"  # or "replace the file", "new file"
    section: str | None = None  # the block's lines from this comment to the next one
    before: str = ""  # what the block assumes is defined above it

    def code(self) -> str:
        doc, first = self.key.split(":", 1)
        found = [b for b in fenced_blocks(ROOT / "docs" / doc) if b.code.splitlines()[0] == first]
        assert len(found) == 1, f"no one block {self.key!r} in docs/{doc}"
        code = found[0].code
        if self.section is not None:
            lines = code.splitlines(keepends=True)
            start = lines.index(self.section + "\n")
            ends = [i for i, line in enumerate(lines) if i > start and SECTION.fullmatch(line)]
            code = "".join(lines[start : (ends or [len(lines)])[0]])
        return self.before + code

    def apply(self, project: Path) -> None:
        target = project / self.path
        if self.how == "new file":
            target.parent.mkdir(parents=True, exist_ok=True)
            assert not target.exists(), f"{self.path} exists already"
            target.write_text(self.code())
        else:
            apply(project, self.path, self.how, self.code())


SECTION = re.compile(r"# [\w/.]+\.py\n")


@dataclass(frozen=True)
class Setup:
    """Blocks applied together to a fresh project that has the README's edits; then
    ``manage.py check --fail-level WARNING``, and ``probe`` (Python, in ``manage.py
    shell``) shows the blocks do what the doc says."""

    edits: tuple[Edit, ...]
    probe: str
    apps: tuple[str, ...] = ()  # the doc's own apps ("yourapp"), installed first
    redis: bool = False


SETTINGS = "yourproject/settings.py"
HOOK_PROBE = """
from dagstream_app.permissions import get_hook
from myproject.dagrules import owners_only
assert get_hook() is owners_only, get_hook()
"""
SETUPS = {
    "settings": Setup(
        (
            Edit("settings.md:# settings.py", SETTINGS),
            Edit("settings.md:# myproject/dagrules.py", "myproject/dagrules.py", "new file"),
        ),
        HOOK_PROBE
        + "from dagstream_app.conf import config\n"
        + "assert config().replay_window == 50_000\n",
    ),
    "gates": Setup(
        (
            Edit("gates.md:# settings.py", SETTINGS, section="# settings.py"),
            Edit(
                "gates.md:# settings.py",
                "myproject/dagrules.py",
                "new file",
                section="# myproject/dagrules.py",
            ),
        ),
        HOOK_PROBE,
    ),
    "notifications": Setup(
        (Edit("gates.md:# settings.py: notifications", SETTINGS),),
        """
from dagstream_app.conf import config
assert config().notify_gates and config().site_url == "https://dags.example.com"
assert config().escalate_to == ["group:oncall"] and len(config().notify_webhook_secret) >= 16
from django.conf import settings
assert settings.EMAIL_HOST == "smtp.example.com"
""",
    ),
    "client": Setup(
        (
            Edit(
                'client.md:DAGSTREAM = {"ALLOWED_ORIGINS": ["https://app.example.com"]}', SETTINGS
            ),
            Edit("client.md:import os", "yourproject/asgi.py", "replace the file"),
        ),
        # The app's origin passes the handshake (then, with no ticket, 4001); others do not.
        """
import asyncio
from channels.testing import WebsocketCommunicator
from yourproject.asgi import application

async def knock(origin):
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    socket = WebsocketCommunicator(application, "/ws/dags/etl-42/", headers=headers)
    connected, _ = await socket.connect(timeout=10)
    closed = await socket.receive_output(timeout=10) if connected else None
    await socket.disconnect()
    return connected, closed and closed["code"]

assert asyncio.run(knock("https://app.example.com")) == (True, 4001)
assert asyncio.run(knock("https://elsewhere.example.com"))[0] is False
""",
    ),
    "dashboard": Setup(
        (
            Edit("dashboard.md:# settings.py", SETTINGS),
            Edit(
                "dashboard.md:{# yourapp/templates/yourapp/base.html #}",
                "yourapp/templates/yourapp/base.html",
                "new file",
            ),
        ),
        # The sign-in page, in the site's own frame.
        """
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
page = Client().get("/accounts/login/")
html = page.content.decode()
assert page.status_code == 200, page.status_code
assert '<nav><a href="/">Your site</a></nav>' in html and "dagstream.css" in html, html
""",
        apps=("yourapp",),
    ),
    "deployment": Setup(
        (
            Edit('deployment.md:DATABASES["default"]["OPTIONS"] = {', SETTINGS),
            Edit(
                "deployment.md:CHANNEL_LAYERS = {",
                SETTINGS,
                # the doc's REDIS_URL: the deployment's Redis
                before=f"REDIS_URL = {REDIS_URL!r}\n",
            ),
        ),
        # A message goes through the Redis layer and back.
        """
import asyncio
from channels.layers import get_channel_layer

async def echo():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "docs.hello"})
    return await asyncio.wait_for(layer.receive(channel), 10)

assert asyncio.run(echo())["type"] == "docs.hello"
""",
        redis=True,
    ),
}
for _setup in SETUPS.values():
    for _edit in _setup.edits:
        if _edit.key in BLOCKS:
            COVERED.setdefault(_edit.key, "test_doc_blocks_apply_to_a_fresh_project")


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project with the README's edits, for each setup to copy."""
    project = start_project(tmp_path_factory.mktemp("adopted"))
    adopt(project)
    return project


def _install_apps(project: Path, apps: tuple[str, ...]) -> None:
    for app in apps:
        (project / app).mkdir()
        (project / app / "__init__.py").write_text("")
    if apps:
        apply(project, SETTINGS, "add at the end", f"INSTALLED_APPS += {list(apps)!r}\n")


def _copy(adopted: Path, where: Path) -> Path:
    shutil.copytree(adopted.parent, where, symlinks=True)
    return where / PROJECT


def _check_and_probe(project: Path, setup: Setup) -> str:
    _install_apps(project, setup.apps)
    for edit in setup.edits:
        edit.apply(project)
    out = manage(project, "check", "--fail-level", "WARNING")
    assert "System check identified no issues" in out, out
    return manage(project, "shell", "-v", "0", "-c", setup.probe)


@pytest.fixture(scope="module")
def applied(adopted: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every setup at once (each is a few Django start-ups): name -> output or error."""
    redis_up = _redis_answers()
    todo = {name: s for name, s in SETUPS.items() if redis_up or not s.redis}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool:
        running = {
            name: pool.submit(
                _check_and_probe, _copy(adopted, tmp_path_factory.mktemp(name) / "copy"), s
            )
            for name, s in todo.items()
        }
        done: dict[str, Any] = {}
        for name, future in running.items():
            try:
                done[name] = future.result(timeout=3 * DEADLINE)
            except (AssertionError, subprocess.SubprocessError) as exc:
                done[name] = exc
    return done


def _redis_answers() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


@pytest.mark.parametrize("name", list(SETUPS))
def test_doc_blocks_apply_to_a_fresh_project(name: str, applied: dict[str, Any]) -> None:
    if SETUPS[name].redis:
        require_redis()
    outcome = applied[name]
    if isinstance(outcome, BaseException):
        raise outcome


# ------------------------------------------------------------------ celery.md, in a fresh project

# The fresh project's own tasks: what celery.md's launch block imports, around its
# summarise task (which assumes the app and an llm()).
CELERY_TASKS = """from types import SimpleNamespace

from celery import shared_task

from yourproject.celery import app


def llm(pages):
    return SimpleNamespace(price=0.5, text=f"summary of {len(pages)} pages")


@shared_task
def fetch(url):
    return f"the page at {url}"


@shared_task
def draft():
    return "a draft"


@shared_task
def publish(review):
    return review

"""
# Runs celery.md's two canvases in the fresh project, as the person "ada" decides
# their gates, and prints what came of them.
CELERY_DRIVER = """
import ast, json, os, time
import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yourproject.settings")
django.setup()

from celery import chain
from django.contrib.auth.models import User
from dagstream_app import services
from dagstream_app.celery import launch
from dagstream_app.models import Dag, Gate
from yourapp.tasks import draft, publish

ada = User.objects.create_superuser("ada", password="pw-for-docs")


def decide(dag_id):
    end = time.monotonic() + 60
    while not Gate.objects.filter(dag_id=dag_id, status="pending").exists():
        assert time.monotonic() < end, f"no gate in {dag_id}"
        time.sleep(0.1)  # the worker opens it
    gate = Gate.objects.get(dag_id=dag_id)
    services.decide_gate(dag_id, gate.node_id, "approve", actor=ada)


def ended(dag_id):
    end = time.monotonic() + 60
    while (dag := Dag.objects.get(dag_id=dag_id)).status == "running":
        assert time.monotonic() < end, f"{dag_id} did not end"
        time.sleep(0.1)  # the worker reports it
    return {"status": dag.status, "spent": dag.spent,
            "labels": sorted(dag.nodes.values_list("label", flat=True))}


launched = {"urls": ["https://example.com/1", "https://example.com/2"]}
exec(open("launch_block.py").read(), launched)
fragment = ast.parse(open("gate_block.py").read())
last = fragment.body[-1]
canvas = ast.Assign([ast.Name("canvas", ast.Store())], last.value)
fragment.body[-1] = ast.copy_location(canvas, last)
ast.fix_missing_locations(fragment)
gated = {"chain": chain, "draft": draft, "publish": publish}
exec(compile(fragment, "gate_block.py", "exec"), gated)
second = launch(gated["canvas"])
decide(launched["dag_id"])
decide(second.dag_id)
print(json.dumps({
    "first": launched["result"].get(timeout=60),
    "first_run": ended(launched["run"].dag_id),
    "second": second.result.get(timeout=60),
    "second_run": ended(second.dag_id),
}))
"""


@runs(
    "celery.md:# yourproject/celery.py",
    "celery.md:from celery import chain, chord, group",
    "celery.md:from dagstream_app.celery import gate",
    "celery.md:from dagstream_app.celery import report_cost",
)
def test_celery_blocks_run_on_a_real_worker_of_a_fresh_project(
    adopted: Path, tmp_path: Path
) -> None:
    require_redis()
    project = _copy(adopted, tmp_path / "celery")
    prefix = f"dagstream-docs-{os.getpid()}:"
    _install_apps(project, ("yourapp",))
    apply(
        project,
        SETTINGS,
        "add at the end",
        # What celery.md leaves to the project: its broker and results (here under a
        # key prefix of this test run's own).
        f"CELERY_BROKER_URL = CELERY_RESULT_BACKEND = {REDIS_URL!r}\n"
        f"CELERY_BROKER_TRANSPORT_OPTIONS = {{'global_keyprefix': {prefix!r}}}\n"
        "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS\n"
        f"CELERY_TASK_DEFAULT_QUEUE = '{prefix}celery'\n",
    )
    Edit("celery.md:# yourproject/celery.py", "yourproject/celery.py", "new file").apply(project)
    Edit(
        "celery.md:from dagstream_app.celery import report_cost",
        "yourapp/tasks.py",
        "new file",
        before=CELERY_TASKS,
    ).apply(project)
    (project / "launch_block.py").write_text(
        block("celery.md:from celery import chain, chord, group").code
    )
    (project / "gate_block.py").write_text(
        block("celery.md:from dagstream_app.celery import gate").code
    )
    (project / "drive.py").write_text(CELERY_DRIVER)
    manage(project, "migrate", "-v", "0")
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        worker_command("yourproject", f"dagstream-docs-{os.getpid()}", concurrency=2),
        cwd=project,
        env=env(project),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stop() ends the pool with it
    )
    try:
        driven = subprocess.run(
            [sys.executable, "drive.py"],
            cwd=project,
            env=env(project),
            capture_output=True,
            text=True,
            timeout=2 * DEADLINE,
        )
    finally:
        Worker(worker).stop()
        log.close()
        _forget(prefix)
    assert driven.returncode == 0, driven.stderr + (tmp_path / "worker.log").read_text()
    outcome = json.loads(driven.stdout.splitlines()[-1])
    # The weekly report: two fetches into summarise (which reported its cost), the gate, publish.
    assert outcome["first"] == {
        "decision": "approve",
        "feedback": "",
        "decided_by": "ada",
        "input": "summary of 2 pages",
    }
    assert outcome["first_run"] == {
        "status": "completed",
        "spent": 0.5,
        "labels": ["Publish the summary?", "fetch", "fetch #2", "publish", "summarise"],
    }
    assert outcome["second"] == {"decision": "approve", "feedback": "", "decided_by": "ada"}
    assert outcome["second_run"] == {
        "status": "completed",
        "spent": 0.0,
        "labels": ["Publish?", "draft", "publish"],
    }


def _forget(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.mark.parametrize("key", ["settings.md:# myproject/dagrules.py", "gates.md:# settings.py"])
@pytest.mark.django_db
def test_the_owners_only_hooks_let_everyone_view_and_only_owners_act(
    key: str, settings: Any
) -> None:
    """The hooks those projects install, at work on a real DAG and real users."""
    hook = Edit(key, "", section="# myproject/dagrules.py").code()
    namespace: dict[str, Any] = {}
    exec(compile(hook, key, "exec", dont_inherit=True), namespace)  # the doc's own code
    settings.DAGSTREAM = {"PERMISSION_HOOK": namespace["owners_only"]}
    dag = services.create_dag("hook-doc", name="etl", nodes=["a"])
    outsider = _user("outsider", "view_dag", "decide_gate", "control_dag")
    owner = _user("owner", "view_dag", "decide_gate", "control_dag")
    owner.groups.add(Group.objects.create(name="etl-owners"))
    assert permissions.allowed(outsider, "view", dag) and permissions.allowed(owner, "view", dag)
    for action in ("decide", "control"):
        assert not permissions.allowed(outsider, action, dag)
        assert permissions.allowed(owner, action, dag)


# ------------------------------------------------------------------ declared, and the count

# Blocks that cannot run here, and why (keyed like the others).
DECLARED = {
    'langgraph.md:DAGSTREAM = {"MODEL_PRICES": {"gpt-4o": {"input": 2.5, "output": 10.0}}}': (
        "a settings line; the same table shape prices the runs of tests/test_langgraph.py "
        "(through prices=, which adds to this setting), and tests/test_conf.py checks that "
        "MODEL_PRICES is a documented setting"
    ),
    'deployment.md:DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them': (
        "PostgreSQL's connection pool, which a fresh (SQLite) project cannot take; "
        "tests/test_db_connections.py serves a burst of requests with the example project, "
        "whose PostgreSQL settings are these (max_size from DATABASE_POOL_SIZE)"
    ),
    "dashboard.md:# yourproject/storage.py": (
        "a static files storage, run where it does its work: "
        "tests/test_dashboard_static.py runs collectstatic with it, as written"
    ),
    "protocol.md:import json": (
        "validates a frame with the jsonschema package, which dagstream does not depend on "
        "(it is not installed here); tests/test_protocol.py checks real frames against the "
        "same entry points of the schema that `manage.py dagstream_schema` prints"
    ),
}


def test_every_block_is_run_applied_or_declared() -> None:
    blocks = set(BLOCKS)
    neither = blocks - set(COVERED) - set(DECLARED)
    assert not neither, f"blocks no test runs, applies or declares (add one): {sorted(neither)}"
    gone = (set(COVERED) | set(DECLARED)) - blocks
    assert not gone, f"the tests name blocks the docs no longer have: {sorted(gone)}"
    both = set(COVERED) & set(DECLARED)
    assert not both, f"declared as not runnable, yet run: {sorted(both)}"
