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
import contextlib
import dataclasses
import importlib
import inspect
import io
import json
import re
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
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from websockets.sync.client import connect

from dagstream_app import services
from dagstream_app.engine import DagStream, GateDecision, SyncDagStream
from dagstream_app.models import Dag, Event, Gate, Node
from tests.freshproject import DEADLINE
from tests.servers import ROOT, Server, child_env
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


def _compiled(key: str, replace: dict[str, str] | None = None) -> Any:
    b = block(key)
    code = b.code
    for old, new in (replace or {}).items():
        assert old in code, f"{b.where} no longer says {old!r}"
        code = code.replace(old, new)
    # dont_inherit: the block compiles as a file of its own would, without this
    # module's `from __future__ import annotations`.
    return compile(code, b.where, "exec", TOP_AWAIT, dont_inherit=True)


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
        replies = []
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


@pytest.fixture
def person(make_user: Any, make_token: Any, server: Server) -> Person:
    user = make_user("view_dag", "decide_gate", "control_dag", username="ada")
    return Person(user.username, make_token(user), server)


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


@runs("engine.md:@dataclass(frozen=True)")
def test_engine_the_gate_decision_excerpt_is_the_real_class() -> None:
    names = run_sync(
        "engine.md:@dataclass(frozen=True)", dataclass=dataclass, Literal=Literal, datetime=datetime
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
    assert gate.status == "pending"  # the gate stays pending, the run ends
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
    names = run_sync(
        "client.md:import json",
        # (the doc's reader puts their dagstream server's address and token here)
    )
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
