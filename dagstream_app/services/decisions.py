"""People's actions on a run: gate decisions, pause / resume / cancel, force-ending.

Each is authorized first (:func:`.actors.authorized`), then runs in one locked
transaction (:func:`.flush.change`) whose events are published after commit and
which wakes the engine. A ``command_id`` makes a client's retry safe: a user's
repeated id is applied once (and answered as if applied), an id reused for
another command is a :class:`Conflict`. Under the row lock the first decision
wins.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from dagstream_app import protocol
from dagstream_app.conf import config
from dagstream_app.errors import Conflict, InvalidDelta, NotFound
from dagstream_app.models import CommandReceipt, Dag, Gate, Node
from dagstream_app.permissions import check_assigned, voter_of
from dagstream_app.services.actors import Actor, authorized
from dagstream_app.services.flush import Flush, change
from dagstream_app.services.structures import structure_of
from dagstream_app.services.validation import refuse_nul
from dagstream_app.services.votes import cast_vote
from dagstream_app.state import engine_stale, gate_dict
from dagstream_app.vocabulary import status_word, verb

__all__ = ["CONTROL_TRANSITIONS", "GATE_CLOSED", "control", "decide_gate", "force_cancel"]

# The refusal of a decision on a gate whose run ended first (see Flush.finish).
GATE_CLOSED = gettext_noop("The run has ended; this gate was closed.")  # translated when raised

# Person-initiated transitions, delivered to the engine through commands():
# the states each may come from, and the state it leads to.
CONTROL_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"running", "paused"}), "cancelling"),
}


def _is_repeat(
    flush: Flush, actor: Actor, command_id: protocol.CommandId | None, kind: str
) -> bool:
    """Record ``command_id``; True if this user already had it applied on this DAG."""
    if command_id is None or actor is None:
        return False
    receipt, created = CommandReceipt.objects.get_or_create(
        dag=flush.dag, user=actor, command_id=str(command_id), defaults={"type": kind}
    )
    if not created and receipt.type != kind:
        # Not a repeat but a different command: acking it would hide that it never ran.
        raise Conflict(f"Command id {command_id!r} was already used for {receipt.type}.")
    return not created


def control(
    dag_id: str, action: str, *, actor: Actor, command_id: protocol.CommandId | None = None
) -> Dag:
    """Pause, resume or cancel on a person's behalf; the engine gets it via commands().

    ``force_cancel`` ends a run whose engine is not responding (:func:`force_cancel`):
    the dashboard and admin offer it beside the others, through this one dispatch.
    """
    if action == "force_cancel":
        return force_cancel(dag_id, actor=actor, command_id=command_id)
    if action not in CONTROL_TRANSITIONS:
        raise InvalidDelta(f"Unknown control action {action!r}; use pause, resume or cancel.")
    authorized(actor, "control", dag_id)
    allowed_from, target = CONTROL_TRANSITIONS[action]
    with change(dag_id) as flush:
        if _is_repeat(flush, actor, command_id, action):
            return flush.dag
        if flush.dag.status not in allowed_from:
            raise Conflict(
                _("Cannot %(action)s a DAG that is %(status)s.")
                % {"action": verb(action), "status": status_word(flush.dag.status)}
            )
        flush.dag.status = target
        flush.emit(protocol.ExecutionState(state=target), command=action)  # type: ignore[arg-type]
        flush.wake_engine = True
        return flush.dag


def force_cancel(dag_id: str, *, actor: Actor, command_id: protocol.CommandId | None = None) -> Dag:
    """End a run whose engine is not responding: ``cancelled``, on a person's word.

    Refused with :class:`Conflict` while the engine still reports (cancel
    instead). Its unfinished nodes are cancelled and its pending gates closed
    (nobody decided them), each with its event, so every page and client sees
    the run end; an engine that comes back finds the run over.
    """
    person = authorized(actor, "control", dag_id)
    with change(dag_id) as flush:
        dag = flush.dag
        if _is_repeat(flush, person, command_id, "force_cancel"):
            return dag
        flush.refuse_if_ended()
        if not engine_stale(dag.status, dag.engine_seen_at, flush.now):
            limit = config().engine_stale_seconds
            raise Conflict(
                _(
                    "The engine of DAG %(run)r reported in the last %(limit)s s; cancel it"
                    " instead (force-ending is for runs whose engine is gone)."
                )
                % {"run": dag_id, "limit": f"{limit:g}"}
            )
        note = f"The run was ended by {person.get_username()}: its engine was not responding."
        flush.structure = structure_of(dag)
        open_nodes = Node.objects.filter(dag=dag).exclude(
            status__in=protocol.FINISHED_NODE_STATUSES
        )
        for node_id in open_nodes.values_list("node_id", flat=True):
            flush.node_state(protocol.NodeState(node_id=node_id, status="cancelled"))
        flush.emit(protocol.ErrorEvent(message=note))
        flush.finish("cancelled")
        flush.wake_engine = True
        return dag


def _already_decided(gate: Gate) -> str:
    said = verb(str(gate.decision))
    return _("Gate %(node)r was already decided: %(decision)s.") % {
        "node": gate.node_id,
        "decision": said,
    }


def _check_decision(node_id: str, decision: str, feedback: str) -> None:
    refuse_nul("node id", node_id)
    refuse_nul("feedback", feedback)
    if decision not in protocol.DECISION_TO_GATE_STATUS:
        raise InvalidDelta(f"decision must be approve, reject or modify, not {decision!r}.")
    if decision == "modify" and not feedback.strip():
        raise InvalidDelta(_("A modify decision needs feedback."))
    limit = config().feedback_max_length
    if len(feedback) > limit:
        raise InvalidDelta(
            _("Feedback is %(length)s characters; the limit is %(limit)s.")
            % {"length": len(feedback), "limit": limit}
        )


def decide_gate(
    dag_id: str,
    node_id: str,
    decision: str,
    *,
    feedback: str | None = None,
    actor: Actor = None,
    command_id: protocol.CommandId | None = None,
) -> Gate:
    """Record a decision; the first one wins, later ones raise :class:`Conflict`.

    On a gate with ``assignees`` only they (or members of their groups) may
    decide (:func:`~dagstream_app.permissions.check_assigned`); on one with a
    ``quorum`` above 1 a person's decision is their vote (:func:`.votes.cast_vote`),
    and a second vote by them a :class:`Conflict`.

    A gate whose run has ended is closed: a decision on it is a :class:`Conflict`
    too (:data:`GATE_CLOSED`), with no winner to name.

    ``actor`` None is the system (a timeout's default): no permission check and
    an empty ``decided_by``.
    """
    feedback = feedback or ""
    _check_decision(node_id, decision, feedback)
    decided_by = ""
    voter = None
    if actor is not None:
        decided_by = authorized(actor, "decide", dag_id).get_username()
        voter = voter_of(actor)
    with change(dag_id) as flush:
        repeat = _is_repeat(flush, actor, command_id, "human_decision")
        gate = Gate.objects.filter(dag=flush.dag, node_id=node_id).first()
        if gate is None:
            raise NotFound(
                _("No gate at node %(node)r of DAG %(run)r.") % {"node": node_id, "run": dag_id}
            )
        if repeat:
            return gate
        if gate.status == Gate.Status.CLOSED:
            raise Conflict(_(GATE_CLOSED))
        if gate.status != Gate.Status.PENDING:
            raise Conflict(_already_decided(gate), gate_dict(gate))
        if voter is not None:
            check_assigned(voter, gate.assignees)
            if gate.quorum > 1:
                return cast_vote(flush, gate, voter.username, decision, feedback)
        # Conditional update: first wins even if a caller bypassed the row lock.
        won = Gate.objects.filter(pk=gate.pk, status=Gate.Status.PENDING).update(
            status=protocol.DECISION_TO_GATE_STATUS[decision],
            feedback=feedback,
            decided_by=decided_by,
            decided_at=flush.now,
        )
        gate.refresh_from_db()
        if not won:
            raise Conflict(_already_decided(gate), gate_dict(gate))
        flush.emit(
            protocol.GateDecided(
                node_id=node_id,
                decision=decision,  # type: ignore[arg-type]
                feedback=feedback,
                decided_by=decided_by,
            )
        )
        flush.wake_engine = True
        return gate
