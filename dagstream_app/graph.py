"""Structure checks of a DAG: node and edge forms, duplicates, unknown ends, cycles.

Pure functions on ids; :mod:`dagstream_app.services` calls them before it writes
anything, and the reference runner checks its definitions with the same ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from dagstream_app import protocol
from dagstream_app.errors import InvalidDelta


def find_cycle(edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """A cycle in the directed graph, as a node path, or None if it is acyclic."""
    children: dict[str, list[str]] = {}
    for src, dst in edges:
        children.setdefault(src, []).append(dst)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in list(children):
        if state.get(root):
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(children.get(root, ()))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(children.get(nxt, ())))
    return None


def node_specs(nodes: Iterable[Any]) -> list[protocol.NodeSpec]:
    """Nodes given as ids or ``{"id", "label"}`` mappings, validated."""
    given = list(nodes)
    raw = [{"id": node} if isinstance(node, str) else node for node in given]
    try:  # all at once (one call into msgspec); a refusal is then found node by node
        return msgspec.convert(raw, list[protocol.NodeSpec])
    except msgspec.ValidationError:
        pass
    specs: list[protocol.NodeSpec] = []
    for node, item in zip(given, raw, strict=True):
        try:
            specs.append(msgspec.convert(item, protocol.NodeSpec))
        except msgspec.ValidationError as exc:
            raise InvalidDelta(f"Bad node {node!r}: {exc}") from None
    return specs  # pragma: no cover - the whole list was refused, so one node is


def edge_pairs(edges: Iterable[Any]) -> list[tuple[str, str]]:
    """Edges given as ``(src, dst)`` or ``{"from", "to"}``, validated."""
    pairs: list[tuple[str, str]] = []
    for edge in edges:
        # Tuples and lists first: the Mapping check (an ABC) costs more.
        if isinstance(edge, (tuple, list)) and len(edge) == 2:
            src, dst = edge
        elif isinstance(edge, Mapping) and set(edge) == {"from", "to"}:
            src, dst = edge["from"], edge["to"]
        else:
            raise InvalidDelta(f"Bad edge {edge!r}: use (src, dst) or {{'from': .., 'to': ..}}.")
        if not (isinstance(src, str) and src and isinstance(dst, str) and dst):
            raise InvalidDelta(f"Bad edge {edge!r}: both ends must be node ids.")
        pairs.append((src, dst))
    return pairs


def check_structure(node_ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> None:
    """Refuse duplicate nodes or edges, edges to unknown nodes, and cycles."""
    known = set(node_ids)
    if len(known) != len(node_ids):
        dupes = sorted(n for n, count in Counter(node_ids).items() if count > 1)
        raise InvalidDelta(f"Duplicate node id(s): {', '.join(dupes)}.")
    for src, dst in edges:
        for end in (src, dst):
            if end not in known:
                raise InvalidDelta(f"Edge {src!r} -> {dst!r} names unknown node {end!r}.")
    if len(set(edges)) != len(edges):
        raise InvalidDelta("Duplicate edge.")
    cycle = find_cycle(edges)
    if cycle:
        raise InvalidDelta(f"The edges form a cycle: {' -> '.join(cycle)}.")


class Structure:
    """A DAG's node ids and edges, changed one checked mutation at a time.

    Each refusal raises :class:`InvalidDelta` and leaves the structure as it was.
    """

    def __init__(self, nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> None:
        self.nodes: set[str] = set(nodes)
        self.edges: set[tuple[str, str]] = set(edges)
        self._children: dict[str, set[str]] | None = None

    def copy(self) -> Structure:
        return Structure(self.nodes, self.edges)

    def _child_map(self) -> dict[str, set[str]]:
        if self._children is None:
            self._children = {}
            for src, dst in self.edges:
                self._children.setdefault(src, set()).add(dst)
        return self._children

    def add_node(self, node_id: str) -> None:
        if node_id in self.nodes:
            raise InvalidDelta(f"Node {node_id!r} already exists.")
        self.nodes.add(node_id)

    def remove_node(self, node_id: str) -> list[tuple[str, str]]:
        """Remove ``node_id``; the edges that went with it, sorted."""
        if node_id not in self.nodes:
            raise InvalidDelta(f"Unknown node {node_id!r}.")
        self.nodes.discard(node_id)
        gone = sorted(edge for edge in self.edges if node_id in edge)
        self.edges.difference_update(gone)
        self._children = None
        return gone

    def add_edge(self, src: str, dst: str) -> None:
        for end in (src, dst):
            if end not in self.nodes:
                raise InvalidDelta(f"Edge {src!r} -> {dst!r} names unknown node {end!r}.")
        if (src, dst) in self.edges:
            raise InvalidDelta(f"Edge {src!r} -> {dst!r} already exists.")
        path = self._path(dst, src)
        if path is not None:
            cycle = " -> ".join([*path, dst])
            raise InvalidDelta(f"Edge {src!r} -> {dst!r} would create a cycle: {cycle}.")
        self.edges.add((src, dst))
        if self._children is not None:
            self._children.setdefault(src, set()).add(dst)

    def remove_edge(self, src: str, dst: str) -> None:
        if (src, dst) not in self.edges:
            raise InvalidDelta(f"Unknown edge {src!r} -> {dst!r}.")
        self.edges.discard((src, dst))
        if self._children is not None:
            self._children[src].discard(dst)

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A path of edges from ``start`` to ``goal``, or None."""
        if start == goal:
            return [start]
        children = self._child_map()
        came_from: dict[str, str] = {start: start}
        frontier = [start]
        while frontier:
            node = frontier.pop()
            for child in sorted(children.get(node, ())):
                if child in came_from:
                    continue
                came_from[child] = node
                if child == goal:
                    path = [goal]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                frontier.append(child)
        return None
