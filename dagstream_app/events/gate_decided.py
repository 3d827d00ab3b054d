"""``gate_decided``: a person (or the system) decided a gate."""

from __future__ import annotations

from django.utils.translation import gettext as _

from dagstream_app.dagviews import Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.regions import run_gate_html
from dagstream_app.vocabulary import (
    DECISION_TO_GATE_STATUS,
    Decision,
    EventPayload,
    NodeId,
    status_word,
)


class GateDecided(EventPayload, tag="gate_decided"):
    node_id: NodeId
    decision: Decision
    feedback: str
    decided_by: str


def reduce(work: Working, event: EventData) -> None:
    decision = event["decision"]
    work.settle_gate(
        event["node_id"],
        DECISION_TO_GATE_STATUS[decision],
        decision,
        event["ts"],
        feedback=event.get("feedback") or "",
        decided_by=event.get("decided_by") or "",
    )


def describe(event: EventData, name: Namer) -> Wording:
    who = event.get("decided_by") or _("the system")
    decision = str(event["decision"])
    past = status_word(DECISION_TO_GATE_STATUS.get(decision) or decision)
    text = _("%(decision)s by %(who)s") % {"decision": past, "who": who}
    return Wording(icon="gate", tone="info", subject=name(event["node_id"]), text=text)


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The gate's card, replaced by the decided one."""
    return [(None, run_gate_html(dag_id, work, event["node_id"], perms[0], oob=True))]


KIND = EventKind(
    GateDecided,
    reduce,
    describe,
    fragments,
    reads=frozenset({"gate"}),
    redraws=frozenset({"gantt", "groups"}),
)
