"""A compiled LangGraph graph as a DAG: its nodes and edges, and the ids of what runs.

``get_graph(xray=True)`` gives the graph's own drawing, subgraphs expanded with
prefixed ids (``draft:outline``). LangGraph's ``__start__`` and ``__end__`` are left
out, and so is each edge that would close a cycle (an agent's loop back to itself):
a dagstream DAG has none, and a node that runs again shows its latest run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dagstream_app.errors import InvalidDelta
from dagstream_app.graph import Structure

__all__ = ["PUSH", "Shape", "instance_base", "node_prefix"]

START, END = "__start__", "__end__"
# The trigger LangGraph gives a task started by a ``Send`` (langgraph's PUSH constant).
PUSH = "__pregel_push"
_INSTANCE = re.compile(r"^(?P<base>.+)#(?P<number>\d+)$")


def node_prefix(namespace: Iterable[str]) -> str:
    """The id prefix of the nodes a (sub)graph runs in ``namespace``: ``""`` at the top,
    ``"draft:"`` inside the subgraph node ``draft`` (task ids dropped)."""
    return "".join(part.rsplit(":", 1)[0] + ":" for part in namespace)


def instance_base(node_id: str) -> tuple[str, int] | None:
    """``("research", 3)`` for ``research#3``, the third ``Send`` to ``research``."""
    found = _INSTANCE.match(node_id)
    return (found["base"], int(found["number"])) if found else None


def _built(
    builder: Any, prefix: str
) -> tuple[list[str], list[tuple[str, str]], list[str], list[str]]:
    """A ``StateGraph``'s nodes and edges (subgraph nodes expanded, ids prefixed), and
    its entry and exit nodes (those after START, before END)."""
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    ends: dict[str, tuple[list[str], list[str]]] = {}  # node -> its (entries, exits)
    for name, spec in builder.nodes.items():
        sub = getattr(getattr(spec, "runnable", None), "builder", None)
        if sub is not None and hasattr(sub, "branches"):
            sub_nodes, sub_edges, sub_in, sub_out = _built(sub, f"{prefix}{name}:")
            nodes += sub_nodes
            edges += sub_edges
            ends[name] = (sub_in, sub_out)
        else:
            nodes.append(prefix + name)
            ends[name] = ([prefix + name], [prefix + name])
    pairs = set(builder.edges) | {(s, e) for starts, e in builder.waiting_edges for s in starts}
    for src, branches in builder.branches.items():
        for branch in branches.values():
            pairs |= {(src, dst) for dst in (branch.ends or {}).values()}
    for name, spec in builder.nodes.items():
        pairs |= {(name, dst) for dst in (getattr(spec, "ends", None) or ())}
    entries: list[str] = []
    exits: list[str] = []
    for src, dst in sorted(pairs):
        if src == START and dst in ends:
            entries += ends[dst][0]
        elif dst == END and src in ends:
            exits += ends[src][1]
        elif src in ends and dst in ends:
            edges += [(s, d) for s in ends[src][1] for d in ends[dst][0]]
    return nodes, edges, entries, exits


class Shape:
    """What the DAG holds now (ids and edges) and the graph's own successors of each node."""

    def __init__(self, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> None:
        self.order = list(dict.fromkeys(nodes))  # as the graph lists them
        self.known = Structure(self.order, ())
        self.successors: dict[str, list[str]] = {}
        self.initial: list[tuple[str, str]] = []
        # Subgraph nodes: each proper prefix of a prefixed id (``write`` of ``write:outline``).
        self.subgraphs = {
            ":".join(parts[:i])
            for parts in (node.split(":") for node in self.order)
            for i in range(1, len(parts))
        }
        for src, dst in edges:
            if self.link(src, dst):
                self.successors.setdefault(src, []).append(dst)
                self.initial.append((src, dst))

    @classmethod
    def of(cls, graph: Any) -> Shape:
        """The shape of ``graph`` (compiled): read from its ``StateGraph`` builder where it
        has one (``get_graph()`` simulates the graph to draw it: seconds for 200 nodes),
        else what ``get_graph(xray=True)`` draws."""
        builder = getattr(graph, "builder", None)
        if builder is not None and hasattr(builder, "branches"):
            nodes, edges, _, _ = _built(builder, "")
        else:
            drawn = graph.get_graph(xray=True)
            nodes = list(drawn.nodes)
            edges = [(e.source, e.target) for e in drawn.edges]
        inner = [n for n in nodes if n not in (START, END)]
        return cls(inner, [(s, d) for s, d in edges if START not in (s, d) and END not in (s, d)])

    @property
    def has_subgraphs(self) -> bool:
        """Whether any node is a subgraph's (LangGraph refuses ``:`` in node names)."""
        return bool(self.subgraphs)

    def link(self, src: str, dst: str) -> bool:
        """Add the edge if it can be: both ends known, new, and closing no cycle."""
        try:
            self.known.add_edge(src, dst)
        except InvalidDelta:
            return False
        return True

    def is_subgraph(self, node_id: str) -> bool:
        """A subgraph node: drawn as its own nodes (``node_id:...``), not itself."""
        return node_id not in self.known.nodes and node_id in self.subgraphs
