"""Every event type, each declared once in a module of its own (its home).

A home declares its payload struct (the wire format), its reducer, its timeline
wording, its live fragments, what those need read and which once-per-message
regions it redraws, as one :class:`EventKind`; :data:`BUILTIN` lists them in the
protocol's order (the order of the JSON Schema's ``oneOf``). Everything else looks
a type up here: :mod:`dagstream_app.protocol` (validation, JSON Schema),
:mod:`dagstream_app.replay`, :mod:`dagstream_app.render.timeline`,
:mod:`dagstream_app.live` and :mod:`dagstream_app.state`.

Adding an event type: write its home (copy ``cost_update.py``), add its ``KIND`` to
:data:`BUILTIN`, regenerate the TypeScript types and add its entry to the JS store
(docs/protocol.md, "Adding an event type").
"""

from __future__ import annotations

from dagstream_app.events import (
    cost_update,
    dag_mutated,
    edge_active,
    error,
    execution_complete,
    execution_state,
    gate_closed,
    gate_decided,
    gate_voted,
    human_gate_waiting,
    node_state,
)
from dagstream_app.events.registry import (
    STRUCTS,
    EventData,
    EventKind,
    LiveRead,
    Redraw,
    Wording,
    kind_of,
    kinds,
    named_nodes,
    register,
    unregister,
)

BUILTIN: tuple[EventKind, ...] = (
    node_state.KIND,
    edge_active.KIND,
    dag_mutated.KIND,
    cost_update.KIND,
    execution_complete.KIND,
    human_gate_waiting.KIND,
    gate_voted.KIND,
    gate_decided.KIND,
    gate_closed.KIND,
    execution_state.KIND,
    error.KIND,
)
for _kind in BUILTIN:
    register(_kind)

__all__ = [
    "BUILTIN",
    "STRUCTS",
    "EventData",
    "EventKind",
    "LiveRead",
    "Redraw",
    "Wording",
    "kind_of",
    "kinds",
    "named_nodes",
    "register",
    "unregister",
]
