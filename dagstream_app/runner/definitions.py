"""What a pipeline is made of: tasks, human gates, and the checks they pass before running."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagstream_app import graph
from dagstream_app.engine import Decision

if TYPE_CHECKING:
    from dagstream_app.runner.context import Context

TaskFn = Callable[["Context"], Any]
PresentationFn = Callable[["Context"], Any]

MAX_ID = 200


class DefinitionError(ValueError):
    """A pipeline, or a change to it at run time, that cannot run; the message names why."""


def as_ids(value: Sequence[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Task:
    """A unit of work: ``fn(ctx)`` returns the task's (JSON-serialisable) output.

    ``group`` names the fan-out the task is part of (the tasks of one map share it):
    the dashboard draws a big one as one node with its counts.
    """

    id: str
    fn: TaskFn
    after: Sequence[str] = ()
    label: str = ""
    group: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", as_ids(self.after))
        if not callable(self.fn):
            raise DefinitionError(f"Task {self.id!r}: fn must be callable, not {self.fn!r}.")


@dataclass(frozen=True)
class HumanGate:
    """A human gate: shows ``presentation`` (a dict, or ``fn(ctx)`` making one) and waits.

    Approve continues; modify continues and hands the feedback to the dependants
    (``ctx.feedback``); reject fails the gate and skips everything after it. With
    ``timeout`` seconds, ``default`` is decided if nobody decides in time.
    ``assignees`` and ``quorum``: who may decide it and how many approvals it
    needs (see :meth:`DagStream.gate <dagstream_app.engine.DagStream.gate>`).
    """

    id: str
    presentation: Mapping[str, Any] | PresentationFn
    after: Sequence[str] = ()
    label: str = ""
    timeout: float | None = None
    default: Decision | None = None
    assignees: Sequence[str] = ()
    quorum: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", as_ids(self.after))
        if (self.timeout is None) != (self.default is None):
            raise DefinitionError(f"Gate {self.id!r}: timeout and default go together.")


Step = Task | HumanGate


@dataclass(frozen=True)
class Pipeline:
    """A named DAG definition, checked when built: ids unique, dependencies known, no cycle."""

    name: str
    steps: Sequence[Step]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        check_definition(self.steps)


def node_spec(step: Task | HumanGate) -> dict[str, str]:
    """The node the DAG gets for ``step``: its id, label and group (if it has one)."""
    spec = {"id": step.id, "label": step.label}
    if isinstance(step, Task) and step.group:
        spec["group"] = step.group
    return spec


def is_positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def check_step(step: object) -> None:
    if not isinstance(step, (Task, HumanGate)):
        raise DefinitionError(f"{step!r} is not a Task or a HumanGate.")
    if not isinstance(step.id, str) or not 1 <= len(step.id) <= MAX_ID:
        raise DefinitionError(f"Bad node id {step.id!r}: use 1-{MAX_ID} characters.")
    if len(step.label) > MAX_ID:
        raise DefinitionError(f"The label of {step.id!r} is over {MAX_ID} characters.")
    if len(set(step.after)) != len(step.after):
        raise DefinitionError(f"Node {step.id!r} lists a dependency twice: {list(step.after)}.")


def check_definition(steps: Sequence[Step]) -> None:
    known: set[str] = set()
    for step in steps:
        check_step(step)
        if step.id in known:
            raise DefinitionError(f"Duplicate node id {step.id!r}.")
        known.add(step.id)
    for step in steps:
        for dep in step.after:
            if dep not in known:
                raise DefinitionError(f"Node {step.id!r} depends on unknown node {dep!r}.")
    cycle = graph.find_cycle((dep, s.id) for s in steps for dep in s.after)
    if cycle:
        raise DefinitionError(f"The dependencies form a cycle: {' -> '.join(cycle)}.")


def default_dag_id(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80] or "run"
    return f"{slug}-{uuid.uuid4().hex[:8]}"
