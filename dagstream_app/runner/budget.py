"""The budget policy: when spending reaches the budget, ask a person whether to go on."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from dagstream_app.engine import GateDecision
from dagstream_app.money import format_money, shown
from dagstream_app.runner.definitions import HumanGate, is_positive


@dataclass
class BudgetPolicy:
    """Spending against a budget, and the "Budget reached: continue?" gates it opens.

    Approving a budget gate raises the budget by ``step`` (modify with a number
    raises it by that instead); rejecting it cancels the run. Without a budget
    nothing is ever exhausted.
    """

    budget: float | None
    step: float
    spent: float = 0.0
    open_gate: str | None = None  # the budget gate waiting for a decision
    gate_ids: set[str] = field(default_factory=set)

    def add(self, amount: float) -> float:
        """Record ``amount`` more spent; the new total."""
        self.spent = round(self.spent + amount, 6)
        return self.spent

    def exhausted(self) -> bool:
        return self.budget is not None and self.spent >= self.budget

    def next_gate(self, taken: Container[str]) -> HumanGate:
        """A new budget gate (``budget-N``, avoiding ids in ``taken``), now the open one."""
        number = len(self.gate_ids) + 1
        while f"budget-{number}" in taken or f"budget-{number}" in self.gate_ids:
            number += 1
        gate_id = f"budget-{number}"
        self.gate_ids.add(gate_id)
        self.open_gate = gate_id
        assert self.budget is not None
        return HumanGate(gate_id, self._presentation(), label="Budget reached")

    def _presentation(self) -> dict[str, Any]:
        assert self.budget is not None
        return {
            "title": "Budget reached: continue?",
            "body": (
                f"Spent {format_money(self.spent)} of a budget of {format_money(self.budget)}. "
                f"Approve to raise the budget by {format_money(self.step)} and continue "
                "(modify with a number to raise it by that instead); reject to cancel the run."
            ),
            # Numbers (engines read them back), rounded as pages show money; the
            # exact figures are in the cost events.
            "spent": shown(self.spent),
            "budget": shown(self.budget),
            "step": shown(self.step),
        }

    def raise_for(self, decision: GateDecision) -> float:
        """Close the open gate approved (or modified): the new, higher budget."""
        assert self.budget is not None
        self.open_gate = None
        step = self.step
        if decision.decision == "modify":
            try:
                asked = float(decision.feedback.strip().lstrip("+"))
            except ValueError:
                asked = 0.0
            if is_positive(asked):
                step = asked
        self.budget = round(self.budget + step, 6)
        return self.budget
