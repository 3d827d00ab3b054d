"""Votes on a gate that needs a quorum: each person's vote, and the decision they make.

A gate opened with ``quorum=N`` is decided by N approvals from distinct people
(a modify counts as one, its feedback kept), or by the first reject. Each vote
is appended to the gate's ``votes`` and emitted as ``gate_voted`` inside the
caller's :func:`.flush.change`, under the run's row lock: votes racing from
several server processes queue there, so each person's vote counts once and the
gate is decided once (the same guarantee as the first decision winning a plain
gate). The decision carries every vote; the engine reads it once, from the row.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from dagstream_app import protocol
from dagstream_app.errors import Conflict
from dagstream_app.events.gate_voted import GateVoted
from dagstream_app.models import Gate
from dagstream_app.services.flush import Flush
from dagstream_app.vocabulary import Decision, verb

__all__ = ["cast_vote", "outcome"]

# Gate.decided_by's length: the voters' names are cut to it.
_DECIDED_BY_LENGTH = 150


def outcome(votes: list[dict[str, Any]], quorum: int) -> tuple[Decision, str, str] | None:
    """The decision ``votes`` make (decision, feedback, decided_by), or None if not yet.

    A reject decides reject, with its feedback. Otherwise ``quorum`` approvals
    decide: modify if any of them modified (their feedback, joined), else approve
    (the notes given, joined).
    """
    for vote in votes:
        if vote["decision"] == "reject":
            return "reject", vote["feedback"], vote["voter"]
    if len(votes) < quorum:
        return None
    modified = [v for v in votes if v["decision"] == "modify"]
    counted = modified or votes
    feedback = "\n\n".join(v["feedback"] for v in counted if v["feedback"])
    who = ", ".join(v["voter"] for v in votes)
    if len(who) > _DECIDED_BY_LENGTH:
        who = who[: _DECIDED_BY_LENGTH - 1] + "…"
    return ("modify" if modified else "approve"), feedback, who


def cast_vote(flush: Flush, gate: Gate, voter: str, decision: str, feedback: str) -> Gate:
    """Record ``voter``'s vote on the pending ``gate`` (emits ``gate_voted``), and the
    decision if it makes one (emits ``gate_decided``, wakes the engine).

    A second vote by the same person is a :class:`Conflict` that changes nothing.
    """
    for vote in gate.votes:
        if vote["voter"] == voter:
            raise Conflict(
                _("You already voted on this gate: %(decision)s.")
                % {"decision": verb(vote["decision"])}
            )
    votes = [
        *gate.votes,
        {"voter": voter, "decision": decision, "feedback": feedback, "at": flush.ts},
    ]
    decided = outcome(votes, gate.quorum)
    changes: dict[str, Any] = {"votes": votes}
    if decided is not None:
        final, final_feedback, decided_by = decided
        changes.update(
            status=protocol.DECISION_TO_GATE_STATUS[final],
            feedback=final_feedback,
            decided_by=decided_by,
            decided_at=flush.now,
        )
    # Conditional update, as for a plain gate's decision: it is still pending.
    won = Gate.objects.filter(pk=gate.pk, status=Gate.Status.PENDING).update(**changes)
    gate.refresh_from_db()
    if not won:
        raise Conflict(_("Gate %(node)r was decided meanwhile.") % {"node": gate.node_id})
    flush.emit(
        GateVoted(
            node_id=gate.node_id,
            voter=voter,
            decision=decision,  # type: ignore[arg-type]
            approvals=sum(1 for v in votes if v["decision"] != "reject"),
            quorum=gate.quorum,
            feedback=feedback,
        )
    )
    if decided is not None:
        flush.emit(
            protocol.GateDecided(
                node_id=gate.node_id,
                decision=decided[0],
                feedback=decided[1],
                decided_by=decided[2],
            )
        )
        flush.wake_engine = True
    return gate
