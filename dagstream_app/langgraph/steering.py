"""Pause, resume, cancel and budget gates for a LangGraph run, at superstep boundaries.

LangGraph runs a superstep's tasks to their end; what dagstream can do is not
start the next superstep. At each boundary of the top-level graph the run waits
while it is paused, and when its spending has reached the budget it pauses
itself and asks the budget gate first (approve raises the budget, reject cancels
the run), as the reference runner does. A cancel stops the run at once: the
tasks running then are cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import suppress

from dagstream_app import services
from dagstream_app.engine import DagStream
from dagstream_app.runner.budget import BudgetPolicy

__all__ = ["PAUSE_NOTE", "Steering"]

PAUSE_NOTE = (
    "Started before the pause: LangGraph cannot pause a node midway; "
    "it runs to its end, and the next superstep waits."
)


class Steering:
    """The people's commands and the budget, as the run's boundaries see them."""

    def __init__(self, stream: DagStream, budget: BudgetPolicy) -> None:
        self.stream = stream
        self.budget = budget
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.cancelling = False  # a person cancelled, or a budget gate was rejected

    async def obey(
        self, work: asyncio.Future[object], running: Callable[[], Iterable[str]]
    ) -> None:
        """Follow the people's commands until the run ends (run beside ``work``).

        A pause notes on each running node that it runs to its end; a cancel
        cancels ``work``.
        """
        async for command in self.stream.commands():
            if command.type == "pause":
                self.resumed.clear()
                for node_id in running():
                    self.stream.nowait.node_state(node_id, "running", metrics={"note": PAUSE_NOTE})
            elif command.type == "resume":
                self.resumed.set()
            else:
                self.cancelling = True
                work.cancel()
                return

    async def boundary(self, after: str | None, taken: set[str]) -> None:
        """Between supersteps: wait while paused; ask the budget gate if the budget is spent.

        ``after``: the node last finished (the budget gate is drawn after it);
        ``taken``: ids in use.
        """
        while True:
            if not self.resumed.is_set():
                await self.resumed.wait()
            elif self.budget.exhausted():
                await self._ask_budget(after, taken)
            else:
                return

    async def _ask_budget(self, after: str | None, taken: set[str]) -> None:
        stream, policy = self.stream, self.budget
        gate = policy.next_gate(taken)
        paused_here = False
        with suppress(services.Conflict):  # a person paused or cancelled first
            await stream.set_state("paused")
            paused_here = True
        taken.add(gate.id)
        await stream.mutate({"op": "add_node", "node": {"id": gate.id, "label": gate.label}})
        if after is not None:
            await stream.mutate({"op": "add_edge", "from": after, "to": gate.id})
        assert isinstance(gate.presentation, dict)
        decision = await stream.gate(gate.id, gate.presentation)
        output = decision.as_output()
        if decision.decision == "reject":
            policy.open_gate = None
            await stream.node_state(gate.id, "failed", output=output)
            self.cancelling = True
            raise asyncio.CancelledError
        budget = policy.raise_for(decision)
        await stream.node_state(gate.id, "completed", output={**output, "budget": budget})
        await stream.cost(budget=budget)
        if paused_here:
            with suppress(services.Conflict):  # a person changed the state meanwhile
                await stream.set_state("running")
