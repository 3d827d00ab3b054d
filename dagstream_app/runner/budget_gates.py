"""A run's budget gates: pause when spending reaches the budget, ask, go on or cancel.

The policy (:class:`~dagstream_app.runner.budget.BudgetPolicy`) says when and by
how much; this module carries it out on the run's stream and schedule.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

from dagstream_app import services
from dagstream_app.engine import DecisionOutput, GateDecision
from dagstream_app.runner.budget import BudgetPolicy
from dagstream_app.runner.context import Context

if TYPE_CHECKING:
    from dagstream_app.runner.coordinator import Coordinator

__all__ = ["BudgetGates"]


class BudgetGates:
    """The "Budget reached: continue?" gates of one run, opened and closed at node boundaries."""

    def __init__(self, run: Coordinator, policy: BudgetPolicy) -> None:
        self.run = run
        self.policy = policy
        self.engine_paused = False  # the runner paused the DAG (budget)

    async def check(self) -> None:
        """At a boundary: open a gate if the budget is spent, close it if nothing is left."""
        pending = self.run.schedule.counts["pending"] > 0
        if self.policy.open_gate is None and self.policy.exhausted() and pending:
            await self._open()
        elif self.policy.open_gate is not None and not pending:
            await self._close()

    async def _open(self) -> None:
        run, stream = self.run, self.run.stream
        gate = self.policy.next_gate(run.schedule.steps)
        if not run.paused:
            try:
                await stream.set_state("paused")
                self.engine_paused = True
            except services.Conflict:
                pass  # a person paused or cancelled first; their command follows
        await stream.mutate({"op": "add_node", "node": {"id": gate.id, "label": gate.label}})
        last = run.schedule.last_completed
        if last is not None:
            # The gate follows the node whose cost reached the budget: an edge places
            # it there in the graph (without one it would be drawn as a start node).
            await stream.mutate({"op": "add_edge", "from": last, "to": gate.id})
        await stream.node_state(gate.id, "waiting")
        run.nodes.start(gate, Context(run, gate.id, {}, {}))

    async def decided(
        self, decision: GateDecision, output: DecisionOutput, metrics: dict[str, Any]
    ) -> None:
        """The open gate was decided: raise the budget and go on, or cancel the run."""
        stream = self.run.stream
        gate_id = self.policy.open_gate
        assert gate_id is not None
        if decision.decision == "reject":
            self.policy.open_gate = None
            await stream.node_state(gate_id, "failed", output=output, metrics=metrics)
            await self.run.cancel()
            return
        budget = self.policy.raise_for(decision)
        await stream.node_state(
            gate_id, "completed", output={**output, "budget": budget}, metrics=metrics
        )
        await stream.cost(budget=budget)
        await self._resume()

    async def _close(self) -> None:
        """Nothing is left to spend on: the question is moot."""
        gate_id = self.policy.open_gate
        assert gate_id is not None
        self.policy.open_gate = None
        await self.run.nodes.cancel(gate_id)
        await self.run.stream.node_state(gate_id, "skipped")
        await self._resume()

    async def _resume(self) -> None:
        if not self.engine_paused:
            return
        self.engine_paused = False
        with suppress(services.Conflict):  # a person changed the state; their command follows
            await self.run.stream.set_state("running")
