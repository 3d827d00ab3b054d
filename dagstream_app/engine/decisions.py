"""What people send back to an engine: a gate's decision and their pause / resume / cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dagstream_app.models import Gate

__all__ = ["Command", "CommandType", "Decision", "GateDecision"]

Decision = Literal["approve", "reject", "modify"]
CommandType = Literal["pause", "resume", "cancel"]


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


@dataclass(frozen=True)
class Command:
    """A person's pause / resume / cancel, delivered once through ``commands()``."""

    type: CommandType
    seq: int
