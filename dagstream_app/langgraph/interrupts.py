"""LangGraph interrupts as dagstream gates, each resolved on its own.

``interrupt(value)`` in a node opens a gate at that node (a node that asks again
gets a gate node of its own, ``<node>.interrupt-2``, after it). The person's
decision resumes exactly that interrupt, by its id, with
``{"decision", "feedback", "decided_by"}``: what ``interrupt()`` returns.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, cast

from dagstream_app.engine import DagStream, Decision, GateDecision
from dagstream_app.langgraph.shape import Shape
from dagstream_app.protocol import json_problem

__all__ = ["Interrupts", "presentation", "resume_value"]


def presentation(node_id: str, value: Any, interrupt_id: str) -> dict[str, Any]:
    """What the gate shows: a dict of JSON as it is, anything else as JSON text.

    It also carries ``interrupt_id``, by which a restarted engine finds the gate again.
    """
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        shown = dict(value)
        if json_problem(shown) is None:
            return {**shown, "interrupt_id": interrupt_id}
    text = json.dumps(value, indent=2, default=repr, ensure_ascii=False)
    return {"title": f"{node_id}: your decision", "body": text, "interrupt_id": interrupt_id}


def resume_value(decision: GateDecision) -> dict[str, Any]:
    """What ``interrupt()`` returns to the node: the decision, feedback (None if none), who
    (and every vote, for a gate asked with ``"quorum"``)."""
    value: dict[str, Any] = {
        "decision": decision.decision,
        "feedback": decision.feedback or None,
        "decided_by": decision.decided_by,
    }
    if decision.votes:
        value["votes"] = decision.as_output().get("votes")
    return value


class Interrupts:
    """The run's interrupts waiting for people: their gates and the tasks awaiting them."""

    def __init__(
        self,
        stream: DagStream,
        shape: Shape,
        *,
        timeout: float | None = None,
        default: Decision | None = None,
    ) -> None:
        self.stream = stream
        self.shape = shape
        self.timeout = timeout
        self.default = default
        self.asked: dict[str, tuple[str, Any]] = {}  # interrupt id -> (node id, value)
        self.gate_of: dict[str, str] = {}  # interrupt id -> gate node id
        self.waiting: dict[str, asyncio.Task[GateDecision]] = {}

    def saw(self, node_id: str, interrupts: list[dict[str, Any]]) -> None:
        """A task ended in these interrupts (a subgraph's: reported first by its inner node)."""
        for found in interrupts:
            self.asked.setdefault(str(found["id"]), (node_id, found.get("value")))

    def restore(self, gates: list[Any]) -> None:
        """After a restart: the gates opened before it, by the interrupt each carries."""
        for gate in gates:
            interrupt_id = gate.presentation.get("interrupt_id")
            if isinstance(interrupt_id, str):
                self.gate_of[interrupt_id] = gate.node_id

    async def decisions(self) -> dict[str, dict[str, Any]]:
        """Open a gate for each new interrupt; wait for at least one decision; the
        decided interrupts' resume values, by interrupt id."""
        for interrupt_id, (node_id, value) in self.asked.items():
            if interrupt_id not in self.waiting:
                self.waiting[interrupt_id] = asyncio.ensure_future(
                    self._ask(interrupt_id, node_id, value)
                )
        await asyncio.wait(self.waiting.values(), return_when=asyncio.FIRST_COMPLETED)
        resume = {}
        for interrupt_id, task in list(self.waiting.items()):
            if task.done():
                resume[interrupt_id] = resume_value(task.result())
                del self.waiting[interrupt_id], self.asked[interrupt_id]
        return resume

    async def _ask(self, interrupt_id: str, node_id: str, value: Any) -> GateDecision:
        gate_id = await self._gate_node(interrupt_id, node_id)
        asked = value if isinstance(value, Mapping) else {}
        timeout = asked.get("timeout", self.timeout)
        default = asked.get("default", self.default)
        decision = await self.stream.gate(
            gate_id,
            presentation(node_id, value, interrupt_id),
            timeout=timeout,
            default=cast("Decision | None", default),
            assignees=asked.get("assignees", ()),
            quorum=asked.get("quorum", 1),
        )
        if gate_id != node_id:
            await self.stream.node_state(gate_id, "completed", output=decision.as_output())
        return decision

    async def _gate_node(self, interrupt_id: str, node_id: str) -> str:
        """The node whose gate asks: the interrupting node, or after its first question
        a new ``<node>.interrupt-N`` after it."""
        if interrupt_id in self.gate_of:
            return self.gate_of[interrupt_id]
        taken = set(self.gate_of.values())
        gate_id, number = node_id, 1
        while gate_id in taken:
            number += 1
            gate_id = f"{node_id}.interrupt-{number}"
        if gate_id != node_id:
            self.shape.known.add_node(gate_id)
            await self.stream.mutate({"op": "add_node", "node": {"id": gate_id}})
            if self.shape.link(node_id, gate_id):
                await self.stream.mutate({"op": "add_edge", "from": node_id, "to": gate_id})
        self.gate_of[interrupt_id] = gate_id
        return gate_id

    def cancel(self) -> None:
        """The run ends: stop waiting."""
        for task in self.waiting.values():
            task.cancel()
