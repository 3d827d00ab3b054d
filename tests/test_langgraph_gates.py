"""LangGraph interrupts as dagstream gates: parallel interrupts decided in the opposite
order, a reject, and an engine restart while a gate waits (resume_graph).

Decisions travel the real road: a WebSocket client on a real daphne sends them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from dagstream_app import services
from dagstream_app.langgraph import resume_graph, stream_graph
from tests.langgraph_graphs import Research, asks, review_graph
from tests.langgraph_support import Live, checkpointer, operator
from tests.servers import Server
from tests.test_runner import find, seq_of, statuses

__all__ = ["checkpointer", "operator"]  # fixtures

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("release_engine_connections"),
]


def _two_reviews() -> StateGraph[Any]:
    """draft -> (editor, legal: each interrupts, in one superstep) -> publish."""

    def publish(state: Research) -> Research:
        review = state["review"]
        return {"published": all(r["decision"] != "reject" for r in review.values())}

    graph = StateGraph(Research)
    graph.add_node("draft", lambda s: {"draft": "tides and moons"})
    graph.add_node("editor", asks("editor"))
    graph.add_node("legal", asks("legal"))
    graph.add_node("publish", publish)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "editor")
    graph.add_edge("draft", "legal")
    graph.add_edge(["editor", "legal"], "publish")
    graph.add_edge("publish", END)
    return graph


def _answer(decision: str, feedback: str | None, user: Any) -> dict[str, Any]:
    """What ``interrupt()`` returns for a person's decision."""
    return {"decision": decision, "feedback": feedback, "decided_by": user.username}


async def _decide(live: Live, node_id: str, decision: str, feedback: str = "") -> None:
    message = {"type": "human_decision", "node_id": node_id, "decision": decision}
    await live.command({**message, "feedback": feedback} if feedback else message)


async def test_parallel_interrupts_are_gates_resolved_one_by_one(
    server: Server, operator: tuple[Any, str], checkpointer: BaseCheckpointSaver[Any]
) -> None:
    user, token = operator
    graph = _two_reviews()
    compiled = graph.compile(checkpointer=checkpointer)
    live = await Live(server, token, "lg-gates").start(
        stream_graph(compiled, {"topic": "t"}, dag_id="lg-gates")
    )
    await live.until("human_gate_waiting", node_id="editor")
    waiting = await live.until("human_gate_waiting", node_id="legal")
    legal = find(waiting, "human_gate_waiting", node_id="legal")
    assert legal is not None
    assert legal["presentation"]["title"] == "legal"
    assert legal["presentation"]["body"] == "tides and moons"
    assert isinstance(legal["presentation"]["interrupt_id"], str)

    # Decided in the opposite order: legal (reject) first; the editor still waits.
    await _decide(live, "legal", "reject")
    await live.until("node_state", node_id="legal", status="completed")
    await _decide(live, "editor", "modify", "shorter, please")
    _, output = await live.result()

    assert output["review"]["legal"] == _answer("reject", None, user)
    assert output["review"]["editor"] == _answer("modify", "shorter, please", user)
    assert output["published"] is False
    logged = await live.seen()
    # Each gate resolved on its own: legal went on before the editor was decided.
    assert seq_of(logged, "node_state", node_id="legal", status="completed") < seq_of(
        logged, "gate_decided", node_id="editor"
    )
    assert statuses(logged, "legal") == ["running", "waiting", "running", "completed"]
    assert statuses(logged, "editor")[:2] == ["running", "waiting"]
    assert statuses(logged, "editor")[-1] == "completed"
    assert statuses(logged, "publish") == ["running", "completed"]
    assert [e["node_id"] for e in logged if e["type"] == "human_gate_waiting"] == [
        "editor",
        "legal",
    ]
    assert logged[-1]["state"] == "completed"


async def test_an_engine_restarted_while_a_gate_waits_picks_the_run_up(
    server: Server, operator: tuple[Any, str], checkpointer: BaseCheckpointSaver[Any]
) -> None:
    user, token = operator
    compiled = review_graph().compile(checkpointer=checkpointer)
    live = await Live(server, token, "lg-restart").start(
        stream_graph(compiled, {"topic": "t"}, dag_id="lg-restart")
    )
    await live.until("human_gate_waiting", node_id="review")
    assert live.task is not None
    live.task.cancel()  # the engine goes away while the gate waits
    with pytest.raises(asyncio.CancelledError):
        await live.task

    # Decided while no engine is attached; a new engine picks the run up.
    await _decide(live, "review", "approve", "ship it")
    dag_id, output = await asyncio.wait_for(resume_graph(compiled, "lg-restart"), 30)
    assert dag_id == "lg-restart"
    assert output["review"]["review"] == _answer("approve", "ship it", user)
    assert output["published"] is True
    logged = await live.seen()
    assert statuses(logged, "review") == ["running", "waiting", "running", "completed"]
    assert statuses(logged, "publish") == ["running", "completed"]
    assert find(logged, "edge_active", **{"from": "review", "to": "publish"})
    assert [e["type"] for e in logged].count("human_gate_waiting") == 1
    assert logged[-1]["state"] == "completed"


async def test_an_interrupt_with_assignees_and_a_quorum_resumes_with_every_vote(
    server: Server, operator: tuple[Any, str], checkpointer: BaseCheckpointSaver[Any]
) -> None:
    user, token = operator

    def ship(state: Research) -> Research:
        asked = {"title": "ship", "assignees": [user.username, "bob"], "quorum": 2}
        return {"review": {"ship": interrupt(asked)}}

    graph = StateGraph(Research)
    graph.add_node("ship", ship)
    graph.add_edge(START, "ship")
    graph.add_edge("ship", END)
    compiled = graph.compile(checkpointer=checkpointer)
    live = await Live(server, token, "lg-quorum").start(
        stream_graph(compiled, {"topic": "t"}, dag_id="lg-quorum")
    )
    waiting = find(await live.until("human_gate_waiting", node_id="ship"), "human_gate_waiting")
    assert waiting is not None and (waiting["assignees"], waiting["quorum"]) == (
        [user.username, "bob"],
        2,
    )
    await _decide(live, "ship", "approve")
    await live.until("gate_voted", node_id="ship", voter=user.username)

    def bob_votes() -> None:
        bob = User.objects.create(username="bob")
        bob.user_permissions.set(
            Permission.objects.filter(codename__in=("view_dag", "decide_gate"))
        )
        bob = User.objects.get(pk=bob.pk)
        services.decide_gate("lg-quorum", "ship", "approve", feedback="go", actor=bob)

    await database_sync_to_async(bob_votes)()
    _, output = await live.result()
    assert output["review"]["ship"] == {
        "decision": "approve",
        "feedback": "go",
        "decided_by": f"{user.username}, bob",
        "votes": [
            {"voter": user.username, "decision": "approve", "feedback": ""},
            {"voter": "bob", "decision": "approve", "feedback": "go"},
        ],
    }
    logged = [e["type"] for e in await live.seen()]  # the client saw every event, in order
    assert (logged.count("gate_voted"), logged.count("gate_decided")) == (2, 1)
