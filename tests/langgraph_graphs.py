"""LangGraph graphs the LangGraph tests run: fake chat models, no network."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

MODEL = "fake-gpt"
PRICES = {MODEL: {"input": 2.0, "output": 10.0}}  # per million tokens


def fake_model(*answers: str, tokens: tuple[int, int] = (100, 20)) -> GenericFakeChatModel:
    """A chat model answering ``answers`` in turn, each with usage metadata."""
    usage = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    return GenericFakeChatModel(
        messages=iter(
            AIMessage(content=a, usage_metadata=usage, response_metadata={"model_name": MODEL})  # type: ignore[arg-type]
            for a in answers
        )
    )


def _merged(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    return {**(old or {}), **new}


class Research(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    draft: str
    review: Annotated[dict[str, Any], _merged]  # answers by gate, from parallel nodes
    published: bool


class Writing(TypedDict, total=False):
    notes: list[str]  # read from the parent: no reducer here, so nothing is added twice
    draft: str


def map_reduce(ways: int = 3, model: GenericFakeChatModel | None = None) -> StateGraph[Any]:
    """plan -> Send research x ways -> write (a subgraph: outline -> polish)."""
    llm = model or fake_model(*(f"note {i}" for i in range(ways)))

    def plan(state: Research) -> Research:
        return {"topic": state["topic"].strip()}

    def fan(state: Research) -> list[Send]:
        return [Send("research", {"topic": f"{state['topic']} {i}"}) for i in range(ways)]

    async def research(state: Research) -> Research:
        answer = await llm.ainvoke(f"research {state['topic']}")
        return {"notes": [str(answer.content)]}

    write = StateGraph(Writing)
    write.add_node("outline", lambda s: {"draft": " / ".join(sorted(s["notes"]))})
    write.add_node("polish", lambda s: {"draft": s["draft"].upper()})
    write.add_edge(START, "outline")
    write.add_edge("outline", "polish")

    graph = StateGraph(Research)
    graph.add_node("plan", plan)
    graph.add_node("research", research)
    graph.add_node("write", write.compile())
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan, ["research"])
    graph.add_edge("research", "write")
    graph.add_edge("write", END)
    return graph


def chain(*steps: tuple[str, Callable[..., Any]]) -> StateGraph[Any]:
    """Nodes one after another."""
    graph = StateGraph(Research)
    previous = START
    for name, fn in steps:
        graph.add_node(name, fn)
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph


def asks(title: str) -> Callable[[Research], Research]:
    """A node that interrupts with a gate titled ``title`` and keeps the answer."""

    def node(state: Research) -> Research:
        answer = interrupt({"title": title, "body": state.get("draft", "")})
        return {"review": {title: answer}}

    return node


def review_graph() -> StateGraph[Any]:
    """draft -> review (an interrupt) -> publish (published if the review approved)."""
    graph = StateGraph(Research)
    graph.add_node("draft", lambda s: {"draft": "v1"})
    graph.add_node("review", asks("review"))
    graph.add_node(
        "publish", lambda s: {"published": s["review"]["review"]["decision"] == "approve"}
    )
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    return graph


class Blocker:
    """Nodes that wait for the test: ``entered[name]`` is set inside, ``go[name]`` lets it end."""

    def __init__(self, *names: str) -> None:
        self.entered = {n: asyncio.Event() for n in names}
        self.go = {n: asyncio.Event() for n in names}

    def node(self, name: str) -> Callable[[Research], Any]:
        async def fn(state: Research) -> Research:
            self.entered[name].set()
            await self.go[name].wait()
            return {"notes": [name]}

        return fn
