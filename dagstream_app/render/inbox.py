"""The inbox's parts: a waiting gate's entry (its run, its card), the list, the count.

The live inbox (:class:`~dagstream_app.consumers.inbox.GateInboxConsumer`) sends
them as out-of-band swaps: whole entries that come and go, and only the votes
line of one that changed, so a feedback draft being written stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from dagstream_app.render.format import dom_id, fragment
from dagstream_app.render.regions import gate_html, votes_context

if TYPE_CHECKING:
    from dagstream_app.permissions import Voter
    from dagstream_app.state.inbox import InboxGate

__all__ = [
    "inbox_count_html",
    "inbox_entry_html",
    "inbox_gone_html",
    "inbox_list_html",
    "inbox_votes_html",
]


def _entry_id(item: InboxGate) -> str:
    return dom_id("inbox", f"{item.dag_id}\x00{item.gate.node_id}")


def inbox_entry_html(item: InboxGate, voter: Voter | None, *, oob: bool = False) -> SafeString:
    """One waiting gate: its run (a link), when it opened, and its card, decidable in place;
    ``oob`` appends it to the list."""
    card = gate_html(item.dag_id, item.gate, True, label=item.label, across_runs=True, voter=voter)
    context = {
        "id": _entry_id(item),
        "item": item,
        "run_url": reverse("dagstream:detail", args=[item.dag_id]),
        "card": card,
    }
    entry = fragment("inbox_entry.html", context)
    if oob:  # htmx appends the wrapper's children
        return mark_safe(f'<div hx-swap-oob="beforeend:#inbox-list">{entry}</div>')
    return entry


def inbox_list_html(
    items: Sequence[InboxGate], voter: Voter | None, *, oob: bool = False
) -> SafeString:
    """The whole list (the page, and a socket's first message)."""
    entries = [inbox_entry_html(item, voter) for item in items]
    return fragment("inbox_list.html", {"entries": entries, "oob": oob})


def inbox_gone_html(dag_id: str, node_id: str) -> str:
    """Takes a decided (or closed) gate's entry off the list (out of band)."""
    entry = dom_id("inbox", dag_id + "\x00" + node_id)
    return f'<div id="{entry}" hx-swap-oob="delete"></div>'


def inbox_votes_html(item: InboxGate) -> SafeString:
    """A listed gate's votes line, replaced (out of band)."""
    context = votes_context(item.dag_id, item.gate, across_runs=True)
    return fragment("gate_votes.html", {"g": context, "oob": True})


def inbox_count_html(count: int, *, oob: bool = False) -> SafeString:
    """The navigation's count of gates waiting for this person."""
    return fragment("inbox_count.html", {"count": count, "oob": oob})
