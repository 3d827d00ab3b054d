"""``dag_mutated``: the DAG's structure changed (a node or an edge added or removed).

Besides its kind, this home holds how each mutation applies to a DAG's state
(:func:`apply_mutation`) and how history undoes them (:func:`initial_structure`):
the log does not hold the structure a DAG was created with, so it is recovered by
undoing every ``dag_mutated``, newest first, from today's. A ``remove_node``
records the edges that went with the node, so undoing it restores them (events
recorded before the server filled that in cannot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from django.utils.translation import gettext as _

from dagstream_app.dagviews import EdgeView, Pair, Working, new_node
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.graph import graph_html
from dagstream_app.vocabulary import EventPayload, Label, NodeId


class _Mutation(msgspec.Struct, tag_field="op", forbid_unknown_fields=True, omit_defaults=True):
    pass


class NodeSpec(msgspec.Struct, forbid_unknown_fields=True):
    id: NodeId
    label: Label = ""
    # The group an engine puts the node in (a fan-out's name): the dashboard draws a
    # group of GROUP_THRESHOLD nodes or more as one node. Omitted when none.
    group: Label | msgspec.UnsetType = msgspec.UNSET

    @property
    def group_name(self) -> str:
        """The node's group, or "" when it has none."""
        return self.group or ""


class AddNode(_Mutation, tag="add_node"):
    node: NodeSpec


class RemoveNode(_Mutation, tag="remove_node"):
    node_id: NodeId
    # The edges that went with the node. Engines omit it; the server fills it
    # in, so history can restore them. Events recorded before it did lack it.
    edges: list[EdgeView] | None = None


class AddEdge(_Mutation, tag="add_edge"):
    src: NodeId = msgspec.field(name="from")
    dst: NodeId = msgspec.field(name="to")


class RemoveEdge(_Mutation, tag="remove_edge"):
    src: NodeId = msgspec.field(name="from")
    dst: NodeId = msgspec.field(name="to")


Mutation = AddNode | RemoveNode | AddEdge | RemoveEdge
MUTATION_OPS: tuple[str, ...] = tuple(str(m.__struct_config__.tag) for m in Mutation.__args__)


class DagMutated(EventPayload, tag="dag_mutated"):
    mutation: Mutation


def _touching(edges: Iterable[Pair], node_id: str) -> list[Pair]:
    return [edge for edge in edges if node_id in edge]


def apply_mutation(work: Working, mutation: Mapping[str, Any]) -> None:
    match mutation["op"]:
        case "add_node":
            spec = mutation["node"]
            work.nodes[spec["id"]] = new_node(spec["id"], spec.get("label", ""))
        case "remove_node":
            gone = mutation["node_id"]
            work.nodes.pop(gone, None)
            # The edges it records, and any other: none can outlive the node.
            for edge in _touching(work.edges, gone):
                del work.edges[edge]
        case "add_edge":
            work.edges[(mutation["from"], mutation["to"])] = None
        case "remove_edge":
            work.edges.pop((mutation["from"], mutation["to"]), None)


def initial_structure(
    labels: Mapping[str, str], edges: Iterable[Pair], mutations: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, str], dict[Pair, None]]:
    """Node labels and edges before ``mutations`` (in seq order), from those after them."""
    nodes = dict(labels)
    pairs = dict.fromkeys(edges)
    # A removed node gets back the label it was last added with (one it had
    # at creation is not in the log).
    last_label: dict[str, str] = {}
    removed_label: dict[int, str] = {}
    for i, m in enumerate(mutations):
        if m["op"] == "add_node":
            last_label[m["node"]["id"]] = m["node"].get("label", "")
        elif m["op"] == "remove_node":
            removed_label[i] = last_label.get(m["node_id"], "")
    for i in range(len(mutations) - 1, -1, -1):
        m = mutations[i]
        match m["op"]:
            case "add_node":
                gone = m["node"]["id"]
                nodes.pop(gone, None)
                for edge in _touching(pairs, gone):
                    del pairs[edge]
            case "remove_node":
                nodes[m["node_id"]] = removed_label[i]
                for edge in m.get("edges") or ():
                    pairs[(edge["from"], edge["to"])] = None
            case "add_edge":
                pairs.pop((m["from"], m["to"]), None)
            case "remove_edge":
                pairs[(m["from"], m["to"])] = None
    return nodes, pairs


def reduce(work: Working, event: EventData) -> None:
    apply_mutation(work, event["mutation"])


def describe(event: EventData, name: Namer) -> Wording:
    m = event["mutation"]
    op = m["op"]
    if op == "add_node":
        subject, text = m["node"].get("label") or m["node"]["id"], _("node added")
    elif op == "remove_node":
        subject, text = name(m["node_id"]), _("node removed")
    else:
        subject = f"{name(m['from'])} → {name(m['to'])}"
        text = _("edge added") if op == "add_edge" else _("edge removed")
    return Wording(icon="branch", tone="info", subject=subject, text=text)


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The whole graph, drawn again (its layout changes); of several in a message, the last."""
    snap = work.snapshot()
    return [("graph", graph_html(dag_id, snap.nodes, snap.edges, oob=True, declared=work.declared))]


KIND = EventKind(
    DagMutated,
    reduce,
    describe,
    fragments,
    reads=frozenset({"structure"}),
    redraws=frozenset({"progress", "gantt"}),
)
