"""The engine's reports, written once: each builds its :class:`~.validation.Delta` and
submits it through one hook, ``submit(delta)``, that each kind of handle provides.

:class:`Reports` holds the reports every kind of handle offers (``node_state``,
``edge_active``, ``mutate``, ``cost``, ``error``); :class:`RunReports` adds those
that end or steer the run (``complete``, ``fail``, ``set_state``). The kinds:

- :class:`DirectReports` (``services.reports(dag_id)``): each report applied at
  once, in its own transaction; the event's seq;
- ``DagStream`` (a coroutine, the seq once durable), ``SyncDagStream`` (the seq,
  blocking), ``stream.nowait`` (None at once, queued) and ``deltas`` (the delta
  itself) in :mod:`dagstream_app.engine`.

:func:`~.engine_deltas.apply` stays the one writer: every submitted delta reaches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, cast

from dagstream_app.errors import DagstreamError
from dagstream_app.services.engine_deltas import apply
from dagstream_app.services.validation import Delta

__all__ = ["DirectReports", "EngineState", "Reports", "RunReports", "reports"]

R = TypeVar("R")
# The transitions an engine makes itself (people's go through commands).
EngineState = Literal["paused", "running", "cancelled"]


class Reports(Generic[R]):
    """The reports every handle offers; each returns what its ``submit`` returns.

    A subclass provides ``submit``, as a method or as an attribute set in
    ``__init__`` (no call in between on the hot path).
    """

    __slots__ = ()

    submit: Callable[[Delta], R]

    def node_state(
        self,
        node_id: str,
        status: str,
        *,
        output: Any = None,
        metrics: dict[str, Any] | None = None,
    ) -> R:
        """Report a node's status (and its output, metrics merged into the earlier ones)."""
        return self.submit(
            Delta(
                "node_state",
                {"node_id": node_id, "status": status, "output": output, "metrics": metrics},
            )
        )

    def edge_active(self, src: str, dst: str) -> R:
        """Report data flowing along an edge."""
        return self.submit(Delta("edge_active", {"src": src, "dst": dst}))

    def mutate(self, mutation: dict[str, Any]) -> R:
        """Apply ``add_node`` / ``remove_node`` / ``add_edge`` / ``remove_edge``."""
        return self.submit(Delta("mutate", {"mutation": mutation}))

    def cost(
        self, *, spent: float | None = None, budget: float | None = None, add: float | None = None
    ) -> R:
        """Report the total spent so far (absolute), or ``add`` to it, and/or a new budget."""
        return self.submit(Delta("cost", {"spent": spent, "budget": budget, "add": add}))

    def error(self, message: str, *, node_id: str | None = None) -> R:
        """Report an error without ending the run."""
        return self.submit(Delta("error", {"message": message, "node_id": node_id}))


class RunReports(Reports[R]):
    """The reports of a handle that waits for them: those above, and the run's own."""

    __slots__ = ()

    def complete(self, results: Any = None) -> R:
        """End the run as completed with its results."""
        return self.submit(Delta("complete", {"results": results}))

    def fail(self, message: str, *, node_id: str | None = None) -> R:
        """End the run as failed, saying why."""
        return self.submit(Delta("fail", {"message": message, "node_id": node_id}))

    def set_state(self, state_: EngineState) -> R:
        """Engine-side transition: pause or resume on its own, or confirm a cancel."""
        return self.submit(Delta("set_state", {"state": state_}))


class DirectReports(RunReports[int]):
    """The reports of one DAG, each applied at once: ``services.reports(dag_id).node_state(...)``.

    Each returns its event's seq or raises its refusal. Engines that report often
    want ``DagStream``, which writes many reports in one transaction.
    """

    __slots__ = ("dag_id",)

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id

    def submit(self, delta: Delta) -> int:
        result = apply(self.dag_id, [delta]).results[0]
        if isinstance(result, DagstreamError):
            raise result
        return cast(int, result)


def reports(dag_id: str) -> DirectReports:
    """The reports of ``dag_id``, applied one at a time (see :class:`DirectReports`)."""
    return DirectReports(dag_id)
