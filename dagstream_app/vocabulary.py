"""The words the protocol is made of: ids, statuses, decisions, field types, message bases.

Every message module builds on these: :mod:`dagstream_app.protocol` (commands,
replies, codecs), each event type's home in :mod:`dagstream_app.events`, and the
views of a DAG's state in :mod:`dagstream_app.dagviews`. Nothing here imports
another part of dagstream but :mod:`dagstream_app.errors`. The words people read
for the statuses (:data:`STATUS_LABELS`, :data:`STATUS_WORDS`) are translatable.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, cast

import msgspec
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from dagstream_app.errors import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
)

DAG_ID_CHARS = r"[A-Za-z0-9_.-]{1,100}"  # a DAG id, unanchored (routes embed it)
# "." and ".." are refused: a browser resolves /dags/../ to /, so such a run could
# never be opened.
DAG_ID_PATTERN = rf"^(?!\.\.?$){DAG_ID_CHARS}$"
DAG_ID_RE = re.compile(DAG_ID_PATTERN)

NodeStatus = Literal["pending", "running", "waiting", "completed", "failed", "skipped", "cancelled"]
NODE_STATUSES: tuple[str, ...] = NodeStatus.__args__  # type: ignore[attr-defined]
ExecutionStatus = Literal["running", "paused", "cancelling", "cancelled", "completed", "failed"]
EXECUTION_STATUSES: tuple[str, ...] = ExecutionStatus.__args__  # type: ignore[attr-defined]
TERMINAL_STATUSES = frozenset({"cancelled", "completed", "failed"})
# A run in one of these expects its engine to report (or heartbeat).
LIVE_STATUSES = frozenset({"running", "paused", "cancelling"})
# A node in one of these has finished (its ``finished_at`` is set).
FINISHED_NODE_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})
Decision = Literal["approve", "reject", "modify"]
# "closed": its run ended before anyone decided (no decision; see the gate_closed event).
GateStatus = Literal["pending", "approved", "rejected", "modified", "closed"]
DECISION_TO_GATE_STATUS: dict[str, GateStatus] = {
    "approve": "approved",
    "reject": "rejected",
    "modify": "modified",
}
GATE_STATUS_TO_DECISION: dict[str, Decision] = {
    status: cast(Decision, decision) for decision, status in DECISION_TO_GATE_STATUS.items()
}

# What people read for a status (node, run or gate): a badge, a filter, the legend.
STATUS_LABELS = {
    "pending": _("Pending"),
    "running": _("Running"),
    "waiting": _("Waiting"),
    "completed": _("Completed"),
    "failed": _("Failed"),
    "skipped": _("Skipped"),
    "cancelled": _("Cancelled"),
    "paused": _("Paused"),
    "cancelling": _("Cancelling"),
    "approved": _("Approved"),
    "rejected": _("Rejected"),
    "modified": _("Modified"),
    "closed": _("Closed"),
}
# The same in a sentence, after what changed ("extract completed", "Run paused").
STATUS_WORDS = {
    "pending": pgettext_lazy("status in a sentence", "pending"),
    "running": pgettext_lazy("status in a sentence", "running"),
    "waiting": pgettext_lazy("status in a sentence", "waiting"),
    "completed": pgettext_lazy("status in a sentence", "completed"),
    "failed": pgettext_lazy("status in a sentence", "failed"),
    "skipped": pgettext_lazy("status in a sentence", "skipped"),
    "cancelled": pgettext_lazy("status in a sentence", "cancelled"),
    "paused": pgettext_lazy("status in a sentence", "paused"),
    "cancelling": pgettext_lazy("status in a sentence", "cancelling"),
    "approved": pgettext_lazy("status in a sentence", "approved"),
    "rejected": pgettext_lazy("status in a sentence", "rejected"),
    "modified": pgettext_lazy("status in a sentence", "modified"),
    "closed": pgettext_lazy("status in a sentence", "closed"),
}


def status_label(status: str) -> str:
    """A status as a badge says it (``Running``); an unknown one as it is."""
    label = STATUS_LABELS.get(status)
    return str(label) if label is not None else status.capitalize()


def status_word(status: str) -> str:
    """A status in a sentence (``completed``); an unknown one as it is."""
    word = STATUS_WORDS.get(status)
    return str(word) if word is not None else status


# A decision or an action as a verb ("Someone else decided first: reject by ann",
# "Cannot pause a DAG that is completed", "You may not control DAGs").
VERBS = {
    "approve": pgettext_lazy("verb", "approve"),
    "reject": pgettext_lazy("verb", "reject"),
    "modify": pgettext_lazy("verb", "modify"),
    "pause": pgettext_lazy("verb", "pause"),
    "resume": pgettext_lazy("verb", "resume"),
    "cancel": pgettext_lazy("verb", "cancel"),
    "view": pgettext_lazy("verb", "view"),
    "decide": pgettext_lazy("verb", "decide"),
    "control": pgettext_lazy("verb", "control"),
    "delete": pgettext_lazy("verb", "delete"),
}


def verb(name: str) -> str:
    """A decision or action as a verb in the active language; an unknown one as it is."""
    word = VERBS.get(name)
    return str(word) if word is not None else name


NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Label = Annotated[str, msgspec.Meta(max_length=200)]
# Ints are bounded too: ids are stored (CommandReceipt.command_id, 100 chars).
CommandId = (
    Annotated[str, msgspec.Meta(max_length=100)]
    | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
)
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# Who may decide a gate: a username, or ``group:<name>`` for the members of a group.
Assignee = Annotated[str, msgspec.Meta(min_length=1, max_length=150)]
Assignees = Annotated[list[Assignee], msgspec.Meta(max_length=100)]
# How many approvals from distinct people a gate needs.
Quorum = Annotated[int, msgspec.Meta(ge=1, le=100)]
GROUP_PREFIX = "group:"

CLOSE_CODES: dict[str, int] = {
    "unauthenticated": CLOSE_UNAUTHENTICATED,
    "forbidden": CLOSE_FORBIDDEN,
    "not_found": CLOSE_NOT_FOUND,
    "try_again_later": CLOSE_TRY_AGAIN_LATER,
}


class Message(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, omit_defaults=True):
    # No docstring: msgspec would give it to every message's JSON Schema.
    pass


class EventPayload(Message):
    # The payload of a DAG event, without the envelope (dag_id, seq, ts) that
    # services add. Each event type's struct subclasses it, in its home.
    pass
