"""The LangGraph demo (``make demo-langgraph``): a research agent graph on fake chat models.

plan -> research (one ``Send`` per question, in parallel) -> draft -> review (an
``interrupt``: a person approves, rejects or asks for changes) -> publish. The
models are ``langchain_core``'s fake chat models with usage metadata, priced by
:data:`PRICES`, so the cost ticker moves; no keys, no network.
"""

from __future__ import annotations

import itertools
import logging
import operator
import random
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

from channels.db import database_sync_to_async
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from dagstream_app.langgraph import GraphCancelled, stream_graph
from project.demo.pipeline import DemoSettings, repeat

__all__ = ["DEMO_NAME", "PRICES", "build_graph", "run_langgraph_demo"]

log = logging.getLogger(__name__)

DEMO_NAME = "langgraph-research"
MODEL = "demo-mini"
PRICES = {MODEL: {"input": 3.0, "output": 15.0}}  # $ per million tokens, made up
TOPICS = ("tidal power", "heat pumps in old houses", "grid batteries", "offshore wind")


def _model(kind: str, rng: random.Random) -> GenericFakeChatModel:
    """A fake chat model whose every answer carries token usage (never runs out)."""

    def answers() -> Iterator[AIMessage]:
        for number in itertools.count(1):
            tokens_in, tokens_out = rng.randint(400, 2500), rng.randint(150, 900)
            yield AIMessage(
                content=f"{kind} #{number}: {rng.choice(('solid', 'mixed', 'promising'))} evidence",
                usage_metadata={
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                },
                response_metadata={"model_name": MODEL},
            )

    return GenericFakeChatModel(messages=answers())


class Research(TypedDict, total=False):
    topic: str
    questions: list[str]
    notes: Annotated[list[str], operator.add]
    draft: str
    review: dict[str, Any]
    published: str


def build_graph(settings: DemoSettings, seed: str) -> Any:
    """The research agent, compiled with an in-memory checkpointer (for its interrupt)."""
    rng = random.Random(seed)
    llm = _model("answer", rng)

    async def work(low: float, high: float) -> None:
        await settings.sleep(rng.uniform(low, high) / settings.speed)  # stands in for thinking

    async def plan(state: Research) -> Research:
        await work(0.5, 1.5)
        await llm.ainvoke(f"plan research on {state['topic']}")
        count = rng.randint(3, 5)
        return {"questions": [f"{state['topic']}: question {i + 1}" for i in range(count)]}

    def fan_out(state: Research) -> list[Send]:
        return [Send("research", {"topic": q}) for q in state["questions"]]

    async def research(state: Research) -> Research:
        await work(1.0, 3.0)
        answer = await llm.ainvoke(f"research {state['topic']}")
        return {"notes": [str(answer.content)]}

    async def draft(state: Research) -> Research:
        await work(1.0, 2.0)
        answer = await llm.ainvoke("draft from " + "; ".join(state["notes"]))
        return {"draft": f"On {state['topic']}: {answer.content} ({len(state['notes'])} notes)"}

    def review(state: Research) -> Research:
        asked: dict[str, Any] = {"title": "Publish this draft?", "body": state["draft"]}
        if settings.review_timeout:  # approved if nobody decides in time
            asked.update(timeout=settings.review_timeout, default="approve")
        answer = interrupt(asked)
        return {"review": answer}

    async def publish(state: Research) -> Research:
        await work(0.3, 1.0)
        verdict = state["review"]["decision"]
        return {"published": "not published" if verdict == "reject" else "published"}

    graph = StateGraph(Research)
    for name, node in (
        ("plan", plan),
        ("research", research),
        ("draft", draft),
        ("review", review),
        ("publish", publish),
    ):
        graph.add_node(name, node)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["research"])
    graph.add_edge("research", "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    return graph.compile(checkpointer=InMemorySaver(), name=DEMO_NAME)


async def run_langgraph_demo(
    settings: DemoSettings, *, every: float | None, report: Callable[[str], None]
) -> None:
    """The agent on a topic, once or every ``every`` seconds (:func:`~.pipeline.repeat`);
    when cancelled, the runs it stopped (a gate waiting, say) are failed."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())

    async def one(number: int) -> None:
        dag_id = f"{DEMO_NAME}-{stamp}-{number}"
        seed = f"{settings.seed}:{number}"
        topic = random.Random(seed).choice(TOPICS)
        report(f"Run {dag_id} started: {topic}")
        try:
            _, output = await stream_graph(
                build_graph(settings, seed),
                {"topic": topic},
                name=DEMO_NAME,
                dag_id=dag_id,
                budget=settings.budget,
                prices=PRICES,
            )
        except GraphCancelled:
            report(f"Run {dag_id} cancelled")
        except Exception as exc:  # one broken run must not stop the others
            log.exception("dagstream LangGraph demo: run %s crashed", dag_id)
            report(f"Run {dag_id} crashed: {exc}")
        else:
            report(f"Run {dag_id} completed: {output.get('published')}")

    try:
        await repeat(one, every)
    finally:
        from project.demo.management.commands.dagstream_demo_server import fail_stale_runs

        await database_sync_to_async(fail_stale_runs)(DEMO_NAME)
