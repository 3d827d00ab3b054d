"""What node tasks and the command reader tell the coordinator, through its one queue.

The coordinator alone writes to the stream, so the event order is its order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from dagstream_app.engine import Command, GateDecision
from dagstream_app.runner.definitions import Step


@dataclass(frozen=True)
class Done:
    node_id: str
    output: Any
    error: Exception | None
    duration: float


@dataclass(frozen=True)
class Decided:
    node_id: str
    decision: GateDecision
    duration: float


@dataclass(frozen=True)
class Cost:
    node_id: str
    amount: float


@dataclass(frozen=True)
class Commanded:
    command: Command


@dataclass(frozen=True)
class Change:
    """A node asked to grow the DAG; ``reply`` resolves once the change is in place."""

    step: Step | None
    edges: tuple[tuple[str, str], ...]
    reply: asyncio.Future[None] = field(compare=False)


Message = Done | Decided | Cost | Commanded | Change
