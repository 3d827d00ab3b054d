"""Steering LangGraph runs: pause and resume between supersteps, cancel, budget gates.

Commands travel the real road (a WebSocket client on a real daphne); nodes wait on
events the test controls, so nothing waits on time.
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from dagstream_app.langgraph import PAUSE_NOTE, GraphCancelled, stream_graph
from tests.langgraph_graphs import PRICES, Blocker, Research, chain, fake_model
from tests.langgraph_support import Live, checkpointer, operator
from tests.servers import Server
from tests.test_runner import find, seq_of, statuses

__all__ = ["checkpointer", "operator"]  # fixtures

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("release_engine_connections"),
]


async def test_pause_takes_effect_between_supersteps_and_resume_goes_on(
    server: Server, operator: tuple[Any, str], checkpointer: BaseCheckpointSaver[Any]
) -> None:
    blocker = Blocker("fetch")
    graph = chain(("fetch", blocker.node("fetch")), ("parse", lambda s: {"draft": "parsed"}))
    live = await Live(server, operator[1], "lg-pause").start(
        stream_graph(graph.compile(checkpointer=checkpointer), {"topic": "t"}, dag_id="lg-pause")
    )
    await blocker.entered["fetch"].wait()
    await live.command({"type": "pause_execution"})
    # The engine heard it while fetch runs: fetch's panel says it runs to its end.
    await live.until("node_state", node_id="fetch", status="running", metrics={"note": PAUSE_NOTE})
    blocker.go["fetch"].set()
    await live.until("node_state", node_id="fetch", status="completed")
    await live.command({"type": "resume_execution"})
    _, output = await live.result()
    assert output["draft"] == "parsed"
    logged = await live.seen()
    paused = seq_of(logged, "execution_state", state="paused")
    resumed = [e["seq"] for e in logged if e.get("state") == "running"][-1]
    assert paused < seq_of(logged, "node_state", node_id="fetch", status="completed") < resumed
    # parse, the next superstep, started only after the resume.
    assert seq_of(logged, "node_state", node_id="parse", status="running") > resumed
    assert statuses(logged, "parse") == ["running", "completed"]
    assert logged[-1]["state"] == "completed"


async def test_cancel_ends_the_run_cancelled(server: Server, operator: tuple[Any, str]) -> None:
    blocker = Blocker("fetch")
    graph = chain(("fetch", blocker.node("fetch")), ("parse", lambda s: {"draft": "parsed"}))
    live = await Live(server, operator[1], "lg-cancel").start(
        stream_graph(graph.compile(), {"topic": "t"}, dag_id="lg-cancel")
    )
    await blocker.entered["fetch"].wait()
    await live.command({"type": "cancel_execution"})
    with pytest.raises(GraphCancelled) as cancelled:
        await live.result()
    assert cancelled.value.dag_id == "lg-cancel"
    logged = await live.seen()
    assert statuses(logged, "fetch") == ["running", "cancelled"]
    assert statuses(logged, "parse") == []
    assert [e["state"] for e in logged if e["type"] == "execution_state"] == [
        "running",
        "cancelling",
        "cancelled",
    ]


def _spenders() -> Any:
    llm = fake_model("one", "two", "three", tokens=(1_000_000, 0))  # $2.00 a call

    async def spend(state: Research) -> Research:
        answer = await llm.ainvoke("go")
        return {"notes": [str(answer.content)]}

    return chain(("first", spend), ("second", spend), ("third", spend))


async def test_crossing_the_budget_pauses_at_the_next_superstep_and_asks(
    server: Server, operator: tuple[Any, str]
) -> None:
    user, token = operator
    run = stream_graph(
        _spenders().compile(), {"topic": "t"}, dag_id="lg-budget", budget=3.0, prices=PRICES
    )
    live = await Live(server, token, "lg-budget").start(run)
    # first ($2) and second ($4) run; the budget ($3) is crossed: budget-1 before third.
    waiting = await live.until("human_gate_waiting", node_id="budget-1")
    gate = find(waiting, "human_gate_waiting", node_id="budget-1")
    assert gate is not None and gate["presentation"]["spent"] == 4.0
    await live.command(
        {"type": "human_decision", "node_id": "budget-1", "decision": "modify", "feedback": "5"}
    )
    _, output = await live.result()
    assert output["notes"] == ["one", "two", "three"]
    logged = await live.seen()
    assert find(
        logged, "dag_mutated", mutation={"op": "add_edge", "from": "second", "to": "budget-1"}
    )
    assert seq_of(logged, "execution_state", state="paused") < seq_of(
        logged, "human_gate_waiting", node_id="budget-1"
    )
    assert seq_of(logged, "node_state", node_id="third", status="running") > seq_of(
        logged, "gate_decided", node_id="budget-1"
    )
    done = find(logged, "node_state", node_id="budget-1", status="completed")
    assert done is not None and done["output"]["budget"] == 8.0
    assert done["output"]["decided_by"] == user.username
    last_cost = [e for e in logged if e["type"] == "cost_update"][-1]
    assert (last_cost["spent"], last_cost["budget"]) == (6.0, 8.0)
    assert logged[-1]["state"] == "completed"


async def test_a_rejected_budget_gate_cancels_the_run(
    server: Server, operator: tuple[Any, str]
) -> None:
    run = stream_graph(
        _spenders().compile(), {"topic": "t"}, dag_id="lg-broke", budget=1.0, prices=PRICES
    )
    live = await Live(server, operator[1], "lg-broke").start(run)
    await live.until("human_gate_waiting", node_id="budget-1")
    await live.command({"type": "human_decision", "node_id": "budget-1", "decision": "reject"})
    with pytest.raises(GraphCancelled):
        await live.result()
    logged = await live.seen()
    assert statuses(logged, "first") == ["running", "completed"]
    assert statuses(logged, "second") == []
    assert statuses(logged, "budget-1") == ["waiting", "failed"]
    assert logged[-1]["state"] == "cancelled"
