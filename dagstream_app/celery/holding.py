"""Tasks that wait for a person give their worker slot back: held in the database, sent again.

A task of a paused run about to start, and a gate task with no decision yet, hand
their message to :func:`hold` (:func:`dagstream_app.services.hold_task`) and end
without running: the slot is free at once. Every worker's
:class:`~dagstream_app.celery.releasing.ReleaseHeld` then looks for held tasks whose
wait is over and gives each, once across all processes, to :func:`carry_out`: it
sends the message again (the run resumed, the gate was decided), carries out a
budget gate's decision (raise the budget and resume, or cancel), or carries out a
cancel. A budget gate is no task at all: its decision needs no free slot.

Django must be set up before this module is imported.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import TYPE_CHECKING, Any

from celery.canvas import Signature, signature
from kombu import serialization

from dagstream_app import services, state
from dagstream_app.celery.cancelling import cancel_run
from dagstream_app.celery.options import options
from dagstream_app.engine import GateDecision, deltas
from dagstream_app.models import Gate, HeldTask
from dagstream_app.protocol import TERMINAL_STATUSES

if TYPE_CHECKING:
    from dagstream_app.celery.signals import Active

__all__ = ["carry_out", "hold", "hold_budget_gate", "release"]


def hold(task: Any, active: Active, reason: str) -> bool:
    """Hold the message ``task`` runs from, to be sent again as it came once the wait is
    over; False if the run has ended (nothing to send again)."""
    request = task.request
    message = _encode(task.signature_from_request(request))
    return services.hold_task(active.run.dag_id, request.id, active.node, reason, message)


def hold_budget_gate(dag_id: str, node_id: str) -> None:
    """Remember that the budget gate at ``node_id`` waits: its decision is carried out here."""
    services.hold_task(dag_id, f"{dag_id}/{node_id}", node_id, HeldTask.Reason.BUDGET_GATE)


def release() -> int:
    """Decide gates whose timeout passed, then carry out every held task whose wait is over."""
    for dag_id, node_id, default in services.expired_held_gates():
        with contextlib.suppress(services.Conflict):  # decided a moment ago: first wins
            services.decide_gate(dag_id, node_id, default)
    return services.release_held(carry_out)


def carry_out(held: HeldTask) -> None:
    """What a held task's wait ended in: send it again, carry out a decision, or a cancel."""
    status = held.dag.status
    if status == "cancelling":
        cancel_run(held.dag_id)  # its node is cancelled with the others
    elif status in TERMINAL_STATUSES:
        return  # the run ended meanwhile: nothing to start
    elif held.reason == HeldTask.Reason.BUDGET_GATE:
        _carry_out_budget_gate(held)
    else:
        _decode(held.message).apply_async()


def _carry_out_budget_gate(held: HeldTask) -> None:
    """Approve / modify: raise the budget, complete the gate's node, resume. Reject: cancel."""
    from dagstream_app.runner.budget import BudgetPolicy

    gate = state.gate(held.dag_id, held.node_id)
    if gate is None or gate.status in (Gate.Status.PENDING, Gate.Status.CLOSED):
        return
    decision = GateDecision.from_gate(gate)
    output: dict[str, Any] = {"decision": decision.decision, "decided_by": decision.decided_by}
    if decision.decision == "reject":
        cancel_run(held.dag_id)
        return
    shown = gate.presentation
    budget = BudgetPolicy(shown["budget"], shown["step"], shown["spent"]).raise_for(decision)
    # One transaction; the resume is refused alone if a person resumed the run already.
    services.apply(
        held.dag_id,
        [
            deltas.cost(budget=budget),
            deltas.node_state(held.node_id, "completed", output={**output, "budget": budget}),
            deltas.set_state("running"),
        ],
    )


def _encode(sig: Signature) -> str:
    """A signature in the app's task serializer (so any argument it can send survives)."""
    serializer = options.app.conf.task_serializer
    content_type, encoding, data = serialization.dumps(dict(sig), serializer=serializer)  # type: ignore[no-untyped-call]
    raw = data if isinstance(data, bytes) else data.encode(encoding)
    return json.dumps(
        {"content_type": content_type, "encoding": encoding, "body": base64.b64encode(raw).decode()}
    )


def _decode(message: str) -> Signature:
    held = json.loads(message)
    body = serialization.loads(  # type: ignore[no-untyped-call]
        base64.b64decode(held["body"]),
        held["content_type"],
        held["encoding"],
        accept={held["content_type"]},
    )
    return signature(body, app=options.app)
