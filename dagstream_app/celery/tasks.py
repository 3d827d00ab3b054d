"""What a task of a launched canvas can do beyond running: gates and cost.

``gate`` is a shared task (every Celery app has it once
:func:`~dagstream_app.celery.install` ran). A gate with no decision yet opens
(once), hands its message to the database and ends, so a gate nobody decides for
an hour holds no worker; once it is decided a worker sends the message again and
the gate returns the decision (see :mod:`.holding`). A budget gate is not a task:
:func:`report_cost` opens it and a worker carries out its decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import shared_task
from celery._state import get_current_task
from celery.exceptions import Ignore

from dagstream_app.celery.canvas import GATE_TASK
from dagstream_app.celery.signals import Active, current
from dagstream_app.celery.stamps import budget_step

if TYPE_CHECKING:
    from dagstream_app.engine import Decision, GateDecision


class GateRejected(Exception):
    """A person rejected a gate: the task fails, the rest of the chain is skipped."""

    says_it_all = True  # its message is what the node and the run's error show


def _active(what: str) -> Active:
    active = current()
    if active is None:
        raise RuntimeError(
            f"{what} works inside a task of a canvas started with dagstream_app.celery.launch()."
        )
    return active


def _wait_for_decision(
    presentation: dict[str, Any],
    *,
    timeout: float | None = None,
    default: Decision | None = None,
    assignees: Sequence[str] = (),
    quorum: int = 1,
) -> GateDecision:
    """This task's gate's decision; else open the gate (once), hold the task and end it."""
    from django.utils import timezone

    from dagstream_app import state
    from dagstream_app.celery import holding
    from dagstream_app.engine import GateDecision
    from dagstream_app.models import Gate
    from dagstream_app.services import Delta

    active = _active("A gate")
    run = active.run
    stream = run.writer.stream
    if active.quiet or stream is None:
        raise Ignore()  # the run has ended (or this node already finished): nothing to ask
    found = state.gate(run.dag_id, active.node)
    if found is not None and found.status == Gate.Status.CLOSED:
        active.quiet = True
        raise Ignore()  # its run ended undecided
    if found is not None and found.status != Gate.Status.PENDING:
        return GateDecision.from_gate(found)
    if found is None:
        due = None if timeout is None else timezone.now() + timedelta(seconds=timeout)
        args = {"node_id": active.node, "presentation": presentation, "quorum": quorum}
        args |= {"assignees": assignees, "timeout_at": due, "default": default}
        stream.submit(Delta("open_gate", args))
    active.quiet = True  # still waiting: the task sent again once it is decided reports
    holding.hold(get_current_task(), active, "gate")
    raise Ignore()


@shared_task(
    name=GATE_TASK, bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True
)
def gate(
    self: Any,
    *previous: Any,
    title: str,
    body: str = "",
    timeout: float | None = None,
    default: Decision | None = None,
    assignees: Sequence[str] = (),
    quorum: int = 1,
    **presentation: Any,
) -> dict[str, Any]:
    """A human gate in a chain: ``chain(draft.s(), gate.si(title="Publish?"), publish.s())``.

    Stops the chain until a person decides in the dashboard, the admin or over the
    protocol. Approve and modify return ``{"decision", "feedback", "decided_by"}``
    (the next task of the chain gets it as its first argument; ``"input"`` holds
    what the task before the gate returned when the gate is ``gate.s(...)``).
    Reject raises :class:`GateRejected`: the run fails and the rest is skipped.
    With ``timeout`` seconds, ``default`` is decided if nobody decides in time.
    ``assignees`` and ``quorum`` are as for :meth:`DagStream.gate
    <dagstream_app.engine.DagStream.gate>`; the output then lists every vote.
    """
    shown = {"title": title, "body": body, **presentation}
    if (timeout is None) != (default is None):
        raise ValueError("timeout and default go together.")
    decision = _wait_for_decision(
        shown, timeout=timeout, default=default, assignees=assignees, quorum=quorum
    )
    if decision.decision == "reject":
        raise GateRejected(decision.rejection())
    result: dict[str, Any] = {**decision.as_output()}
    if previous:
        result["input"] = previous[0]
    return result


def report_cost(amount: float) -> float | None:
    """Add ``amount`` to the spent total of the run the calling task belongs to.

    Call it from inside a task of a launched canvas; it returns the run's new
    total (None if the run has ended). When the total reaches the run's budget,
    the run pauses (tasks not started wait) and a budget gate asks whether to go
    on, as with the reference runner.
    """
    from dagstream_app import state
    from dagstream_app.services import Conflict

    active = _active("report_cost()")
    run = active.run
    stream = run.writer.stream
    if active.quiet or stream is None:
        return None
    try:
        stream.cost(add=amount)  # InvalidDelta for a bad amount: the caller's error
    except Conflict:
        return None
    dag = state.dag(run.dag_id)
    if dag is None:
        return None
    if dag.budget is not None and dag.spent >= dag.budget and dag.status == "running":
        _open_budget_gate(active, dag.budget, dag.spent)
    return dag.spent


def _open_budget_gate(active: Active, budget: float, spent: float) -> None:
    """Pause the run and open a budget gate after this task (unless another process just did).

    The gate is a node of its own, no task: a worker carries out its decision
    (:mod:`.holding`), so it waits without a slot and needs none to go on.
    """
    from dagstream_app import services
    from dagstream_app.celery import holding
    from dagstream_app.runner.budget import BudgetPolicy

    run = active.run
    assert run.writer.stream is not None
    try:
        run.writer.stream.set_state("paused")
    except services.Conflict:
        return  # already paused: by a person, or by the task that crossed the budget first
    run.set_status("paused")
    task = get_current_task()
    request_stamps = (task.request.stamps if task is not None else None) or {}
    run.refresh()
    policy = BudgetPolicy(budget, budget_step(request_stamps) or budget, spent)
    question = policy.next_gate(set(run.labels))
    assert isinstance(question.presentation, dict)
    run.add_node(question.id, question.label or question.id, after=active.node)
    holding.hold_budget_gate(run.dag_id, question.id)
    services.open_gate(run.dag_id, question.id, question.presentation)
