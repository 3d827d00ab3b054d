"""What one worker process knows of each DAG its tasks belong to, and how it reports.

A process keeps one :class:`Run` per DAG: the DAG's structure and the node states
it has seen or reported, read once from the database and again only when a node
it does not know turns up. Tasks that run here report through the run's stream
without waiting (``stream.nowait`` on a :class:`SyncDagStream` that shares the
process's one event-loop thread); a watcher on that loop follows the DAG's status
(pause, resume, cancel) for the tasks waiting to start. Events about tasks that
ran elsewhere (a pool's main process hears of revoked tasks and lost workers)
are written directly, so a process that forks pool children never runs the
event-loop thread or asgiref's executor before it forks.

Django must be set up before this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from celery.canvas import Signature, signature
from django.db import connections

from dagstream_app import services, state
from dagstream_app.celery.canvas import (
    DAG_STAMP,
    STEP_STAMP,
    CanvasGraph,
)
from dagstream_app.celery.options import options
from dagstream_app.conf import config
from dagstream_app.engine import BufferFull, DagStream, GateDecision, LoopThread, SyncDagStream
from dagstream_app.protocol import FINISHED_NODE_STATUSES, TERMINAL_STATUSES, DagSnapshot
from dagstream_app.services import DagstreamError, Delta

log = logging.getLogger(__name__)
T = TypeVar("T")

PAUSE_NOTE = "Started before the pause: Celery cannot pause a running task; it runs to its end."
# Statuses in which the tasks of a run that have not started do not start.
HELD = frozenset({"paused"})
STOPPING = frozenset({"cancelling", "cancelled"})


def _refused(exc: DagstreamError) -> None:
    # A run that has ended refuses late reports (a task of a cancelled run that
    # finished anyway): expected, so quiet; anything else is worth a warning.
    level = logging.DEBUG if exc.code == "conflict" else logging.WARNING
    log.log(level, "dagstream: report refused: %s", exc.message)


def revoke_run(dag_id: str) -> None:
    """Revoke every task message of the run, terminating those running where the pool can."""
    if options.app is None:
        log.warning("dagstream: install(app) was not called; cannot revoke run %s", dag_id)
        return
    options.app.control.revoke_by_stamped_headers({DAG_STAMP: dag_id}, terminate=True)


class Run:
    """One DAG as this process knows it, and the way its reports go out."""

    def __init__(self, snapshot: DagSnapshot) -> None:
        self.dag_id = snapshot.dag_id
        # Set (by the registry) once a task of the run runs in this process.
        self.stream: SyncDagStream | None = None
        self.engine: DagStream | None = None
        self.loop: LoopThread | None = None
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.status: str = snapshot.status
        self.budgeted = False
        self.labels: dict[str, str] = {}
        self.statuses: dict[str, str] = {}
        self.preds: dict[str, set[str]] = {}
        self.succs: dict[str, set[str]] = {}
        self.runtime_ids: dict[str, str] = {}  # task id -> node, for tasks added at run time
        self.running: set[str] = set()  # nodes whose tasks run in this process now
        self._settler: threading.Thread | None = None
        self._recheck = False
        self._pending: list[Delta] = []  # reports waiting for the report window
        self._pending_lock = threading.Lock()
        self._load(snapshot)

    # ------------------------------------------------------------ knowledge

    def _load(self, snapshot: DagSnapshot) -> None:
        with self.lock:
            self.status = snapshot.status
            self.budgeted = snapshot.budget is not None
            self.labels = {n.id: n.label for n in snapshot.nodes}
            for node in snapshot.nodes:  # what this process reported wins over an older read
                self.statuses.setdefault(node.id, node.status)
                if node.status in FINISHED_NODE_STATUSES:
                    self.statuses[node.id] = node.status
            self.preds = {n: set() for n in self.labels}
            self.succs = {n: set() for n in self.labels}
            for edge in snapshot.edges:
                self.succs[edge.src].add(edge.dst)
                self.preds[edge.dst].add(edge.src)

    def refresh(self) -> None:
        """Read the DAG again (a node added elsewhere at run time)."""
        snapshot = state.snapshot(self.dag_id)
        if snapshot is not None:
            self._load(snapshot)

    def knows(self, node_id: str) -> bool:
        if node_id in self.labels:
            return True
        self.refresh()
        return node_id in self.labels

    def finished(self, node_id: str) -> bool:
        return self.statuses.get(node_id) in FINISHED_NODE_STATUSES

    def finished_in_database(self, node_id: str) -> bool:
        found = state.node(self.dag_id, node_id)
        if found is not None and found.status in FINISHED_NODE_STATUSES:
            self.statuses[node_id] = found.status
            return True
        return False

    def descendants(self, node_id: str) -> list[str]:
        seen: list[str] = []
        stack = list(self.succs.get(node_id, ()))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.append(node)
                stack.extend(self.succs.get(node, ()))
        return seen

    # ------------------------------------------------------------- writing

    def send(self, deltas: Iterable[Delta]) -> None:
        """Report without waiting (from a task's own process) or at once (elsewhere).

        A task's reports wait ``report_window`` seconds for others to join them, then
        go to the stream's ``nowait`` together: one transaction for all of them.
        """
        deltas = list(deltas)
        for delta in deltas:
            if delta.kind == "node_state":
                self.statuses[delta.args["node_id"]] = delta.args["status"]
        if self.stream is None or self.loop is None:
            self._apply(deltas)
            return
        with self._pending_lock:
            wake = not self._pending
            self._pending.extend(deltas)
            full = len(self._pending) >= config().engine_buffer
        if full:
            self.flush()  # back-pressure: the task waits for the database
        elif wake:
            self.loop.loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        assert self.loop is not None
        self.loop.loop.call_later(
            options.report_window, lambda: asyncio.ensure_future(self._drain())
        )

    async def _drain(self) -> None:
        """Hand the waiting reports to the stream (on its loop)."""
        assert self.engine is not None
        with self._pending_lock:
            batch, self._pending = self._pending, []
        for delta in batch:
            report = getattr(self.engine.nowait, delta.kind)
            for _ in range(3):
                try:
                    report(**delta.args)
                    break
                except BufferFull:
                    await self._flush_engine()
                except DagstreamError as exc:  # an earlier report's refusal
                    _refused(exc)

    async def _flush_engine(self) -> None:
        assert self.engine is not None
        try:
            await self.engine.flush()
        except DagstreamError as exc:
            _refused(exc)

    async def _drain_and_flush(self) -> None:
        await self._drain()
        await self._flush_engine()

    def write(self, deltas: Iterable[Delta]) -> None:
        """Report and wait until it is durable."""
        self.send(deltas)
        self.flush()

    def flush(self) -> None:
        """Wait until every report made so far is durable."""
        if self.loop is not None and self.engine is not None:
            self.loop.run(self._drain_and_flush())

    def _apply(self, deltas: Sequence[Delta]) -> None:
        if not deltas:
            return
        try:
            results = services.apply(self.dag_id, deltas).results
        except DagstreamError as exc:
            _refused(exc)
            return
        for result in results:
            if isinstance(result, DagstreamError):
                _refused(result)

    def _end(self, kind: str, **args: Any) -> None:
        """Complete or fail the run (durable); a run that already ended is left as it is."""
        try:
            if kind == "complete":
                if self.stream is None:
                    services.complete(self.dag_id, args["results"])
                else:
                    self.stream.complete(args["results"])
            elif self.stream is None:
                services.fail(self.dag_id, args["message"], node_id=args["node_id"])
            else:
                self.stream.fail(args["message"], node_id=args["node_id"])
        except DagstreamError as exc:
            _refused(exc)

    # ------------------------------------------------------ structure, live

    def free_node_id(self, sig: Signature) -> str:
        """A node id for a task added at run time: its task id, unless a node has that."""
        task_id = str(sig.id or uuid.uuid4())
        if task_id in self.runtime_ids:
            return self.runtime_ids[task_id]
        node_id, number = task_id, 1
        while node_id in self.labels or node_id in self.runtime_ids.values():
            number += 1
            node_id = f"{task_id}~{number}"
        self.runtime_ids[task_id] = node_id
        return node_id

    def add_runtime(
        self,
        root: Signature,
        embedded: Sequence[tuple[str, Signature]],
        parent: str | None,
        stamps: dict[str, Any],
    ) -> str:
        """Add a task published at run time (and what its message carries) as nodes.

        ``root`` is the published task; ``embedded`` what runs after it (``chain``,
        ``chord``, ``callbacks`` of its message). Durable before this returns, so
        no worker can start a task whose node does not exist yet. Returns the
        root's node; every task passed is stamped.
        """
        with self.lock:
            graph = CanvasGraph(
                {DAG_STAMP: self.dag_id, **stamps},
                node_for=self.free_node_id,
                taken_labels=set(self.labels.values()),
                existing=set(self.labels),
            )
            root_node = graph.add_task(root)
            if parent is not None and parent != root_node:
                graph.join([parent], [root_node])
            previous = [root_node]
            for role, sig in embedded:
                sources, sinks = graph.walk(sig)
                graph.join(previous, sources)
                if role == "chain":
                    previous = sinks
            deltas = [
                Delta("mutate", {"mutation": {"op": "add_node", "node": n}}) for n in graph.nodes
            ]
            deltas += [
                Delta("mutate", {"mutation": {"op": "add_edge", "from": a, "to": b}})
                for a, b in graph.edges
                if b not in self.succs.get(a, ())
            ]
            self.write(deltas)
            for node in graph.nodes:
                self.labels[node["id"]] = node["label"]
                self.statuses.setdefault(node["id"], "pending")
                self.preds.setdefault(node["id"], set())
                self.succs.setdefault(node["id"], set())
            for a, b in graph.edges:
                self.succs.setdefault(a, set()).add(b)
                self.preds.setdefault(b, set()).add(a)
            graph.stamp_tasks()
            return root_node

    def add_edge(self, src: str, dst: str) -> None:
        """An edge seen only at run time (a replaced task's work flowing on)."""
        with self.lock:
            if dst in self.succs.get(src, ()):
                return
            self.write([Delta("mutate", {"mutation": {"op": "add_edge", "from": src, "to": dst}})])
            self.succs.setdefault(src, set()).add(dst)
            self.preds.setdefault(dst, set()).add(src)

    # ---------------------------------------------------------- steering

    def set_status(self, status: str) -> None:
        with self.changed:
            before, self.status = self.status, status
            self.changed.notify_all()
        if status == "paused" and before != "paused" and self.running and self.stream is not None:
            # Say so on each task that keeps running: Celery cannot pause it.
            self.send(
                Delta(
                    "node_state",
                    {"node_id": n, "status": "running", "metrics": {"note": PAUSE_NOTE}},
                )
                for n in sorted(self.running)
            )

    def hold(self) -> str:
        """Wait while the run is paused; the status it has then.

        A run with a budget is read first: the task whose cost reached the budget
        paused it a moment ago, perhaps in another process.
        """
        if self.budgeted:
            progress = state.progress(self.dag_id)
            if progress is not None and progress[1] != self.status:
                self.set_status(progress[1])
        poll = config().idle_check_seconds
        with self.changed:
            while self.status in HELD:
                self.changed.wait(poll)
            return self.status

    def cancel(self) -> None:
        """Carry out a cancel: unfinished nodes cancelled, the run cancelled, then revoke."""
        snapshot = state.snapshot(self.dag_id)
        if snapshot is not None and snapshot.status not in TERMINAL_STATUSES:
            # One transaction: a second process cancelling at once is refused whole.
            deltas = [
                Delta("node_state", {"node_id": n.id, "status": "cancelled"})
                for n in snapshot.nodes
                if n.status not in FINISHED_NODE_STATUSES
            ]
            self.flush()
            self._apply([*deltas, Delta("set_state", {"state": "cancelled"})])
        # Last: revoking may terminate this very process's task.
        revoke_run(self.dag_id)

    # ------------------------------------------------------- ending the run

    def settle(self) -> None:
        """After a sink finished or a task failed: end the run once every node has finished.

        Other processes' last reports may still be on their way, and other branches
        may still run: a thread of its own (no task waits for it) looks again every
        ``IDLE_CHECK_SECONDS`` until the run has ended.
        """
        with self.lock:
            self._recheck = True
            if self._settler is not None:
                return
            self._settler = threading.Thread(
                target=self._settle_loop, name=f"dagstream-settle-{self.dag_id}", daemon=True
            )
            self._settler.start()

    def _settle_loop(self) -> None:
        try:
            while True:
                with self.lock:
                    self._recheck = False
                self.flush()
                try:
                    ended = self._end_if_done()
                except Exception:
                    log.warning("dagstream: cannot check run %s", self.dag_id, exc_info=True)
                    ended = False
                with self.lock:
                    if ended:
                        self._settler = None
                        return
                    recheck = self._recheck
                if not recheck:
                    time.sleep(config().idle_check_seconds)
        finally:
            connections.close_all()  # this thread's own connection

    def _end_if_done(self) -> bool:
        """End the run if every node has finished; True once the run has ended."""
        progress = state.progress(self.dag_id)
        if progress is None or progress[1] in TERMINAL_STATUSES:
            return True
        if state.unfinished_count(self.dag_id):
            return False
        snapshot = state.snapshot(self.dag_id)
        if snapshot is None:
            return True
        broken = [n for n in snapshot.nodes if n.status in ("failed", "cancelled")]
        if broken:
            first = min(broken, key=lambda n: n.finished_at or "")
            reason = (first.output or {}).get("error") if isinstance(first.output, dict) else None
            what = "was revoked" if first.status == "cancelled" else f"failed: {reason}"
            self._end("fail", message=f"The run failed: {first.label!r} {what}", node_id=first.id)
            return True
        sinks = {e.src for e in snapshot.edges}
        results = {n.id: n.output for n in snapshot.nodes if n.id not in sinks}
        self._end("complete", results=results)
        return True

    # ------------------------------------------------------------- gates

    def gate(
        self, node_id: str, presentation: dict[str, Any], hold: float, **kwargs: Any
    ) -> GateDecision | None:
        """Open the gate at ``node_id`` (once) and wait up to ``hold`` s: its decision or None."""
        assert self.engine is not None and self.loop is not None
        waiting = asyncio.wait_for(self.engine.gate(node_id, presentation, **kwargs), hold)
        future = asyncio.run_coroutine_threadsafe(waiting, self.loop.loop)
        try:
            return future.result()
        except (TimeoutError, FutureTimeout):
            return None


class Registry:
    """This process's runs, its event-loop thread, and the tasks running here."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, Run] = {}
        self.loop: LoopThread | None = None

    def run(self, dag_id: str, *, here: bool) -> Run | None:
        """The run of ``dag_id``; ``here``: a task of it runs in this process (report
        through a stream, follow its status). None if the DAG is gone."""
        with self.lock:
            run = self.runs.get(dag_id)
            if run is not None and (
                run.stream is not None or not here or run.status in TERMINAL_STATUSES
            ):
                return run
            snapshot = state.snapshot(dag_id)
            if snapshot is None:
                return None
            if run is None:
                run = self.runs[dag_id] = Run(snapshot)
            if here and snapshot.status not in TERMINAL_STATUSES:
                if self.loop is None:
                    self.loop = LoopThread()
                run.loop = self.loop
                run.engine = self.loop.run(DagStream.open(dag_id))
                run.stream = SyncDagStream(run.engine, self.loop)
                asyncio.run_coroutine_threadsafe(_watch(run, run.engine), self.loop.loop)
            return run

    def forget(self, dag_id: str) -> None:
        with self.lock:
            self.runs.pop(dag_id, None)

    def flush_all(self) -> None:
        for run in list(self.runs.values()):
            run.flush()


async def _watch(run: Run, stream: DagStream) -> None:
    """Follow the run's status: pause holds new tasks, cancel is carried out here too.

    People's commands wake it at once (the DAG's control group); other changes (a
    budget pause by another process) are read every ``IDLE_CHECK_SECONDS``.
    """
    poll = config().idle_check_seconds
    look = asyncio.Event()

    async def listen() -> None:
        async for _ in stream.commands():
            look.set()

    listener = asyncio.ensure_future(listen())
    loop = asyncio.get_running_loop()
    try:
        while True:
            look.clear()
            progress = await loop.run_in_executor(None, _in_thread, state.progress, run.dag_id)
            status = "failed" if progress is None else progress[1]
            if status != run.status:
                await loop.run_in_executor(None, _in_thread, run.set_status, status)
            if status == "cancelling":
                await loop.run_in_executor(None, _in_thread, run.cancel)
            elif status in TERMINAL_STATUSES:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(look.wait(), poll)
    except Exception:
        log.warning("dagstream: watcher of run %s stopped", run.dag_id, exc_info=True)
    finally:
        listener.cancel()
        await run._drain_and_flush()
        with contextlib.suppress(DagstreamError):  # refusals were logged as they came
            await stream.close()
        registry.forget(run.dag_id)  # a late task of the run reads it again


def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in an executor thread, closing the connection it opened."""
    try:
        return func(*args)
    finally:
        connections.close_all()


def message_tasks(
    headers: dict[str, Any], body: Any
) -> tuple[Signature, list[tuple[str, Signature]]]:
    """The task a message carries, and what runs after it (as stamped-on-the-way signatures).

    The embedded signatures are put back into ``body`` as the objects returned,
    so stamping them stamps what is sent.
    """
    kwargs = body[1] if isinstance(body, (list, tuple)) and len(body) > 1 else {}
    root = Signature(headers.get("task"), kwargs=kwargs if isinstance(kwargs, dict) else {})
    root.options.update(task_id=headers.get("id"), **(headers.get("stamps") or {}))
    embed = body[2] if isinstance(body, (list, tuple)) and len(body) > 2 else None
    after: list[tuple[str, Signature]] = []
    if isinstance(embed, dict):
        chain = embed.get("chain")
        if chain:
            steps = [signature(s) for s in chain]
            embed["chain"] = steps
            after += [("chain", s) for s in reversed(steps)]  # Celery keeps it last-first
        if embed.get("chord"):
            embed["chord"] = signature(embed["chord"])
            after.append(("chord", embed["chord"]))
        if embed.get("callbacks"):
            embed["callbacks"] = [signature(s) for s in embed["callbacks"]]
            after += [("link", s) for s in embed["callbacks"]]
    return root, after


def stamp_headers(headers: dict[str, Any], root: Signature) -> None:
    """Copy the stamps ``root`` was given into the message headers."""
    stamps = {k: root.options[k] for k in root.options.get("stamped_headers", ())}
    headers["stamps"] = {**(headers.get("stamps") or {}), **stamps}
    headers["stamped_headers"] = sorted({*(headers.get("stamped_headers") or ()), *stamps})


def budget_step(request_stamps: dict[str, Any]) -> float | None:
    """The run's budget step, as its tasks' stamps carry it."""
    step = request_stamps.get(STEP_STAMP)
    if isinstance(step, (list, tuple)):
        step = step[0] if step else None
    return float(step) if isinstance(step, (int, float)) else None


def inherited_stamps(request_stamps: dict[str, Any]) -> dict[str, Any]:
    """The run-wide stamps (not the node) a task passes on to the work it adds."""
    step = budget_step(request_stamps)
    return {} if step is None else {STEP_STAMP: step}


registry = Registry()


def reset_after_fork() -> None:
    """In a new pool child: forget the parent's runs, loop and locks (they are not ours)."""
    global registry
    registry = Registry()


__all__ = [
    "HELD",
    "STOPPING",
    "TERMINAL_STATUSES",
    "Delta",
    "Registry",
    "Run",
    "budget_step",
    "inherited_stamps",
    "message_tasks",
    "registry",
    "reset_after_fork",
    "revoke_run",
    "stamp_headers",
]
