"""What people send back to an engine: a gate's decision and their pause / resume / cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

from dagstream_app.models import Gate

__all__ = ["Command", "CommandType", "Decision", "DecisionOutput", "GateDecision"]

Decision = Literal["approve", "reject", "modify"]
CommandType = Literal["pause", "resume", "cancel"]


class DecisionOutput(TypedDict):
    """A decided gate's node output: what was decided, the feedback, and by whom."""

    decision: Decision
    feedback: str
    decided_by: str


@dataclass(frozen=True)
class GateDecision:
    """What a person (or a timeout's default) decided at a gate."""

    node_id: str
    decision: Decision
    feedback: str
    decided_by: str
    decided_at: datetime | None

    @classmethod
    def from_gate(cls, gate: Gate) -> GateDecision:
        assert gate.decision is not None
        return cls(
            node_id=gate.node_id,
            decision=gate.decision,
            feedback=gate.feedback,
            decided_by=gate.decided_by,
            decided_at=gate.decided_at,
        )

    def as_output(self) -> DecisionOutput:
        """The decision as its gate's node shows it (output of the node)."""
        return {"decision": self.decision, "feedback": self.feedback, "decided_by": self.decided_by}

    def rejection(self) -> str:
        """``rejected by <who>[: <feedback>]``: why a rejected gate failed."""
        who = self.decided_by or "the timeout default"
        return f"rejected by {who}" + (f": {self.feedback}" if self.feedback else "")


@dataclass(frozen=True)
class Command:
    """A person's pause / resume / cancel, delivered once through ``commands()``."""

    type: CommandType
    seq: int
