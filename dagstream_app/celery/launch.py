"""``launch()``: a Celery canvas becomes a DAG, stamped and sent to the workers."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from celery.canvas import Signature

from dagstream_app.celery.canvas import DAG_STAMP, STEP_STAMP, launch_graph, task_label


class Launched(NamedTuple):
    """A launched canvas: its DAG id and Celery's result for it (``result.get()`` etc.).

    A pair, so ``dag_id, result = launch(canvas)`` works too.
    """

    dag_id: str
    result: Any


def launch(
    signature: Signature,
    dag_id: str | None = None,
    *,
    name: str = "",
    budget: float | None = None,
    budget_step: float | None = None,
) -> Launched:
    """Turn ``signature`` (a task, chain, group or chord, nested in any way) into a DAG,
    stamp every task message with the DAG id, and apply it.

    The DAG has one node per task (its id is the task id; its label the task name,
    ``name #2`` when a name repeats) and edges for chain order, group fan-out and
    chord header to body. ``budget`` works as with the runner: when tasks'
    :func:`report_cost` reaches it, the run pauses at a gate that raises it by
    ``budget_step`` (default: the budget itself). Synchronous: from async code,
    wrap it in ``asgiref.sync.sync_to_async``.
    """
    from dagstream_app import services  # Django must be set up by now

    first = _first_task(signature)
    if DAG_STAMP in first.options:
        raise ValueError(
            "This canvas was launched already (its tasks carry a DAG id): build a new one."
        )
    if dag_id is None:
        dag_id = f"celery-{uuid.uuid4().hex[:16]}"
    step = budget_step if budget_step is not None else budget
    stamps: dict[str, Any] = {DAG_STAMP: dag_id}
    if step is not None:
        stamps[STEP_STAMP] = step
    graph = launch_graph(signature, stamps)
    services.create_dag(
        dag_id,
        name=name or task_label(first.task),
        nodes=graph.nodes,
        edges=graph.edges,
        budget=budget,
    )
    graph.stamp_tasks()
    try:
        result = signature.apply_async()
    except Exception as exc:
        services.reports(dag_id).fail(f"The canvas could not be sent to Celery: {exc}")
        raise
    return Launched(dag_id, result)


def _first_task(signature: Signature) -> Signature:
    """The first task a canvas runs (a chord's or group's first member)."""
    tasks = getattr(signature, "tasks", None)
    while tasks:
        signature = tasks[0]
        tasks = getattr(signature, "tasks", None)
    return signature
