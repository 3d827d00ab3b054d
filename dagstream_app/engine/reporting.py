"""The engine's reports, written once: each builds its :class:`~services.Delta` and submits it.

:class:`Reports` holds the reports every kind of handle offers (``node_state``,
``edge_active``, ``mutate``, ``cost``, ``error``); :class:`RunReports` adds those
that end or steer the run (``complete``, ``fail``, ``set_state``). What a report
returns is the kind's business, through one hook, ``submit(delta)``:

- :class:`~dagstream_app.engine.DagStream`: a coroutine, the event's seq once durable;
- :class:`~dagstream_app.engine.SyncDagStream`: the seq, blocking the calling thread;
- :class:`Reporter` (``stream.nowait``): None at once, the report queued;
- :class:`Deltas` (``deltas``): the delta itself, for code that batches reports.

``services.apply`` stays the one writer: a submitted delta reaches it through the
stream's flush.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from dagstream_app.services import Delta

__all__ = ["BufferFull", "Deltas", "EngineState", "Reporter", "Reports", "RunReports", "deltas"]

R = TypeVar("R")
# The transitions an engine makes itself (people's go through commands).
EngineState = Literal["paused", "running", "cancelled"]


class BufferFull(RuntimeError):
    """``stream.nowait`` refused a report: ``ENGINE_BUFFER`` reports wait for the database.

    Await a report or :meth:`DagStream.flush` to let it catch up.
    """


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


class Reporter(Reports[None]):
    """``stream.nowait``: the reports that return at once.

    Each queues its report for the next flush (within milliseconds) and returns
    None; a refusal is raised by the stream's next call, ``flush()`` or
    ``close()``. With ``ENGINE_BUFFER`` reports waiting, the async stream's
    raises :class:`BufferFull` and the sync stream's blocks until there is room.
    """

    __slots__ = ("submit",)

    def __init__(self, submit: Callable[[Delta], None]) -> None:
        self.submit = submit


class Deltas(RunReports[Delta]):
    """The reports as :class:`~services.Delta` values, not sent: ``deltas.node_state(...)``
    builds what ``stream.submit`` or ``services.apply`` take, checked by the same types."""

    __slots__ = ()

    @staticmethod
    def submit(delta: Delta) -> Delta:
        return delta


deltas = Deltas()
