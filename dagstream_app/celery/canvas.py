"""A Celery canvas as a DAG: one node per task, edges for what runs after what.

Pure: it reads a canvas (giving tasks without an id one) and never imports Django.
Chains give edges from each step's last tasks to the next step's first ones,
groups fan out, chords join their header into their body, and link callbacks
hang off the task they follow. Each task's options are stamped with its DAG and
node (Celery's stamping headers), so every message says where it belongs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery.canvas import Signature, _chain, _chord, group, signature

# Message headers (Celery stamps) that tie a task to its DAG and node.
DAG_STAMP = "dagstream_dag"
NODE_STAMP = "dagstream_node"
# The budget step of the run (``launch(budget_step=...)``), for its budget gates.
STEP_STAMP = "dagstream_budget_step"
# A plain header: the node of the task that published this message.
PARENT_HEADER = "dagstream_parent"

GATE_TASK = "dagstream.gate"

_MAX_LABEL = 200


def task_label(task_name: str, kwargs: Mapping[str, Any] | None = None) -> str:
    """A node's base label: a gate's title, else the task name without its module."""
    if task_name == GATE_TASK and kwargs and isinstance(kwargs.get("title"), str):
        return kwargs["title"][:_MAX_LABEL] or "gate"
    return task_name.rsplit(".", 1)[-1][:_MAX_LABEL] or task_name[:_MAX_LABEL]


def numbered(base: str, taken: set[str], hints: dict[str, int]) -> str:
    """``base``, or ``base #2``, ``base #3``, ... when a task name repeats.

    ``hints`` remembers the next number to try per base, so numbering a thousand
    tasks of one name stays linear.
    """
    if base not in taken:
        return base
    stem = base[: _MAX_LABEL - 8]
    number = hints.get(base, 2)
    while f"{stem} #{number}" in taken:
        number += 1
    hints[base] = number + 1
    return f"{stem} #{number}"


def stamps_of(options: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(DAG id, node id) from a message's stamps or a signature's options, if stamped."""
    return _first(options.get(DAG_STAMP)), _first(options.get(NODE_STAMP))


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):  # Celery may keep a stamp as a list
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def stamp(options: dict[str, Any], stamps: Mapping[str, Any]) -> None:
    """Stamp one task's options (or message headers' ``stamps``) with ``stamps``."""
    options.update(stamps)
    options["stamped_headers"] = sorted({*(options.get("stamped_headers") or ()), *stamps})


@dataclass
class CanvasGraph:
    """The nodes and edges a canvas is made of, in the order its tasks appear.

    ``node_for`` names each task's node: the task id at launch; at run time a
    free id. :meth:`stamp_tasks` then stamps every task added with ``stamps``
    plus its node.
    """

    stamps: dict[str, Any]
    node_for: Callable[[Signature], str]
    taken_labels: set[str] = field(default_factory=set)
    existing: set[str] = field(default_factory=set)  # nodes the DAG has already
    nodes: list[dict[str, str]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)
    _edge_set: set[tuple[str, str]] = field(default_factory=set)
    _unstamped: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    _hints: dict[str, int] = field(default_factory=dict)
    _group_names: set[str] = field(default_factory=set)
    _group_hints: dict[str, int] = field(default_factory=dict)

    def add_task(self, sig: Signature) -> str:
        dag_id, known = stamps_of(sig.options)
        if known is not None and dag_id == self.stamps[DAG_STAMP]:
            return known  # already part of this DAG
        node_id = self.node_for(sig)
        self._unstamped.append((sig.options, node_id))
        if node_id in self.existing:
            return node_id
        if node_id in self._ids:
            raise ValueError(
                f"Task {sig.task!r} appears twice in the canvas as the same signature "
                "object; put a copy (sig.clone()) in the second place."
            )
        label = numbered(task_label(sig.task, sig.kwargs), self.taken_labels, self._hints)
        self._ids.add(node_id)
        self.taken_labels.add(label)
        self.nodes.append({"id": node_id, "label": label})
        return node_id

    def stamp_tasks(self) -> None:
        """Stamp the tasks added so far (once their nodes exist)."""
        for options, node_id in self._unstamped:
            stamp(options, {**self.stamps, NODE_STAMP: node_id})
        self._unstamped.clear()

    def join(self, sources: Iterable[str], targets: Iterable[str]) -> None:
        targets = list(targets)
        for src in sources:
            for dst in targets:
                if src != dst and (src, dst) not in self._edge_set:
                    self._edge_set.add((src, dst))
                    self.edges.append((src, dst))

    def walk(self, sig: Signature) -> tuple[list[str], list[str]]:
        """Add ``sig`` (any canvas); its first tasks (sources) and last tasks (sinks)."""
        if isinstance(sig, _chain):
            first: list[str] = []
            last: list[str] = []
            for index, step in enumerate(sig.tasks):
                sources, sinks = self.walk(step)
                if index == 0:
                    first = sources
                self.join(last, sources)
                last = sinks
            return first, self._links(sig, last)
        if isinstance(sig, _chord):
            header_sources, header_sinks = self.walk(group(sig.tasks))
            body_sources, body_sinks = self.walk(sig.body)
            self.join(header_sinks, body_sources)
            return header_sources, body_sinks
        if isinstance(sig, group):
            sources, sinks = [], []
            added = len(self.nodes)
            for member in sig.tasks:
                member_sources, member_sinks = self.walk(member)
                sources += member_sources
                sinks += member_sinks
            self._declare_group(sig, self.nodes[added:])
            return sources, self._links(sig, sinks)
        node_id = self.add_task(sig)
        return [node_id], self._links(sig, [node_id])

    def _declare_group(self, sig: group, added: list[dict[str, str]]) -> None:
        """A group (a chord's header too) of plain tasks is a fan-out: its nodes say so, under
        the task's name (numbered when another group has it), for the dashboard to draw
        as one node."""
        if len(added) < 2 or any(isinstance(m, _chain | _chord | group) for m in sig.tasks):
            return
        name = numbered(task_label(sig.tasks[0].task), self._group_names, self._group_hints)
        self._group_names.add(name)
        for node in added:
            node["group"] = name

    def _links(self, sig: Signature, sinks: list[str]) -> list[str]:
        """Link callbacks run after ``sig``, beside what follows it: nodes after its sinks."""
        links = sig.options.get("link")
        if not links:
            return sinks
        links = [signature(x) for x in (links if isinstance(links, (list, tuple)) else [links])]
        sig.options["link"] = links
        for link in links:
            link_sources, _ = self.walk(link)
            self.join(sinks, link_sources)
        return sinks


def launch_graph(canvas: Signature, stamps: dict[str, Any]) -> CanvasGraph:
    """The DAG of a canvas (node id: task id, assigned where missing); stamp it once the
    DAG exists."""
    graph = CanvasGraph(stamps, node_for=_task_id)
    graph.walk(canvas)
    return graph


def _task_id(sig: Signature) -> str:
    """A task's id, given to it now if it has none (Celery's freeze keeps it)."""
    if not sig.id:
        sig.options["task_id"] = str(uuid.uuid4())
    return str(sig.id)
