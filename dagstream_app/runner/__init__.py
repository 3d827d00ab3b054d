"""A reference DAG runner: run a pipeline defined in Python and stream it live.

A :class:`Pipeline` is a list of :class:`Task` (an async or sync callable; sync
ones run in a thread) and :class:`HumanGate` (a human decision) steps with their
dependencies. :meth:`Runner.run` creates the DAG through the engine API, starts
ready tasks up to a concurrency limit and reports every change. Pause, resume,
cancel, gate decisions and the budget are honoured at node boundaries. See
``docs/runner.md``.
"""

from __future__ import annotations

from dagstream_app.runner.budget import BudgetPolicy
from dagstream_app.runner.context import Context
from dagstream_app.runner.definitions import DefinitionError, HumanGate, Pipeline, Step, Task
from dagstream_app.runner.execution import Runner, RunResult

__all__ = [
    "BudgetPolicy",
    "Context",
    "DefinitionError",
    "HumanGate",
    "Pipeline",
    "RunResult",
    "Runner",
    "Step",
    "Task",
]
