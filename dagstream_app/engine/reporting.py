"""The engine's kinds of report handle, over the reports written once in
:mod:`dagstream_app.services.reports` (``Reports`` / ``RunReports``). What a report
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

from dagstream_app.services import Delta
from dagstream_app.services.reports import EngineState, Reports, RunReports

__all__ = ["BufferFull", "Deltas", "EngineState", "Reporter", "Reports", "RunReports", "deltas"]


class BufferFull(RuntimeError):
    """``stream.nowait`` refused a report: ``ENGINE_BUFFER`` reports wait for the database.

    Await a report or :meth:`DagStream.flush` to let it catch up.
    """


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
