"""``human_gate_waiting``: a gate opened at a node and waits for a person's decision."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from dagstream_app.dagviews import GateView, Working
from dagstream_app.events.registry import EventData, EventKind, Namer, Wording
from dagstream_app.render.format import Part, Perms
from dagstream_app.render.regions import run_gate_html
from dagstream_app.vocabulary import Assignees, EventPayload, NodeId, Quorum


class HumanGateWaiting(EventPayload, tag="human_gate_waiting"):
    node_id: NodeId
    presentation: dict[str, Any]
    # Who may decide it (usernames, "group:<name>"); absent: whoever may decide gates.
    assignees: Assignees = []
    # Approvals from distinct people it needs; absent: 1 (the first decision decides).
    quorum: Quorum = 1


def reduce(work: Working, event: EventData) -> None:
    node_id = event["node_id"]
    work.gates[node_id] = GateView(
        node_id=node_id,
        presentation=event["presentation"],
        status="pending",
        decision=None,
        feedback="",
        decided_by="",
        decided_at=None,
        assignees=list(event.get("assignees") or []),
        quorum=event.get("quorum") or 1,
        votes=[],
    )


def describe(event: EventData, name: Namer) -> Wording:
    return Wording(
        icon="waiting",
        tone="waiting",
        subject=name(event["node_id"]),
        text=_("waiting for a decision"),
    )


def fragments(dag_id: str, seq: int, event: EventData, work: Working, perms: Perms) -> list[Part]:
    """The gate's card, added to the list."""
    card = run_gate_html(dag_id, work, event["node_id"], perms[0])
    return [(None, f'<div hx-swap-oob="beforeend:#gate-list">{card}</div>')]


KIND = EventKind(
    HumanGateWaiting, reduce, describe, fragments, redraws=frozenset({"gantt", "groups"})
)
