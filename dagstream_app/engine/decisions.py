"""What people send back to an engine: a gate's decision and their pause / resume / cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from dagstream_app.models import Gate

__all__ = ["Command", "CommandType", "Decision", "DecisionOutput", "GateDecision", "Vote"]

Decision = Literal["approve", "reject", "modify"]
CommandType = Literal["pause", "resume", "cancel"]


class VoteOutput(TypedDict):
    """One vote as a decided quorum gate's output lists it."""

    voter: str
    decision: Decision
    feedback: str


class DecisionOutput(TypedDict):
    """A decided gate's node output: what was decided, the feedback, and by whom
    (and, for a gate that needed a quorum, every vote)."""

    decision: Decision
    feedback: str
    decided_by: str
    votes: NotRequired[list[VoteOutput]]


@dataclass(frozen=True)
class Vote:
    """One person's vote on a gate that needed a quorum."""

    voter: str
    decision: Decision
    feedback: str
    at: str  # ISO 8601, UTC

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Vote:
        return cls(row["voter"], row["decision"], row["feedback"], row["at"])


@dataclass(frozen=True)
class GateDecision:
    """What a person (or a timeout's default) decided at a gate."""

    node_id: str
    decision: Decision
    feedback: str
    decided_by: str
    decided_at: datetime | None
    votes: tuple[Vote, ...] = ()  # every vote cast, in order (a gate with a quorum)

    @classmethod
    def from_gate(cls, gate: Gate) -> GateDecision:
        assert gate.decision is not None
        return cls(
            node_id=gate.node_id,
            decision=gate.decision,
            feedback=gate.feedback,
            decided_by=gate.decided_by,
            decided_at=gate.decided_at,
            votes=tuple(Vote.from_row(row) for row in gate.votes),
        )

    def as_output(self) -> DecisionOutput:
        """The decision as its gate's node shows it (output of the node)."""
        output: DecisionOutput = {
            "decision": self.decision,
            "feedback": self.feedback,
            "decided_by": self.decided_by,
        }
        if self.votes:
            output["votes"] = [
                {"voter": v.voter, "decision": v.decision, "feedback": v.feedback}
                for v in self.votes
            ]
        return output

    def rejection(self) -> str:
        """``rejected by <who>[: <feedback>]``: why a rejected gate failed."""
        who = self.decided_by or "the timeout default"
        return f"rejected by {who}" + (f": {self.feedback}" if self.feedback else "")


@dataclass(frozen=True)
class Command:
    """A person's pause / resume / cancel, delivered once through ``commands()``."""

    type: CommandType
    seq: int
