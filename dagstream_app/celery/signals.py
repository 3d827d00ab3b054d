"""Celery's task signals turned into DAG reports: :func:`install` connects them.

Every handler runs in the process the signal fires in: ``task_prerun`` /
``task_success`` / ``task_failure`` / ``task_retry`` / ``task_postrun`` in the
process that runs the task (a pool child), ``task_revoked`` and the failure of a
task whose worker process was lost in the pool's main process, and
``before_task_publish`` wherever a message is sent. A task that runs here is
remembered from its prerun to its postrun (:class:`Active`); only the first
execution of a node is reported, so redelivered messages (``acks_late``, a
killed worker) never show a task twice or move a finished node backwards.

This module imports nothing of Django at import time: ``install()`` is called
where the Celery app is made, before Django is set up.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery import signals, states
from celery._state import get_current_task
from celery.app.trace import task_has_custom
from celery.canvas import Signature
from celery.exceptions import Ignore

from dagstream_app.celery.canvas import GATE_TASK, PARENT_HEADER, stamps_of
from dagstream_app.celery.connections import drop_pools
from dagstream_app.celery.options import options
from dagstream_app.celery.outputs import error_text, json_output
from dagstream_app.celery.stamps import inherited_stamps, message_tasks, stamp_headers

if TYPE_CHECKING:
    from dagstream_app.celery.process import Registry
    from dagstream_app.celery.runs import Run


@dataclass
class Active:
    """A task running in this process, as its prerun found it."""

    run: Run
    node: str
    started: float
    quiet: bool = False  # a repeat of a finished node, or a run that ended: report nothing
    skip: bool = False  # held, or its run is cancelled: the body does not run
    added: list[str] = field(default_factory=list)  # nodes of the work it sent at run time


HELD_NOTE = "The run is paused: this task starts when it resumes."

# Tasks running in this process, by task id.
_active: dict[str, Active] = {}


def install(
    app: Any,
    *,
    output_limit: int = 4096,
    report_window: float = 0.2,
    release_poll: float = 1.0,
) -> None:
    """Report the canvases :func:`launch` sends, from every worker of ``app``.

    Call it once where the Celery app is made (the module ``celery -A`` loads).
    ``output_limit``: bytes of JSON a result may show as its node's output (a
    larger one shows a truncated preview); ``report_window``: seconds a task's
    reports wait for others, to share one transaction (a task that
    ``acks_late`` waits for its reports at its end); ``release_poll``: seconds
    between a worker's looks for held tasks whose wait is over (a paused run
    resumed, a gate decided), which it sends again or carries out.
    """
    options.app = app
    options.output_limit = output_limit
    options.report_window = report_window
    options.release_poll = release_poll
    for signal, handler in _HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=f"dagstream.{handler.__name__}")
    from dagstream_app.celery.quiet import install_filter
    from dagstream_app.celery.releasing import ReleaseHeld

    app.steps["consumer"].add(ReleaseHeld)
    install_filter()  # a cancelled run's chord is no error
    from dagstream_app.celery import tasks  # noqa: F401 - registers the gate tasks


def _registry() -> Registry:
    from dagstream_app.celery import process  # Django is set up once tasks run

    return process.registry


def current() -> Active | None:
    """The running task of a launched canvas this code is called from, if any."""
    task = get_current_task()
    if task is None:
        return None
    return _active.get(task.request.id)


# ------------------------------------------------------------------ publish


def _before_publish(headers: dict[str, Any] | None = None, body: Any = None, **_: Any) -> None:
    """Work a DAG's task sends at run time (``replace``, ``delay``) joins its DAG."""
    task = get_current_task()
    if task is None or not headers:
        return
    active = _active.get(task.request.id)
    if active is None:
        return
    headers[PARENT_HEADER] = active.node
    dag_id, node = stamps_of(headers.get("stamps") or {})
    if dag_id is not None and dag_id != active.run.dag_id:
        return  # a canvas of its own (say, launched from this task)
    if node == active.node and headers.get("id") == task.request.id:
        if (headers.get("retries") or 0) > (task.request.retries or 0):
            _report_retry(active, headers["retries"])
        return
    if dag_id is not None and node is not None and active.run.knows(node):
        return  # chain order, a chord body: known already
    root, after = message_tasks(headers, body)
    added = active.run.add_runtime(
        root, after, active.node, inherited_stamps(task.request.stamps or {})
    )
    stamp_headers(headers, root)
    active.added.append(added)


# ------------------------------------------------------------------ running


def _on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    request = task.request
    dag_id, node = stamps_of(request.stamps or {})
    if dag_id is None:
        return
    run = _registry().run(dag_id, here=True)  # claimed: the postrun gives it back
    if run is None:
        return
    try:
        _start(task_id, task, run, node)
    except BaseException:
        if task_id not in _active:
            run.unclaim()  # no postrun will
        raise


def _start(task_id: str, task: Any, run: Run, node: str | None) -> None:
    """The prerun of a task of a launched canvas, its run claimed."""
    from dagstream_app.celery import cancelling, runs
    from dagstream_app.engine import deltas

    request = task.request
    dag_id = run.dag_id
    parent = request.get(PARENT_HEADER)
    if node is None or not run.knows(node):
        if node is not None:
            run.runtime_ids[task_id] = node
        adopted = Signature(task.name, kwargs=request.kwargs or {}, options={"task_id": task_id})
        node = run.add_runtime(adopted, [], parent if parent in run.labels else None, {})
    elif parent in run.labels and parent != node and parent not in run.preds.get(node, ()):
        run.add_edge(parent, node)  # after a replaced task's new work
    status = run.current_status()
    active = _active[task_id] = Active(run, node, time.monotonic())
    if status in runs.STOPPING:
        active.quiet = active.skip = True  # its node was cancelled with the run
        cancelling.revoke_run(dag_id)  # a worker started after the cancel learns of it
        return
    redelivered = bool((request.delivery_info or {}).get("redelivered"))
    if (
        status in runs.TERMINAL_STATUSES  # every node has finished
        or run.finished(node)
        or (redelivered and run.finished_in_database(node))
    ):
        # Delivered again after it finished (acks_late, a worker lost before the ack):
        # Celery runs it again, but what came after it was sent the first time.
        active.quiet = True
        request.callbacks = request.chain = request.chord = None
        return
    if status in runs.HELD:
        # Its slot goes back to the pool: the message waits in the database until
        # the run runs again (a worker's ReleaseHeld sends it again then).
        active.quiet = active.skip = True
        from dagstream_app.celery import holding

        if holding.hold(task, active, "paused"):
            run.send([deltas.node_state(node, "pending", metrics={"held": HELD_NOTE})])
        return
    run.running.add(node)
    if task.name == GATE_TASK:
        return  # a gate reports itself
    metrics: dict[str, Any] = {"worker": request.hostname, "retries": request.retries or 0}
    if redelivered:
        metrics["redelivered"] = True
    reports = [deltas.node_state(node, "running", metrics=metrics)]
    if not request.retries and not redelivered:
        reports += [deltas.edge_active(p, node) for p in sorted(run.preds[node])]
    run.send(reports)


def _end_metrics(active: Active, request: Any) -> dict[str, Any]:
    return {
        "runtime_s": round(time.monotonic() - active.started, 4),
        "retries": request.retries or 0,
        "worker": request.hostname,
    }


def _on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    active = _active.get(sender.request.id)
    if active is None or active.quiet:
        return
    from dagstream_app.engine import deltas

    active.quiet = True
    run = active.run
    output = json_output(result, options.output_limit)
    metrics = _end_metrics(active, sender.request)
    run.send([deltas.node_state(active.node, "completed", output=output, metrics=metrics)])
    if not run.succs.get(active.node):
        run.settler.settle()


def _report_retry(active: Active, retries: int) -> None:
    """The task is about to be sent again: show it waiting, before another worker can
    start the next attempt (so the states arrive in the order they happened)."""
    from dagstream_app.engine import deltas

    active.quiet = True  # this attempt is over; the next one reports again
    active.run.running.discard(active.node)
    if active.run.labels.get(active.node) is None:
        return
    metrics: dict[str, Any] = {"retries": retries}
    reason = sys.exc_info()[1]  # the exception being handled by ``raise self.retry(...)``
    if reason is not None:
        metrics["retry_reason"] = error_text(reason)
    active.run.write([deltas.node_state(active.node, "waiting", metrics=metrics)])


def _on_failure(
    sender: Any = None, task_id: str = "", exception: BaseException | None = None, **_: Any
) -> None:
    active = _active.get(task_id)
    if active is not None and active.quiet:
        return
    if active is None:  # the pool's main process: the worker running it was lost
        request = getattr(sender, "request", None)
        _finish_elsewhere(getattr(request, "stamps", None), "failed", error_text(exception))
        return
    active.quiet = True
    _finish(
        active.run,
        active.node,
        "failed",
        error_text(exception),
        _end_metrics(active, sender.request),
    )


def _on_revoked(
    request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    why = "expired" if expired else ("terminated" if terminated else "revoked")
    active = _active.get(getattr(request, "id", None) or "")
    if active is not None:
        if not active.quiet:
            active.quiet = True
            _finish(active.run, active.node, "cancelled", why, {})
        return
    _finish_elsewhere(getattr(request, "stamps", None), "cancelled", why)


def _finish_elsewhere(stamps: Any, status: str, reason: str) -> None:
    dag_id, node = stamps_of(stamps or {})
    if dag_id is None or node is None:
        return
    run = _registry().run(dag_id, here=False)
    if run is None:
        return
    run.refresh()  # what the task's own process reported
    if run.status not in ("running", "paused") or run.finished(node):
        return  # a cancel revokes its tasks itself; an ended run takes no reports
    if node not in run.labels:
        return
    _finish(run, node, status, reason, {})


def _finish(run: Run, node: str, status: str, reason: str, metrics: dict[str, Any]) -> None:
    """A node that will not complete: report it, skip what depended on it, end the run."""
    from dagstream_app.engine import deltas

    label = run.labels.get(node, node)
    reports = [deltas.node_state(node, status, output={"error": reason}, metrics=metrics)]
    if status == "failed":
        reports.append(deltas.error(f"Task {label!r} failed: {reason}", node_id=node))
    reports += [
        deltas.node_state(n, "skipped") for n in run.descendants(node) if not run.finished(n)
    ]
    run.running.discard(node)
    run.send(reports)
    run.settler.settle()


def _on_postrun(task_id: str = "", task: Any = None, state: str = "", **_: Any) -> None:
    active = _active.pop(task_id, None)
    if active is None:
        return
    from dagstream_app.engine import deltas

    run = active.run
    run.running.discard(active.node)
    if not active.quiet and state == states.IGNORED:
        output: dict[str, Any]
        if active.added:  # self.replace(): done here, its work goes on in new nodes
            output, status = {"replaced_by": active.added}, "completed"
        else:
            output, status = {"ignored": True}, "skipped"
        metrics = _end_metrics(active, task.request)
        run.send([deltas.node_state(active.node, status, output=output, metrics=metrics)])
    if task.acks_late:
        # The message is acknowledged once this returns: its reports go first,
        # so a worker killed after the ack has lost nothing.
        run.flush()
    run.unclaim()


# ------------------------------------------------------------------ skipping


def _guard_tasks(sender: Any = None, **_: Any) -> None:
    """Before the pool starts (and tracers are built): give every task of the app a
    ``before_start`` that stops the body of a task held or dropped by its prerun."""
    if options.app is None:
        return
    for task in options.app.tasks.values():
        cls = type(task)
        if getattr(cls, "_dagstream_guarded", False):
            continue
        own = cls.before_start if task_has_custom(task, "before_start") else None
        cls.before_start = _guarded_before_start(own)
        cls._dagstream_guarded = True


def _guarded_before_start(own: Any) -> Any:
    def before_start(self: Any, task_id: str, args: Any, kwargs: Any) -> None:
        active = _active.get(task_id)
        if active is not None and active.skip:
            raise Ignore()  # acknowledged, no result, nothing sent after it
        if own is not None:
            own(self, task_id, args, kwargs)

    return before_start


# ------------------------------------------------------------------ processes


def _on_process_init(**_: Any) -> None:
    """A new pool child: nothing the parent had (runs, threads, locks) is ours."""
    _active.clear()
    from dagstream_app.celery import process

    process.reset_after_fork()


def _on_process_shutdown(**_: Any) -> None:
    _registry().flush_all()


_HANDLERS = (
    (signals.before_task_publish, _before_publish),
    (signals.task_prerun, _on_prerun),
    (signals.task_success, _on_success),
    (signals.task_failure, _on_failure),
    (signals.task_revoked, _on_revoked),
    (signals.task_postrun, _on_postrun),
    (signals.worker_init, _guard_tasks),
    (signals.worker_init, drop_pools),
    (signals.worker_process_init, _on_process_init),
    (signals.worker_process_shutdown, _on_process_shutdown),
)
