"""The state of a DAG after any seq, rebuilt from its event log (read-only).

The log holds every change after creation, but not the structure the DAG was
created with. That is recovered by undoing every ``dag_mutated`` event, newest
first, from today's structure. One limit: edges that went away implicitly with
a ``remove_node`` are not in the log, so before that removal they are missing.
"""

from __future__ import annotations

from typing import Any

from dagstream_app.models import Dag, Edge, Event, Gate, Node
from dagstream_app.protocol import format_ts

DECIDED = {"approve": "approved", "reject": "rejected", "modify": "modified"}


def _initial_structure(
    dag_id: str, mutations: list[dict[str, Any]]
) -> tuple[dict[str, str], set[tuple[str, str]]]:
    labels = dict(Node.objects.filter(dag_id=dag_id).values_list("node_id", "label"))
    edges = set(Edge.objects.filter(dag_id=dag_id).values_list("src", "dst"))
    added_labels = {
        m["node"]["id"]: m["node"].get("label", "") for m in mutations if m["op"] == "add_node"
    }
    for m in reversed(mutations):
        match m["op"]:
            case "add_node":
                labels.pop(m["node"]["id"], None)
            case "remove_node":
                labels[m["node_id"]] = added_labels.get(m["node_id"], "")
            case "add_edge":
                edges.discard((m["from"], m["to"]))
            case "remove_edge":
                edges.add((m["from"], m["to"]))
    return labels, edges


def state_at(dag_id: str, seq: int) -> dict[str, Any] | None:
    """A snapshot-shaped dict of the DAG after event ``seq`` (plus ``at``: its time)."""
    dag = Dag.objects.filter(pk=dag_id).first()
    if dag is None:
        return None
    rows = list(
        Event.objects.filter(dag_id=dag_id)
        .order_by("seq")
        .values_list("seq", "type", "created_at", "payload")
    )
    mutations = [payload["mutation"] for _, kind, _, payload in rows if kind == "dag_mutated"]
    labels, edges = _initial_structure(dag_id, mutations)
    nodes: dict[str, dict[str, Any]] = {
        node_id: _node(node_id, label) for node_id, label in labels.items()
    }
    presentations = dict(Gate.objects.filter(dag_id=dag_id).values_list("node_id", "presentation"))
    gates: dict[str, dict[str, Any]] = {}
    snap: dict[str, Any] = {
        "dag_id": dag_id,
        "name": dag.name,
        "status": "running",
        # A budget set at creation has no event: assume the first update's (or today's).
        "budget": next((p.get("budget") for _, k, _, p in rows if k == "cost_update"), dag.budget),
        "spent": 0.0,
        "results": None,
        "created_at": format_ts(dag.created_at),
        "finished_at": None,
        "last_seq": 0,
        "at": None,
    }
    for number, kind, created, payload in rows:
        if number > seq:
            break
        ts = format_ts(created)
        snap["last_seq"], snap["at"] = number, ts
        match kind:
            case "node_state":
                node = nodes.setdefault(payload["node_id"], _node(payload["node_id"], ""))
                node["status"] = payload["status"]
                if payload.get("output") is not None:
                    node["output"] = payload["output"]
                if payload.get("metrics"):
                    node["metrics"] = {**node["metrics"], **payload["metrics"]}
                if payload["status"] == "running" and node["started_at"] is None:
                    node["started_at"] = ts
                if payload["status"] in ("completed", "failed", "skipped", "cancelled"):
                    node["finished_at"] = ts
            case "dag_mutated":
                _apply(payload["mutation"], nodes, edges)
            case "cost_update":
                snap["spent"], snap["budget"] = payload["spent"], payload.get("budget")
            case "execution_complete":
                snap["results"] = payload.get("results")
            case "human_gate_waiting":
                gates[payload["node_id"]] = {
                    "node_id": payload["node_id"],
                    "presentation": payload["presentation"],
                    "status": "pending",
                }
            case "gate_decided":
                gates[payload["node_id"]] = {
                    "node_id": payload["node_id"],
                    "presentation": presentations.get(payload["node_id"], {}),
                    "status": DECIDED[payload["decision"]],
                    "feedback": payload.get("feedback", ""),
                    "decided_by": payload.get("decided_by", ""),
                    "decided_at": ts,
                }
            case "execution_state":
                snap["status"] = payload["state"]
                if payload["state"] in ("cancelled", "completed", "failed"):
                    snap["finished_at"] = ts
    snap["nodes"] = list(nodes.values())
    snap["edges"] = [{"from": a, "to": b} for a, b in sorted(edges) if a in nodes and b in nodes]
    snap["gates"] = list(gates.values())
    snap["remaining"] = None if snap["budget"] is None else snap["budget"] - snap["spent"]
    return snap


def _node(node_id: str, label: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "label": label,
        "status": "pending",
        "output": None,
        "metrics": {},
        "started_at": None,
        "finished_at": None,
    }


def _apply(
    mutation: dict[str, Any], nodes: dict[str, dict[str, Any]], edges: set[tuple[str, str]]
) -> None:
    match mutation["op"]:
        case "add_node":
            spec = mutation["node"]
            nodes[spec["id"]] = _node(spec["id"], spec.get("label", ""))
        case "remove_node":
            gone = mutation["node_id"]
            nodes.pop(gone, None)
            edges.difference_update({e for e in edges if gone in e})
        case "add_edge":
            edges.add((mutation["from"], mutation["to"]))
        case "remove_edge":
            edges.discard((mutation["from"], mutation["to"]))
