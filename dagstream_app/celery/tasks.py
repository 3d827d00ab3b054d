"""What a task of a launched canvas can do beyond running: gates, budget gates, cost.

``gate`` and ``budget_gate`` are shared tasks (every Celery app has them once
:func:`~dagstream_app.celery.install` ran). A gate waits for its decision in its
worker slot for ``gate_hold`` seconds at most, then retries itself after
``gate_poll`` seconds, so a gate nobody decides for an hour holds no worker for
an hour, and a worker restarted meanwhile loses nothing (the gate is
``acks_late``; the decision is stored with the DAG).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from celery import shared_task
from celery._state import get_current_task
from celery.exceptions import Ignore

from dagstream_app.celery.canvas import BUDGET_GATE_TASK, GATE_TASK
from dagstream_app.celery.options import options
from dagstream_app.celery.signals import Active, current
from dagstream_app.celery.stamps import budget_step, inherited_stamps

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
    task: Any,
    presentation: dict[str, Any],
    *,
    timeout: float | None = None,
    default: Decision | None = None,
) -> GateDecision:
    """Open this task's gate (once) and return its decision, or retry to look again later."""
    from dagstream_app import state
    from dagstream_app.engine import deltas

    active = _active("A gate")
    run = active.run
    if active.quiet or run.writer.engine is None:
        raise Ignore()  # the run has ended (or this node already finished): nothing to ask
    if state.gate(run.dag_id, active.node) is None:
        run.write([deltas.node_state(active.node, "waiting")])
    hold = options.gate_hold
    decision = run.writer.gate(active.node, presentation, hold, timeout=timeout, default=default)
    if decision is None:
        raise task.retry(countdown=options.gate_poll)
    return decision


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
    **presentation: Any,
) -> dict[str, Any]:
    """A human gate in a chain: ``chain(draft.s(), gate.si(title="Publish?"), publish.s())``.

    Stops the chain until a person decides in the dashboard, the admin or over the
    protocol. Approve and modify return ``{"decision", "feedback", "decided_by"}``
    (the next task of the chain gets it as its first argument; ``"input"`` holds
    what the task before the gate returned when the gate is ``gate.s(...)``).
    Reject raises :class:`GateRejected`: the run fails and the rest is skipped.
    With ``timeout`` seconds, ``default`` is decided if nobody decides in time.
    """
    shown = {"title": title, "body": body, **presentation}
    if timeout is None:
        decision = _wait_for_decision(self, shown)
    else:
        decision = _wait_for_decision(self, shown, timeout=timeout, default=default)
    if decision.decision == "reject":
        raise GateRejected(decision.rejection())
    result: dict[str, Any] = {**decision.as_output()}
    if previous:
        result["input"] = previous[0]
    return result


@shared_task(
    name=BUDGET_GATE_TASK, bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True
)
def budget_gate(self: Any, presentation: dict[str, Any]) -> dict[str, Any]:
    """The "Budget reached: continue?" gate :func:`report_cost` opens (never put it yourself).

    Approve raises the budget by the run's step (modify with a number: by that) and
    resumes the run; reject cancels the run.
    """
    from dagstream_app.runner.budget import BudgetPolicy
    from dagstream_app.services import Conflict

    decision = _wait_for_decision(self, presentation)
    run = _active("A budget gate").run
    if decision.decision == "reject":
        run.cancel()
        return {"decision": "reject", "decided_by": decision.decided_by}
    policy = BudgetPolicy(presentation["budget"], presentation["step"], presentation["spent"])
    budget = policy.raise_for(decision)
    stream = run.writer.stream
    assert stream is not None
    stream.cost(budget=budget)
    with contextlib.suppress(Conflict):  # a person resumed (or ended) the run meanwhile
        stream.set_state("running")
    return {"decision": decision.decision, "decided_by": decision.decided_by, "budget": budget}


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
    """Pause the run and send a budget gate for it (unless another process just did)."""
    from dagstream_app.runner.budget import BudgetPolicy
    from dagstream_app.services import Conflict

    run = active.run
    assert run.writer.stream is not None
    try:
        run.writer.stream.set_state("paused")
    except Conflict:
        return  # already paused: by a person, or by the task that crossed the budget first
    run.set_status("paused")
    task = get_current_task()
    request_stamps = (task.request.stamps if task is not None else None) or {}
    run.refresh()
    policy = BudgetPolicy(budget, budget_step(request_stamps) or budget, spent)
    question = policy.next_gate(set(run.labels))
    sig = budget_gate.si(presentation=question.presentation)
    sig.freeze()
    run.runtime_ids[sig.id] = question.id
    run.add_runtime(sig, [], None, inherited_stamps(request_stamps))
    sig.apply_async()
