"""``gate_voted``: a person voted on a gate that needs a quorum of approvals.

Each vote is an event; the vote that reaches the quorum (or any reject) is
followed, in the same flush, by the gate's ``gate_decided``.
"""

from __future__ import annotations

import msgspec
from django.utils.translation import gettext as _

from dagstream_app.dagviews import VoteView, Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.regions import gate_votes_html
from dagstream_app.vocabulary import Decision, EventPayload, NodeId, Quorum


class GateVoted(EventPayload, tag="gate_voted"):
    node_id: NodeId
    voter: str
    decision: Decision
    approvals: int  # approve and modify votes so far, this one included
    quorum: Quorum
    feedback: str = ""


def reduce(work: Working, event: EventData) -> None:
    gate = work.gates.get(event["node_id"])
    if gate is None or any(v.voter == event["voter"] for v in gate.votes):
        return  # live fragments read the gate's row: it may hold this vote already
    vote = VoteView(
        voter=event["voter"],
        decision=event["decision"],
        feedback=event.get("feedback") or "",
        at=event["ts"],
    )
    work.gates[gate.node_id] = msgspec.structs.replace(gate, votes=[*gate.votes, vote])


def describe(event: EventData, name: Namer) -> Wording:
    said = {
        "approve": _("%(who)s approved (%(count)s of %(quorum)s)"),
        "modify": _("%(who)s approved with changes (%(count)s of %(quorum)s)"),
        "reject": _("%(who)s rejected"),
    }[str(event["decision"])]
    text = said % {"who": event["voter"], "count": event["approvals"], "quorum": event["quorum"]}
    return Wording(icon="gate", tone="info", subject=name(event["node_id"]), text=text)


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The gate's votes, replaced (its feedback drafts stay as they are)."""
    gate = work.gates.get(event["node_id"])
    if gate is None:
        return []
    return [(None, gate_votes_html(dag_id, gate, oob=True))]


KIND = EventKind(GateVoted, reduce, describe, fragments, reads=frozenset({"gate"}))
