"""The engine API: how a pipeline, agent or ETL job reports a DAG and hears back.

- :mod:`.reporting`: the reports (``node_state``, ``edge_active``, ``mutate``,
  ``cost``, ``error``, ``complete``, ``fail``, ``set_state``), written once over
  a ``submit`` hook; ``stream.nowait``'s :class:`Reporter`; :class:`BufferFull`;
  ``deltas``, the same reports as values to batch.
- :mod:`.stream`: :class:`DagStream`, the async handle: its report queue and
  flusher (one transaction for every report made during the previous flush),
  heartbeat, gates and commands.
- :mod:`.control`: the DAG's control group, heard as "look now".
- :mod:`.decisions`: what comes back: :class:`GateDecision`, :class:`Command`.
- :mod:`.outage`: waiting out a database that does not answer (``DB_RETRY_SECONDS``),
  then :class:`DatabaseUnavailable`.
- :mod:`.sync`: :class:`SyncDagStream`, the same operations for synchronous code,
  on a :class:`LoopThread` (:mod:`.loop`) of its own or a shared one.

``services`` stays the one writer: every report reaches ``services.apply``
through the stream's flush. See ``docs/engine.md``.
"""

from __future__ import annotations

from dagstream_app.engine.decisions import (
    Command,
    CommandType,
    Decision,
    DecisionOutput,
    GateDecision,
    Vote,
)
from dagstream_app.engine.loop import LoopThread
from dagstream_app.engine.outage import DatabaseUnavailable
from dagstream_app.engine.reporting import (
    BufferFull,
    Deltas,
    EngineState,
    Reporter,
    Reports,
    RunReports,
    deltas,
)
from dagstream_app.engine.stream import DagStream
from dagstream_app.engine.sync import SyncDagStream

__all__ = [
    "BufferFull",
    "Command",
    "CommandType",
    "DagStream",
    "DatabaseUnavailable",
    "Decision",
    "DecisionOutput",
    "Deltas",
    "EngineState",
    "GateDecision",
    "LoopThread",
    "Reporter",
    "Reports",
    "RunReports",
    "SyncDagStream",
    "Vote",
    "deltas",
]
