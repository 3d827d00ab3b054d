"""The runner's front door: :class:`Runner` starts a run of a pipeline, :class:`RunResult`
says how it ended. The run itself is :class:`~dagstream_app.runner.coordinator.Coordinator`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from dagstream_app.engine import DagStream
from dagstream_app.runner.budget import BudgetPolicy
from dagstream_app.runner.coordinator import Coordinator, RunStatus
from dagstream_app.runner.definitions import (
    DefinitionError,
    Pipeline,
    default_dag_id,
    is_positive,
    node_spec,
)

__all__ = ["RunResult", "Runner"]


@dataclass(frozen=True)
class RunResult:
    """How a run ended. ``results`` is what ``execution_complete`` carried."""

    dag_id: str
    status: RunStatus
    results: dict[str, Any]
    outputs: dict[str, Any]
    spent: float
    failed: tuple[str, ...]


@dataclass(frozen=True)
class Runner:
    """Runs a :class:`Pipeline`, as many times as asked.

    ``budget``: when the reported cost reaches it, the run pauses and opens a
    gate "Budget reached: continue?"; approving raises the budget by
    ``budget_step`` (default: the initial budget), rejecting cancels the run.
    ``clock`` measures node durations (injectable for tests).
    """

    pipeline: Pipeline
    concurrency: int = 4
    budget: float | None = None
    budget_step: float | None = None
    clock: Callable[[], float] = time.perf_counter

    def __post_init__(self) -> None:
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int):
            raise DefinitionError(f"concurrency must be an integer, not {self.concurrency!r}.")
        if self.concurrency < 1:
            raise DefinitionError(f"concurrency must be at least 1, not {self.concurrency}.")
        for name in ("budget", "budget_step"):
            value = getattr(self, name)
            if value is not None and not is_positive(value):
                raise DefinitionError(f"{name} must be a positive number, not {value!r}.")

    async def run(self, dag_id: str | None = None) -> RunResult:
        """Create the DAG ``dag_id`` (default: the pipeline's name, a random suffix); run it."""
        steps = self.pipeline.steps
        creating = asyncio.ensure_future(
            DagStream.create(
                dag_id or default_dag_id(self.pipeline.name),
                name=self.pipeline.name,
                nodes=[node_spec(s) for s in steps],
                edges=[(dep, s.id) for s in steps for dep in s.after],
                budget=self.budget,
            )
        )
        try:
            stream = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Stopped while creating: let the DAG be created, then end it, rather
            # than leave it "running" (or a write in flight at shutdown).
            with suppress(Exception):
                stream = await creating
                await stream.fail("The runner stopped before the run started.")
            raise
        run = Coordinator(
            stream,
            steps,
            concurrency=self.concurrency,
            budget=BudgetPolicy(self.budget, self.budget_step or self.budget or 0.0),
            clock=self.clock,
        )
        status = await run.execute()
        return RunResult(
            dag_id=run.dag_id,
            status=status,
            results=run.results,
            outputs=dict(run.outputs),
            spent=run.budget.spent,
            failed=tuple(node_id for node_id, _ in run.failures),
        )
