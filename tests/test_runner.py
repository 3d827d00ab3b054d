"""The reference runner in-process, against the real engine API and database.

Nothing waits on time: node callables block on events the test controls, and
the test follows the DAG's committed events (woken by the channel layer, read
from the database). Orderings are checked on the event log, whose order is the
runner's own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from dagstream_app import broadcast, services
from dagstream_app.models import Dag, Edge, Event, Node
from dagstream_app.runner import (
    Context,
    DefinitionError,
    HumanGate,
    Pipeline,
    Runner,
    RunResult,
    Task,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("release_engine_connections"),
]

TIMEOUT = 15


# ----------------------------------------------------------------- helpers


def _events(dag_id: str) -> list[dict[str, Any]]:
    rows = Event.objects.filter(dag_id=dag_id).order_by("seq").values_list("seq", "type", "payload")
    return [{"seq": seq, "type": kind, **payload} for seq, kind, payload in rows]


class Watch:
    """Follows one DAG's events: wakes on its channel-layer group, reads the database."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self.layer = get_channel_layer()
        self.channel = ""

    async def join(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(broadcast.group_name(self.dag_id), self.channel)

    async def until(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                events = await database_sync_to_async(_events)(self.dag_id)
                if done(events):
                    return events
                await self.layer.receive(self.channel)

    async def node(self, node_id: str, status: str) -> list[dict[str, Any]]:
        return await self.until(lambda evs: has_state(evs, node_id, status))

    async def event(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return await self.until(lambda evs: find(evs, kind, **fields) is not None)


def find(events: list[dict[str, Any]], kind: str, **fields: Any) -> dict[str, Any] | None:
    for event in events:
        if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
            return event
    return None


def seq_of(events: list[dict[str, Any]], kind: str, **fields: Any) -> int:
    event = find(events, kind, **fields)
    assert event is not None, f"no {kind} {fields} in {events}"
    return int(event["seq"])


def has_state(events: list[dict[str, Any]], node_id: str, status: str) -> bool:
    return find(events, "node_state", node_id=node_id, status=status) is not None


def statuses(events: list[dict[str, Any]], node_id: str) -> list[str]:
    return [e["status"] for e in events if e["type"] == "node_state" and e["node_id"] == node_id]


class Gates:
    """Per-node asyncio events: ``started[n]`` set on entry, the node waits for ``release[n]``."""

    def __init__(self, *names: str) -> None:
        self.started = {n: asyncio.Event() for n in names}
        self.release = {n: asyncio.Event() for n in names}
        self.cancelled: list[str] = []

    def node(self, name: str, output: Any = None, **kwargs: Any) -> Node:
        async def fn(ctx: Context) -> Any:
            self.started[name].set()
            try:
                await self.release[name].wait()
            except asyncio.CancelledError:
                self.cancelled.append(name)
                raise
            return output if output is not None else name

        return Task(name, fn, **kwargs)

    async def wait_started(self, name: str) -> None:
        await asyncio.wait_for(self.started[name].wait(), TIMEOUT)


async def start(runner: Runner, dag_id: str) -> tuple[asyncio.Task[RunResult], Watch]:
    watch = Watch(dag_id)
    await watch.join()
    return asyncio.create_task(runner.run(dag_id)), watch


async def finish(task: asyncio.Task[RunResult]) -> RunResult:
    return await asyncio.wait_for(task, TIMEOUT)


@pytest.fixture
async def operator(make_user: Any) -> Any:
    return await database_sync_to_async(make_user)("view_dag", "decide_gate", "control_dag")


async def control(dag_id: str, action: str, user: Any) -> None:
    await database_sync_to_async(services.control)(dag_id, action, actor=user)


async def decide(dag_id: str, node_id: str, decision: str, user: Any, feedback: str = "") -> None:
    await database_sync_to_async(services.decide_gate)(
        dag_id, node_id, decision, feedback=feedback, actor=user
    )


@pytest.fixture
async def cleanup() -> AsyncIterator[list[asyncio.Task[Any]]]:
    tasks: list[asyncio.Task[Any]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------- order


async def test_dependencies_run_in_order_and_outputs_flow() -> None:
    calls: list[str] = []
    threads: dict[str, int] = {}
    now = [100.0]

    async def a(ctx: Context) -> dict[str, int]:
        calls.append("a")
        now[0] += 2.5  # the injected clock: a "takes" 2.5 s
        ctx.metrics["rows"] = 3
        return {"rows": 3}

    async def b(ctx: Context) -> int:
        calls.append("b")
        return int(ctx.inputs["a"]["rows"]) * 10

    def c(ctx: Context) -> int:  # sync: runs in a worker thread
        calls.append("c")
        threads["c"] = threading.get_ident()
        return int(ctx.inputs["a"]["rows"]) + 1

    async def d(ctx: Context) -> dict[str, Any]:
        calls.append("d")
        return {"sum": ctx.inputs["b"] + ctx.inputs["c"], "seen": sorted(ctx.results)}

    pipeline = Pipeline(
        "diamond",
        [
            Task("a", a, label="Extract"),
            Task("b", b, after=["a"]),
            Task("c", c, after="a"),
            Task("d", d, after=["b", "c"]),
        ],
    )
    result = await Runner(pipeline, clock=lambda: now[0]).run("diamond-1")

    assert result.status == "completed"
    assert result.results == {"d": {"sum": 34, "seen": ["a", "b", "c"]}}
    assert calls[0] == "a" and calls[-1] == "d" and sorted(calls[1:3]) == ["b", "c"]
    assert threads["c"] != threading.get_ident()
    events = await database_sync_to_async(_events)("diamond-1")
    for node_id in "abcd":
        assert statuses(events, node_id) == ["running", "completed"]
    a_done = find(events, "node_state", node_id="a", status="completed")
    assert a_done is not None
    assert a_done["output"] == {"rows": 3}
    assert a_done["metrics"] == {"rows": 3, "duration_s": 2.5}
    for src, dst in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        flow = seq_of(events, "edge_active", **{"from": src, "to": dst})
        assert seq_of(events, "node_state", node_id=src, status="completed") < flow
        assert flow < seq_of(events, "node_state", node_id=dst, status="running")
    assert events[-2]["type"] == "execution_complete"
    assert events[-2]["results"] == result.results
    assert events[-1] == {**events[-1], "type": "execution_state", "state": "completed"}


async def test_concurrency_limit_is_never_exceeded(cleanup: list[asyncio.Task[Any]]) -> None:
    names = [f"n{i}" for i in range(5)]
    gates = Gates(*names)
    pipeline = Pipeline("wide", [gates.node(n) for n in names])
    task, _ = await start(Runner(pipeline, concurrency=2), "wide-1")
    cleanup.append(task)

    # Release one node at a time, each only once the next one has started.
    await gates.wait_started("n0")
    await gates.wait_started("n1")
    for done, nxt in [("n0", "n2"), ("n1", "n3"), ("n2", "n4")]:
        gates.release[done].set()
        await gates.wait_started(nxt)
    for name in ("n3", "n4"):
        gates.release[name].set()
    assert (await finish(task)).status == "completed"

    running: set[str] = set()
    peak = 0
    for event in await database_sync_to_async(_events)("wide-1"):
        if event["type"] == "node_state" and event["status"] == "running":
            running.add(event["node_id"])
            peak = max(peak, len(running))
        elif event["type"] == "node_state":
            running.discard(event["node_id"])
    assert peak == 2


# ------------------------------------------------------ pause, resume, cancel


async def test_pause_starts_no_new_node_until_resume(
    operator: Any, cleanup: list[asyncio.Task[Any]]
) -> None:
    gates = Gates("a", "b", "c")
    reported = asyncio.Event()

    async def a(ctx: Context) -> str:
        gates.started["a"].set()
        await gates.release["a"].wait()
        ctx.add_cost(0.5)  # written after the pause: that flush tells the runner of it
        await reported.wait()
        return "a"

    pipeline = Pipeline("pausing", [Task("a", a), gates.node("c"), gates.node("b", after="a")])
    task, watch = await start(Runner(pipeline), "pause-1")
    cleanup.append(task)
    await gates.wait_started("a")
    await gates.wait_started("c")

    await control("pause-1", "pause", operator)
    gates.release["a"].set()
    await watch.event("cost_update")  # the runner has heard of the pause by now
    reported.set()  # a running node finishes while paused ...
    await watch.node("a", "completed")
    gates.release["c"].set()  # ... and so does c; its completion comes after a's boundary
    await watch.node("c", "completed")
    node_b = await database_sync_to_async(Node.objects.get)(dag_id="pause-1", node_id="b")
    dag = await database_sync_to_async(Dag.objects.get)(pk="pause-1")
    assert (node_b.status, dag.status) == ("pending", "paused")
    assert not gates.started["b"].is_set()

    await control("pause-1", "resume", operator)
    await gates.wait_started("b")
    gates.release["b"].set()
    assert (await finish(task)).status == "completed"
    events = await database_sync_to_async(_events)("pause-1")
    paused = seq_of(events, "execution_state", state="paused")
    resumed = next(
        e["seq"]
        for e in events
        if e["type"] == "execution_state" and e["state"] == "running" and e["seq"] > paused
    )
    assert paused < seq_of(events, "node_state", node_id="a", status="completed") < resumed
    assert seq_of(events, "node_state", node_id="c", status="completed") < resumed
    assert resumed < seq_of(events, "node_state", node_id="b", status="running")


async def test_cancel_stops_running_nodes_and_marks_the_rest(
    operator: Any, cleanup: list[asyncio.Task[Any]]
) -> None:
    gates = Gates("a", "b", "c")
    pipeline = Pipeline(
        "cancelling", [gates.node("a"), gates.node("c"), gates.node("b", after=["a"])]
    )
    task, _ = await start(Runner(pipeline), "cancel-1")
    cleanup.append(task)
    await gates.wait_started("a")
    await gates.wait_started("c")

    await control("cancel-1", "cancel", operator)
    result = await finish(task)

    assert result.status == "cancelled"
    assert sorted(gates.cancelled) == ["a", "c"]
    assert not gates.started["b"].is_set()
    events = await database_sync_to_async(_events)("cancel-1")
    assert statuses(events, "a") == ["running", "cancelled"]
    assert statuses(events, "c") == ["running", "cancelled"]
    assert statuses(events, "b") == ["cancelled"]
    assert [e["state"] for e in events if e["type"] == "execution_state"] == [
        "running",
        "cancelling",
        "cancelled",
    ]
    dag = await database_sync_to_async(Dag.objects.get)(pk="cancel-1")
    assert dag.status == "cancelled"


async def test_a_stopped_runner_fails_its_run(cleanup: list[asyncio.Task[Any]]) -> None:
    gates = Gates("a")
    task, _ = await start(Runner(Pipeline("stopping", [gates.node("a")])), "stop-1")
    cleanup.append(task)
    await gates.wait_started("a")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gates.cancelled == ["a"]
    dag = await database_sync_to_async(Dag.objects.get)(pk="stop-1")
    assert dag.status == "failed"
    events = await database_sync_to_async(_events)("stop-1")
    assert find(events, "error", message="The runner stopped before the run finished.")


# ------------------------------------------------------------------- gates


def review_pipeline(seen: dict[str, Any]) -> Pipeline:
    async def draft(ctx: Context) -> str:
        return "Draft v1"

    async def publish(ctx: Context) -> dict[str, Any]:
        seen.update(inputs=dict(ctx.inputs), feedback=dict(ctx.feedback))
        return {"published": ctx.results["draft"]}

    return Pipeline(
        "review",
        [
            Task("draft", draft),
            HumanGate(
                "review",
                lambda ctx: {"title": "Publish?", "body": ctx.inputs["draft"]},
                after=["draft"],
                label="Human review",
            ),
            Task("publish", publish, after=["review"]),
        ],
    )


@pytest.mark.parametrize("decision", ["approve", "modify", "reject"])
async def test_gate_decisions(
    decision: str, operator: Any, cleanup: list[asyncio.Task[Any]]
) -> None:
    seen: dict[str, Any] = {}
    dag_id = f"review-{decision}"
    task, watch = await start(Runner(review_pipeline(seen)), dag_id)
    cleanup.append(task)
    events = await watch.event("human_gate_waiting", node_id="review")
    assert find(events, "human_gate_waiting")["presentation"] == {  # type: ignore[index]
        "title": "Publish?",
        "body": "Draft v1",
    }
    assert statuses(events, "review") == ["waiting"]

    feedback = "Shorter, please." if decision != "approve" else ""
    await decide(dag_id, "review", decision, operator, feedback)
    result = await finish(task)
    events = await database_sync_to_async(_events)(dag_id)
    verdict = {"decision": decision, "feedback": feedback, "decided_by": operator.username}

    if decision == "reject":
        assert result.status == "failed" and result.failed == ("review",)
        assert statuses(events, "review") == ["waiting", "failed"]
        assert statuses(events, "publish") == ["skipped"]
        assert seen == {}
        final = [e for e in events if e["type"] == "error"][-1]
        assert final["node_id"] == "review"
        assert final["message"] == (
            f"The run failed: node 'review' was rejected by {operator.username}: Shorter, please."
        )
        assert events[-1]["state"] == "failed"
    else:
        assert result.status == "completed"
        assert result.results == {"publish": {"published": "Draft v1"}}
        assert statuses(events, "review") == ["waiting", "completed"]
        assert seen["inputs"] == {"review": verdict}
        assert seen["feedback"] == ({"review": feedback} if decision == "modify" else {})
        assert find(events, "edge_active", **{"from": "review", "to": "publish"})


# ------------------------------------------------------------------ budget


async def test_a_gate_with_assignees_and_a_quorum_hands_on_every_vote(
    make_user: Any, cleanup: list[asyncio.Task[Any]]
) -> None:
    seen: dict[str, Any] = {}

    async def publish(ctx: Context) -> None:
        seen.update(ctx.inputs)

    ann, ben = [
        await database_sync_to_async(make_user)("view_dag", "decide_gate", username=name)
        for name in ("ann", "ben")
    ]
    pipeline = Pipeline(
        "two-say-yes",
        [
            HumanGate("review", {"title": "Publish?"}, assignees=["ann", "ben"], quorum=2),
            Task("publish", publish, after=["review"]),
        ],
    )
    task, watch = await start(Runner(pipeline), "quorum-1")
    cleanup.append(task)
    events = await watch.event("human_gate_waiting", node_id="review")
    waiting = find(events, "human_gate_waiting")
    assert waiting is not None and (waiting["assignees"], waiting["quorum"]) == (["ann", "ben"], 2)
    await decide("quorum-1", "review", "approve", ann)
    await decide("quorum-1", "review", "modify", ben, "Shorter.")
    result = await finish(task)
    assert result.status == "completed"
    assert seen["review"] == {
        "decision": "modify",
        "feedback": "Shorter.",
        "decided_by": "ann, ben",
        "votes": [
            {"voter": "ann", "decision": "approve", "feedback": ""},
            {"voter": "ben", "decision": "modify", "feedback": "Shorter."},
        ],
    }


async def test_budget_pauses_the_run_and_a_gate_extends_it(
    operator: Any, cleanup: list[asyncio.Task[Any]]
) -> None:
    def spending(name: str, amount: float, after: tuple[str, ...] = ()) -> Node:
        async def fn(ctx: Context) -> str:
            ctx.add_cost(amount)
            return name

        return Task(name, fn, after=after)

    pipeline = Pipeline(
        "costly",
        [
            spending("a", 0.6),
            spending("b", 0.6, ("a",)),  # spent 1.2 >= 1.0: budget-1
            spending("c", 0.4, ("b",)),  # spent 1.6 >= 1.5: budget-2
            spending("d", 1.0, ("c",)),  # spent 2.6 >= 2.5: budget-3
            spending("e", 0.1, ("d",)),
        ],
    )
    task, watch = await start(Runner(pipeline, budget=1.0, budget_step=0.5), "budget-run")
    cleanup.append(task)

    async def at_gate(gate_id: str) -> list[dict[str, Any]]:
        events = await watch.event("human_gate_waiting", node_id=gate_id)
        dag = await database_sync_to_async(Dag.objects.get)(pk="budget-run")
        assert dag.status == "paused"
        return events

    events = await at_gate("budget-1")
    gate = find(events, "human_gate_waiting", node_id="budget-1")
    assert gate is not None
    assert gate["presentation"]["title"] == "Budget reached: continue?"
    assert (gate["presentation"]["spent"], gate["presentation"]["budget"]) == (1.2, 1.0)
    assert statuses(events, "c") == []  # not started while the gate is open
    await decide("budget-run", "budget-1", "approve", operator)

    events = await at_gate("budget-2")
    assert find(events, "cost_update", spent=1.2, budget=1.5) is not None
    await decide("budget-run", "budget-2", "modify", operator, "1")  # raise by 1 instead

    events = await at_gate("budget-3")
    assert find(events, "cost_update", spent=1.6, budget=2.5) is not None
    await decide("budget-run", "budget-3", "reject", operator)
    result = await finish(task)

    assert result.status == "cancelled"
    assert result.spent == 2.6
    events = await database_sync_to_async(_events)("budget-run")
    assert statuses(events, "budget-1") == ["waiting", "completed"]
    assert statuses(events, "budget-3") == ["waiting", "failed"]
    assert statuses(events, "d") == ["running", "completed"]
    assert statuses(events, "e") == ["cancelled"]
    assert [e["state"] for e in events if e["type"] == "execution_state"] == [
        "running",
        "paused",
        "running",
        "paused",
        "running",
        "paused",
        "cancelled",
    ]
    mutations = [e["mutation"] for e in events if e["type"] == "dag_mutated"]
    added = [m["node"]["id"] for m in mutations if m["op"] == "add_node"]
    assert added == ["budget-1", "budget-2", "budget-3"]
    # Each gate is drawn after the node whose cost reached the budget.
    placed = [(m["from"], m["to"]) for m in mutations if m["op"] == "add_edge"]
    assert placed == [("b", "budget-1"), ("c", "budget-2"), ("d", "budget-3")]
    d_done = find(events, "node_state", node_id="d", status="completed")
    assert d_done is not None and d_done["metrics"]["cost"] == 1.0


# ---------------------------------------------------------------- failures


async def test_a_failing_node_skips_its_descendants_and_fails_the_run() -> None:
    async def ok(ctx: Context) -> str:
        return ctx.node_id

    async def boom(ctx: Context) -> None:
        raise RuntimeError("rate limited")

    def unjsonable(ctx: Context) -> object:
        return object()

    pipeline = Pipeline(
        "failing",
        [
            Task("a", ok),
            Task("b", boom, after=["a"]),
            Task("c", ok, after=["b"]),
            Task("c2", ok, after=["c"]),
            Task("d", ok, after=["a"]),
            Task("x", unjsonable, after=["d"]),
        ],
    )
    result = await Runner(pipeline).run("fail-1")

    assert result.status == "failed"
    assert result.failed == ("b", "x")
    assert set(result.outputs) == {"a", "d"}
    events = await database_sync_to_async(_events)("fail-1")
    assert statuses(events, "b") == ["running", "failed"]
    assert statuses(events, "c") == ["skipped"]
    assert statuses(events, "c2") == ["skipped"]
    assert statuses(events, "d") == ["running", "completed"]
    failed_b = find(events, "node_state", node_id="b", status="failed")
    assert failed_b is not None and failed_b["output"] == {"error": "RuntimeError: rate limited"}
    errors = [e for e in events if e["type"] == "error"]
    assert errors[0] == {
        **errors[0],
        "node_id": "b",
        "message": "Node 'b' raised RuntimeError: rate limited",
    }
    assert errors[1]["node_id"] == "x" and "TypeError" in errors[1]["message"]
    assert errors[-1]["message"] == (
        "The run failed: 2 nodes failed, first node 'b' raised RuntimeError: rate limited."
    )
    assert events[-1]["state"] == "failed"


# ----------------------------------------------------------------- changes


async def test_nodes_added_at_run_time_are_streamed_and_scheduled() -> None:
    refused: list[str] = []

    async def read(ctx: Context) -> str:
        ctx.add_cost(0.5)
        return f"notes from {ctx.node_id}"

    async def plan(ctx: Context) -> int:
        for i in (1, 2):
            await ctx.add_node(
                Task(f"read-{i}", read, after=["plan"], label=f"Read {i}"), before=["merge"]
            )
        for bad in (
            lambda: ctx.add_edge("merge", "read-1"),  # a cycle
            lambda: ctx.add_node(Task("read-1", read)),  # a duplicate
            lambda: ctx.add_edge("plan", "start"),  # start has already run
            lambda: ctx.add_edge("ghost", "merge"),  # unknown
        ):
            with pytest.raises(DefinitionError) as exc:
                await bad()
            refused.append(str(exc.value))
        return 3

    def plan_more(ctx: Context) -> None:  # sync, in a thread
        ctx.add_node_sync(Task("read-3", read, label="Read 3"), before="merge")
        ctx.add_edge_sync("start", "read-3")

    async def merge(ctx: Context) -> list[str]:
        return sorted(v for k, v in ctx.inputs.items() if k.startswith("read-"))

    async def start_(ctx: Context) -> str:
        return "go"

    pipeline = Pipeline(
        "fanout",
        [
            Task("start", start_),
            Task("plan", plan, after=["start"]),
            Task("plan-more", plan_more, after=["start"]),
            Task("merge", merge, after=["plan", "plan-more"]),
        ],
    )
    result = await Runner(pipeline, concurrency=1).run("fan-1")

    assert result.status == "completed", result
    assert result.results == {
        "merge": ["notes from read-1", "notes from read-2", "notes from read-3"]
    }
    assert result.spent == 1.5
    assert refused == [
        "That change would make a cycle: merge -> read-1 -> merge.",
        "Duplicate node id 'read-1'.",
        "Node 'start' is completed; it can no longer wait for 'plan'.",
        "Edge 'ghost' -> 'merge' names unknown node 'ghost'.",
    ]
    events = await database_sync_to_async(_events)("fan-1")
    mutations = [e["mutation"] for e in events if e["type"] == "dag_mutated"]
    assert mutations[:3] == [
        {"op": "add_node", "node": {"id": "read-1", "label": "Read 1"}},
        {"op": "add_edge", "from": "plan", "to": "read-1"},
        {"op": "add_edge", "from": "read-1", "to": "merge"},
    ]
    assert {"op": "add_edge", "from": "start", "to": "read-3"} in mutations
    for i in (1, 2, 3):
        assert statuses(events, f"read-{i}") == ["running", "completed"]
        assert seq_of(events, "edge_active", **{"from": f"read-{i}", "to": "merge"}) < seq_of(
            events, "node_state", node_id="merge", status="running"
        )
    # start had completed before read-3 was linked to it: that flow is shown at once.
    assert find(events, "edge_active", **{"from": "start", "to": "read-3"})
    edges = await database_sync_to_async(
        lambda: set(Edge.objects.filter(dag_id="fan-1").values_list("src", "dst"))
    )()
    assert {("plan", "read-1"), ("read-2", "merge"), ("start", "read-3")} <= edges


# -------------------------------------------------------------- definitions


async def _noop(ctx: Context) -> None:
    return None


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [
                Task("a", _noop, after=["c"]),
                Task("b", _noop, after=["a"]),
                Task("c", _noop, after=["b"]),
            ],
            "The dependencies form a cycle: c -> a -> b -> c.",
        ),
        ([Task("a", _noop, after=["a"])], "The dependencies form a cycle: a -> a."),
        (
            [Task("a", _noop), Task("b", _noop, after=["nope"])],
            "Node 'b' depends on unknown node 'nope'.",
        ),
        ([Task("a", _noop), Task("a", _noop)], "Duplicate node id 'a'."),
        ([Task("", _noop)], "Bad node id '': use 1-200 characters."),
        (
            [Task("a", _noop), Task("b", _noop, after=["a", "a"])],
            "Node 'b' lists a dependency twice: ['a', 'a'].",
        ),
    ],
)
async def test_bad_definitions_are_refused_before_anything_runs(
    steps: list[Node], message: str
) -> None:
    with pytest.raises(DefinitionError) as exc:
        Pipeline("bad", steps)
    assert str(exc.value) == message
    assert not await database_sync_to_async(Dag.objects.exists)()


def test_bad_runner_settings_are_refused() -> None:
    pipeline = Pipeline("ok", [Task("a", _noop)])
    with pytest.raises(DefinitionError, match="concurrency must be at least 1"):
        Runner(pipeline, concurrency=0)
    with pytest.raises(DefinitionError, match="budget must be a positive number"):
        Runner(pipeline, budget=-1)
    with pytest.raises(DefinitionError, match="timeout and default go together"):
        HumanGate("g", {}, timeout=5)
    with pytest.raises(DefinitionError, match="fn must be callable"):
        Task("a", "not a function")  # type: ignore[arg-type]


async def test_a_runners_fan_out_declares_its_group() -> None:
    async def work(ctx: Context) -> int:
        return 1

    chunks = [Task(f"chunk-{i}", work, after="split", group="chunks") for i in range(3)]
    pipeline = Pipeline("mapped", [Task("split", work), *chunks])
    result = await Runner(pipeline).run("mapped-1")
    assert result.status == "completed"
    groups = await database_sync_to_async(
        lambda: dict(Node.objects.filter(dag_id="mapped-1").values_list("node_id", "group"))
    )()
    assert groups == {"split": "", "chunk-0": "chunks", "chunk-1": "chunks", "chunk-2": "chunks"}
