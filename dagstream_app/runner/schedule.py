"""Which nodes of a run may start: statuses, unmet dependencies, ready heaps, dead ends.

Scheduling is incremental: each node knows how many dependencies it still waits
for, ready nodes sit in heaps by definition order, and a node's end touches only
its children, so a 5,000-node run costs no more per step than a five-node one.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Container, Mapping, Sequence
from typing import Any

from dagstream_app import graph
from dagstream_app.runner.definitions import DefinitionError, Step, Task, check_step

__all__ = ["DEAD_END", "OPEN", "Schedule"]

OPEN = ("pending", "running", "waiting")
DEAD_END = frozenset({"failed", "skipped", "cancelled"})


class Schedule:
    """The run's nodes and what each waits for; the coordinator alone changes it."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps: dict[str, Step] = {}
        self.order: dict[str, int] = {}
        self.deps: dict[str, list[str]] = {}
        self.children: dict[str, list[str]] = {}
        self.status: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.unmet: dict[str, int] = {}  # dependencies not completed yet
        self.ready_tasks: list[tuple[int, str]] = []  # heaps by definition order
        self.ready_gates: list[tuple[int, str]] = []
        self.to_skip: deque[str] = deque()  # pending nodes below a dead end
        self.running_tasks = 0
        self.last_completed: str | None = None  # a budget gate is drawn after it
        for step in steps:
            self._register(step)
        for step in steps:
            for dep in step.after:
                self._link(dep, step.id)
        for step in steps:
            self._mark_if_ready(step.id)

    def _register(self, step: Step) -> None:
        self.steps[step.id] = step
        self.order[step.id] = len(self.order)
        self.deps[step.id] = []
        self.children[step.id] = []
        self.status[step.id] = "pending"
        self.counts["pending"] += 1
        self.unmet[step.id] = 0

    def _link(self, src: str, dst: str) -> None:
        self.deps[dst].append(src)
        self.children[src].append(dst)
        if self.status[src] != "completed":
            self.unmet[dst] += 1
        if self.status[src] in DEAD_END:
            self.to_skip.append(dst)

    def _mark_if_ready(self, node_id: str) -> None:
        if self.status[node_id] == "pending" and not self.unmet[node_id]:
            heap = self.ready_tasks if isinstance(self.steps[node_id], Task) else self.ready_gates
            heapq.heappush(heap, (self.order[node_id], node_id))

    def _startable(self, node_id: str) -> bool:
        return self.status[node_id] == "pending" and not self.unmet[node_id]

    # ---------------------------------------------------------- the run

    def is_open(self) -> bool:
        """Whether a node is still pending, running or waiting."""
        return any(self.counts[s] for s in OPEN)

    def set(self, node_id: str, status: str) -> None:
        """Record ``node_id``'s new status; its end readies or dooms its children."""
        before = self.status[node_id]
        self.status[node_id] = status
        self.counts[before] -= 1
        self.counts[status] += 1
        if isinstance(self.steps[node_id], Task):
            self.running_tasks += (status == "running") - (before == "running")
        if status == "completed":
            self.last_completed = node_id
            for child in self.children[node_id]:
                self.unmet[child] -= 1
                self._mark_if_ready(child)
        elif status in DEAD_END:
            self.to_skip.extend(self.children[node_id])

    def next_gate(self) -> Step | None:
        """A gate ready to open, or None."""
        while self.ready_gates:
            _, node_id = heapq.heappop(self.ready_gates)
            if self._startable(node_id):
                return self.steps[node_id]
        return None

    def next_task(self, concurrency: int) -> Step | None:
        """A task ready to start while fewer than ``concurrency`` run, or None."""
        while self.ready_tasks and self.running_tasks < concurrency:
            _, node_id = heapq.heappop(self.ready_tasks)
            if self._startable(node_id):
                return self.steps[node_id]
        return None

    def next_to_skip(self) -> str | None:
        """A pending node below a dead end, to report skipped; None when none is left."""
        while self.to_skip:
            node_id = self.to_skip.popleft()
            if self.status[node_id] == "pending":
                return node_id
        return None

    def results(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of the completed nodes nothing follows: what the run returns."""
        return {
            node_id: outputs[node_id]
            for node_id, status in self.status.items()
            if status == "completed" and not self.children[node_id]
        }

    # ------------------------------------------------------------ changes

    def check_change(
        self, step: Step | None, edges: tuple[tuple[str, str], ...], reserved: Container[str]
    ) -> None:
        """Raise :class:`DefinitionError` if adding ``step`` and ``edges`` cannot run;
        ``reserved``: ids taken by nodes the schedule does not hold (budget gates)."""
        known = set(self.steps)
        if step is not None:
            check_step(step)
            if step.id in known or step.id in reserved:
                raise DefinitionError(f"Duplicate node id {step.id!r}.")
            known.add(step.id)
        for src, dst in edges:
            for end in (src, dst):
                if end not in known:
                    raise DefinitionError(f"Edge {src!r} -> {dst!r} names unknown node {end!r}.")
            if src in self.deps.get(dst, ()) or edges.count((src, dst)) > 1:
                raise DefinitionError(f"Edge {src!r} -> {dst!r} already exists.")
            if dst in self.status and self.status[dst] != "pending":
                raise DefinitionError(
                    f"Node {dst!r} is {self.status[dst]}; it can no longer wait for {src!r}."
                )
        current = [(dep, node) for node, deps in self.deps.items() for dep in deps]
        cycle = graph.find_cycle([*current, *edges])
        if cycle:
            raise DefinitionError(f"That change would make a cycle: {' -> '.join(cycle)}.")

    def change(self, step: Step | None, edges: tuple[tuple[str, str], ...]) -> None:
        """Add a checked change: ``step`` (ready if nothing holds it) and ``edges``."""
        if step is not None:
            self._register(step)
        for src, dst in edges:
            self._link(src, dst)
        if step is not None:
            self._mark_if_ready(step.id)
