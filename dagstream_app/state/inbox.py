"""The gates waiting across runs: what the inbox (``/dags/gates/``, ``/api/gates/``) lists.

Which of them a person may decide is the permission rule's to say
(:func:`dagstream_app.permissions.decidable`); this module only reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from dagstream_app.dagviews import GateView
from dagstream_app.models import Gate, Node
from dagstream_app.state.shared import iso
from dagstream_app.state.snapshots import gate_view_of

__all__ = ["INBOX_LIMIT", "InboxGate", "inbox_gates", "pending_gates"]

# The most gates one inbox lists (oldest first): past it, narrow by run name.
INBOX_LIMIT = 500


@dataclass(frozen=True)
class InboxGate:
    """A gate waiting in some run, with what the inbox says about its run and node."""

    dag_id: str
    run_name: str
    label: str  # its node's label, else its id
    opened_at: str
    gate: GateView

    @property
    def key(self) -> tuple[str, str]:
        return (self.dag_id, self.gate.node_id)


def pending_gates(run: str = "") -> list[Gate]:
    """Every pending gate, oldest first, with its run; ``run`` narrows to runs whose
    name or id contains it."""
    found = Gate.objects.filter(status=Gate.Status.PENDING).select_related("dag")
    if run:
        found = found.filter(Q(dag__name__icontains=run) | Q(dag__dag_id__icontains=run))
    return list(found.order_by("created_at", "id")[:INBOX_LIMIT])


def inbox_gates(gates: list[Gate]) -> list[InboxGate]:
    """``gates`` as the inbox shows them (one more query: their nodes' labels)."""
    if not gates:
        return []
    wanted = Q()
    for gate in gates:
        wanted |= Q(dag_id=gate.dag_id, node_id=gate.node_id)
    labels = {
        (dag_id, node_id): label
        for dag_id, node_id, label in Node.objects.filter(wanted).values_list(
            "dag_id", "node_id", "label"
        )
    }
    return [
        InboxGate(
            dag_id=gate.dag_id,
            run_name=gate.dag.name or gate.dag_id,
            label=labels.get((gate.dag_id, gate.node_id)) or gate.node_id,
            opened_at=iso(gate.created_at) or "",
            gate=gate_view_of(gate),
        )
        for gate in gates
    ]
