"""The one place that changes dagstream state (DAGs, nodes, edges, gates, events).

Callers use the functions below as ``services.name(...)``; each job has a module
of its own in this package, and only this package calls them:

- :mod:`.validation`: what an engine delta is, its shape checked before the
  database is touched;
- :mod:`.structures`: each DAG's node ids and edges, remembered per process
  (and its ``structure_version``);
- :mod:`.flush`: the batched write of one transaction (row lock, events with the
  DAG's next seqs, one multi-row INSERT, one UPDATE of nodes, one of the DAG,
  publishing after commit), with :mod:`.sql` its SQL;
- :mod:`.engine_deltas`: :func:`apply`, any number of engine deltas in one flush;
- :mod:`.reports`: the engine's reports, written once over a ``submit`` hook, and
  :func:`reports`, a DAG's reports applied one at a time;
- :mod:`.reporting`: :func:`create_dag`, :func:`open_gate`, :func:`heartbeat`;
- :mod:`.actors` and :mod:`.decisions`: people's actions (decide a gate, pause,
  resume, cancel, force-end), authorized, idempotent by command id, first wins;
- :mod:`.deletion`: deleting a finished run;
- :mod:`.holding`: tasks an engine hands back while its run waits for a person;
- :mod:`.outbox`: the notifications of gates, written with the gate and sent later
  (:mod:`dagstream_app.notify` sends them), and :mod:`.links`: deciding through a
  notification's signed link.

Graph checks are :mod:`dagstream_app.graph`'s (the reference runner shares
them) and publishing is :mod:`dagstream_app.broadcast`'s.

These functions are synchronous; async callers wrap them with
``database_sync_to_async`` (the engine API and consumers do).
"""

from __future__ import annotations

from dagstream_app.errors import (
    Conflict,
    DagstreamError,
    Forbidden,
    InvalidDelta,
    NotFound,
    RateLimited,
)
from dagstream_app.layer_messages import PublishedEvent
from dagstream_app.services.actors import Actor, Person
from dagstream_app.services.decisions import (
    CONTROL_TRANSITIONS,
    GATE_CLOSED,
    control,
    decide_gate,
    force_cancel,
)
from dagstream_app.services.deletion import delete_dag
from dagstream_app.services.engine_deltas import DeltaResult, Flushed, apply
from dagstream_app.services.holding import (
    expired_held_gates,
    heartbeat_held,
    hold_task,
    holds,
    release_held,
)
from dagstream_app.services.links import decide_by_link
from dagstream_app.services.reporting import create_dag, heartbeat, open_gate
from dagstream_app.services.reports import DirectReports, Reports, RunReports, reports
from dagstream_app.services.validation import Delta, DeltaKind

__all__ = [
    "CONTROL_TRANSITIONS",
    "GATE_CLOSED",
    "Actor",
    "Conflict",
    "DagstreamError",
    "Delta",
    "DeltaKind",
    "DeltaResult",
    "DirectReports",
    "Flushed",
    "Forbidden",
    "InvalidDelta",
    "NotFound",
    "Person",
    "PublishedEvent",
    "RateLimited",
    "Reports",
    "RunReports",
    "apply",
    "control",
    "create_dag",
    "decide_by_link",
    "decide_gate",
    "delete_dag",
    "expired_held_gates",
    "force_cancel",
    "heartbeat",
    "heartbeat_held",
    "hold_task",
    "holds",
    "open_gate",
    "release_held",
    "reports",
]
