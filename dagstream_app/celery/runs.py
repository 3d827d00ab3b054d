"""What one worker process knows of each DAG its tasks belong to.

A process keeps one :class:`Run` per DAG (see :mod:`.process`): the DAG's
structure and the node states it has seen or reported, read once from the
database and again only when a node it does not know turns up. Its reports go
out through its :class:`~dagstream_app.celery.writing.RunWriter`; it ends through
its :class:`~dagstream_app.celery.settling.Settler`.

Django must be set up before this module is imported.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celery.canvas import Signature
from django.db import DatabaseError, InterfaceError

from dagstream_app import state
from dagstream_app.celery.cancelling import cancel_run
from dagstream_app.celery.canvas import DAG_STAMP, CanvasGraph
from dagstream_app.celery.connections import forget_own, own_connection
from dagstream_app.celery.settling import Settler
from dagstream_app.celery.writing import RunWriter
from dagstream_app.engine import deltas
from dagstream_app.protocol import FINISHED_NODE_STATUSES, TERMINAL_STATUSES, DagSnapshot
from dagstream_app.services import Delta

log = logging.getLogger(__name__)

__all__ = ["HELD", "PAUSE_NOTE", "STOPPING", "TERMINAL_STATUSES", "Run"]

PAUSE_NOTE = "Started before the pause: Celery cannot pause a running task; it runs to its end."
# Statuses in which the tasks of a run that have not started do not start.
HELD = frozenset({"paused"})
STOPPING = frozenset({"cancelling", "cancelled"})


class Run:
    """One DAG as this process knows it."""

    def __init__(self, snapshot: DagSnapshot) -> None:
        self.dag_id = snapshot.dag_id
        self.writer = RunWriter(self.dag_id)
        self.settler = Settler(self.writer)
        self.lock = threading.RLock()
        self.status: str = snapshot.status
        self.labels: dict[str, str] = {}
        self.statuses: dict[str, str] = {}
        self.preds: dict[str, set[str]] = {}
        self.succs: dict[str, set[str]] = {}
        self.runtime_ids: dict[str, str] = {}  # task id -> node, for tasks added at run time
        self.running: set[str] = set()  # nodes whose tasks run in this process now
        # Tasks of the run between their prerun and postrun here; a run its watcher
        # retired (parked: nothing of it here) is read again by the next task.
        self._claims = 0
        self._claim_lock = threading.Lock()  # never held while waiting for anything
        self.retired = False
        self._load(snapshot)

    # ------------------------------------------------------------ knowledge

    def _load(self, snapshot: DagSnapshot) -> None:
        with self.lock:
            self.status = snapshot.status
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

    def claim(self) -> bool:
        """A task of the run starts here: False if the run was retired (read it again)."""
        with self._claim_lock:
            if self.retired:
                return False
            self._claims += 1
            return True

    def unclaim(self) -> None:
        """A task that claimed the run has ended here."""
        with self._claim_lock:
            self._claims -= 1

    def idle(self) -> bool:
        """True if no task of the run is between its prerun and postrun here."""
        return self._claims == 0

    def retire(self) -> bool:
        """Stop following the run here if no task claims it (its watcher is ending)."""
        with self._claim_lock:
            if self._claims:
                return False
            self.retired = True
            return True

    # ------------------------------------------------------------- writing

    def send(self, reports: Iterable[Delta]) -> None:
        """Report without waiting (from a task's own process) or at once (elsewhere).

        A task's reports wait ``report_window`` seconds for others to join them, then
        go to the stream's ``nowait`` together: one transaction for all of them.
        """
        batch = list(reports)
        for delta in batch:
            if delta.kind == "node_state":
                self.statuses[delta.args["node_id"]] = delta.args["status"]
        self.writer.send(batch)

    def write(self, reports: Iterable[Delta]) -> None:
        """Report and wait until it is durable."""
        self.send(reports)
        self.flush()

    def flush(self) -> None:
        """Wait until every report made so far is durable."""
        self.writer.flush()

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
            reports = [deltas.mutate({"op": "add_node", "node": n}) for n in graph.nodes]
            reports += [
                deltas.mutate({"op": "add_edge", "from": a, "to": b})
                for a, b in graph.edges
                if b not in self.succs.get(a, ())
            ]
            self.write(reports)
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
            self.write([deltas.mutate({"op": "add_edge", "from": src, "to": dst})])
            self.succs.setdefault(src, set()).add(dst)
            self.preds.setdefault(dst, set()).add(src)

    def add_node(self, node_id: str, label: str, *, after: str) -> None:
        """A node of no task (a budget gate) after ``after``, durable before this returns."""
        with self.lock:
            self.write(
                [
                    deltas.mutate({"op": "add_node", "node": {"id": node_id, "label": label}}),
                    deltas.mutate({"op": "add_edge", "from": after, "to": node_id}),
                ]
            )
            self.labels[node_id] = label
            self.statuses.setdefault(node_id, "pending")
            self.preds.setdefault(node_id, set()).add(after)
            self.succs.setdefault(node_id, set())
            self.succs.setdefault(after, set()).add(node_id)

    # ---------------------------------------------------------- steering

    def set_status(self, status: str) -> None:
        with self.lock:
            before, self.status = self.status, status
        here = self.writer.stream is not None
        if status == "paused" and before != "paused" and self.running and here:
            # Say so on each task that keeps running: Celery cannot pause it.
            self.send(
                deltas.node_state(n, "running", metrics={"note": PAUSE_NOTE})
                for n in sorted(self.running)
            )

    def current_status(self) -> str:
        """The run's status for a task about to start, read from the database.

        A pause, a cancel or a budget reached a moment ago (in another process) may
        not have reached this process's watcher yet: the task must see it now, or it
        would start in a run that is paused (and hold its slot until it ends).
        """
        try:
            progress = state.progress(self.dag_id, own_connection())
        except (DatabaseError, InterfaceError):  # the connection broke: once more, anew
            forget_own(close=True)
            progress = state.progress(self.dag_id, own_connection())
        if progress is not None and progress[1] != self.status:
            self.set_status(progress[1])
        return self.status

    def cancel(self) -> None:
        """Carry out a cancel from this process (its reports written first)."""
        self.flush()
        cancel_run(self.dag_id)
