"""WebSocket consumers: ordered, exactly-once delivery of a DAG's events.

* :mod:`.base`: :class:`HubConsumer`, every socket's base, fed by its process's
  hub; what a process's sockets share per message (:func:`shared`).
* :mod:`.limits`: what a client may cost: the frame gate (rate, then 4008 for a
  flood) and the replay budget each credential's sockets share.
* :mod:`.stream`: :class:`DagStreamConsumer`, the delivery rules of a DAG's stream.
* :mod:`.json_stream`: :class:`DagJsonConsumer`, protocol v1 (``/ws/dags/<id>/``).
* :mod:`.html_stream`: :class:`DagHtmlConsumer`, the dashboard (``/ws/dags/<id>/html/``).
* :mod:`.listing`: :class:`ListConsumer`, the base of the live lists across
  runs: admitted by one permission, re-checked on the hub's tick.
* :mod:`.index`: :class:`DagIndexConsumer`, the run list's rows (``/ws/dags/``).
* :mod:`.inbox`: :class:`GateInboxConsumer`, the gate inbox (``/ws/gates/``).
* :mod:`.presence`: :class:`PresenceConsumer`, who is on a run's page
  (``/ws/dags/<id>/presence/``), from the channel layer alone.
"""

from __future__ import annotations

from dagstream_app.consumers.base import HubConsumer, shared, shared_result
from dagstream_app.consumers.html_stream import DagHtmlConsumer
from dagstream_app.consumers.inbox import GateInboxConsumer
from dagstream_app.consumers.index import DagIndexConsumer
from dagstream_app.consumers.json_stream import DagJsonConsumer
from dagstream_app.consumers.stream import DagStreamConsumer

__all__ = [
    "DagHtmlConsumer",
    "DagIndexConsumer",
    "DagJsonConsumer",
    "DagStreamConsumer",
    "GateInboxConsumer",
    "HubConsumer",
    "shared",
    "shared_result",
]
