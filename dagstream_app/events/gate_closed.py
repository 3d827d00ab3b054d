"""``gate_closed``: a run ended while a gate still waited; the gate closed undecided."""

from __future__ import annotations

from typing import Literal

from django.utils.translation import gettext as _

from dagstream_app.dagviews import Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.regions import run_gate_html
from dagstream_app.vocabulary import EventPayload, NodeId

# How the run ended: the terminal execution_state that follows the gate_closed events.
RunEnd = Literal["completed", "failed", "cancelled"]


def ended_as(reason: str) -> str:
    """How the run ended, in words (translated when called: this module is imported
    where settings may not be configured yet, a Celery worker's start)."""
    said = {
        "completed": _("the run completed"),
        "failed": _("the run failed"),
        "cancelled": _("the run was cancelled"),
    }
    return said.get(reason) or _("the run ended (%(reason)s)") % {"reason": reason}


class GateClosed(EventPayload, tag="gate_closed"):
    node_id: NodeId
    reason: RunEnd


def reduce(work: Working, event: EventData) -> None:
    work.settle_gate(event["node_id"], "closed", None, event["ts"])


def describe(event: EventData, name: Namer) -> Wording:
    reason = ended_as(str(event["reason"]))
    return Wording(
        icon="gate",
        tone="cancelled",
        subject=name(event["node_id"]),
        text=_("closed: %(reason)s") % {"reason": reason},
    )


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The gate's card, replaced by the closed one (no decision buttons)."""
    return [(None, run_gate_html(dag_id, work, event["node_id"], perms[0], oob=True))]


KIND = EventKind(
    GateClosed,
    reduce,
    describe,
    fragments,
    reads=frozenset({"gate"}),
    redraws=frozenset({"gantt", "groups"}),
)
