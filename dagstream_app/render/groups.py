"""A group of nodes (a fan-out) in the graph: one box with counts, a bar and its time.

The box is a node like the others to the page's scripts and to hosts: a
``<g class="node group">`` with ``data-node-id`` (the group's id), ``data-status``
(the group's: :attr:`dagstream_app.dagviews.GroupView.status`) and a ``node-label``;
its ``data-href`` opens the group's panel (its members, paged, failures first).
A member's update swaps only this box, a few hundred bytes, however many members.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from dagstream_app import layout
from dagstream_app.dagviews import GroupView
from dagstream_app.render.format import (
    STATUS_ICONS,
    dom_id,
    format_duration,
    node_url,
    nodes_base,
    span_seconds,
)
from dagstream_app.vocabulary import status_label, status_word

if TYPE_CHECKING:
    from dagstream_app.state import Found

LABEL_CHARS = 15
GROUP_H = layout.NODE_H + 48  # label, done of all, failed and running, bar, time
BAR_W = layout.NODE_W - 28
BAR_Y = GROUP_H - 26
# The bar's parts, left to right: done (completed, skipped), failed, active.
BAR_PARTS = (
    ("completed", ("completed", "skipped")),
    ("failed", ("failed",)),
    ("running", ("running", "waiting")),
)
# The order counts are said in: failures first.
SAID = ("failed", "running", "waiting", "completed", "skipped", "cancelled", "pending")


def _count(n: int) -> str:
    """``12,000`` (in the active locale's digits)."""
    return formats.number_format(n, force_grouping=True)


def group_url(dag_id: str, group_id: str) -> str:
    """The group's panel: its members, paged."""
    return f"{reverse('dagstream:detail', args=[dag_id])}groups/{quote(group_id, safe='')}/"


def counts_text(group: GroupView) -> str:
    """``3 failed · 40 running · 12,000 done · 37,957 pending``: failures first."""
    counts = group.counts
    active = counts.get("running", 0) + counts.get("waiting", 0)
    parts = []
    for status in SAID:
        word = _("done") if status == "completed" else status_word(status)
        n = active if status == "running" else counts.get(status, 0)
        if n and status != "waiting":
            parts.append(f"{_count(n)} {word}")
    return " · ".join(parts)


def _bar(group: GroupView) -> str:
    total = group.total or 1
    out, x = [], 14.0
    out.append(f'<rect class="group-track" x="14" y="{BAR_Y}" width="{BAR_W}" height="6"/>')
    for part, statuses in BAR_PARTS:
        n = sum(group.counts.get(s, 0) for s in statuses)
        if not n:
            continue
        w = round(BAR_W * n / total, 1)
        out.append(
            f'<rect class="group-fill g-{part}" x="{x:g}" y="{BAR_Y}" width="{w:g}" height="6"/>'
        )
        x += w
    return "".join(out)


def _lines(group: GroupView) -> tuple[str, str]:
    """The box's two lines of counts: ``16,666 / 50,000 done``, ``3 failed · 40 running``."""
    counts = group.counts
    done = counts.get("completed", 0) + counts.get("skipped", 0)
    active = counts.get("running", 0) + counts.get("waiting", 0)
    second = [
        f"{_count(n)} {word}"
        for n, word in (
            (counts.get("failed", 0), status_word("failed")),
            (active, status_word("running")),
        )
        if n
    ]
    # Translators: a group box's first line: how many of its nodes are done, of all.
    done_line = _("%(done)s / %(all)s done") % {"done": _count(done), "all": _count(group.total)}
    return done_line, " · ".join(second)


def group_svg(dag_id: str, group: GroupView, seq: int = 0, now: str | None = None) -> str:
    """The inner ``<g class="node group">`` of one group's slot."""
    status = group.status
    gid = escape(group.id)
    # Room for about 15 characters beside the icon; the tooltip has it whole.
    shown = group.label if len(group.label) <= LABEL_CHARS else group.label[: LABEL_CHARS - 1] + "…"
    total = group.total
    said = counts_text(group)
    first, second = _lines(group)
    timer, took = "", ""
    if status == "running" and group.started_at:
        took = (
            f"{status_label(status)} · {format_duration(span_seconds(group.started_at, None, now))}"
        )
        timer = f' data-started="{escape(group.started_at)}"'
    elif group.started_at and group.finished_at:
        took = format_duration(span_seconds(group.started_at, group.finished_at))
        took = f"{status_label(status)} · {took}"
    else:
        took = status_label(status)
    # Translators: a group box's name for screen readers: its label, size and counts.
    named = _("%(label)s: group of %(count)s nodes, %(counts)s") % {
        "label": group.label,
        "count": _count(total),
        "counts": said,
    }
    return (
        f'<g class="node group s-{status}" data-node-id="{gid}" data-group="{gid}"'
        f' data-status="{status}" data-seq="{seq}" data-total="{total}"'
        f' data-href="{escape(group_url(dag_id, group.id))}" tabindex="0" role="button"'
        f' aria-label="{escape(named)}">'
        f'<rect class="node-box group-shadow" x="6" y="6" width="{layout.NODE_W}"'
        f' height="{GROUP_H}" rx="10"/>'
        f'<rect class="node-box" width="{layout.NODE_W}" height="{GROUP_H}" rx="10"/>'
        f'<rect class="node-bar" width="4" height="{GROUP_H - 16}" x="0" y="8" rx="2"/>'
        f'<use class="node-icon{" spin" if status == "running" else ""}"'
        f' href="#ds-i-{STATUS_ICONS.get(status, "pending")}"'
        ' x="14" y="16" width="20" height="20"/>'
        f'<text class="node-label" x="42" y="31">{escape(shown)}</text>'
        f'<text class="node-meta group-counts" x="14" y="54">{first}</text>'
        f'<text class="node-meta group-counts{" has-failed" if group.counts.get("failed") else ""}"'
        f' x="14" y="69">{second}</text>'
        f"{_bar(group)}"
        f'<text class="node-meta" x="14" y="{GROUP_H - 8}"{timer}>{escape(took)}</text>'
        "</g>"
    )


def group_slot_html(dag_id: str, group: GroupView, seq: int) -> str:
    """One group's box swapped into its stable slot (live: a member changed)."""
    return (
        f'<svg hx-swap-oob="innerHTML:#{dom_id("gs", group.id)}">'
        f"{group_svg(dag_id, group, seq)}</svg>"
    )


def node_list_html(
    dag_id: str,
    found: Found,
    *,
    group: GroupView | None,
    q: str,
    page: int,
    per_page: int,
) -> SafeString:
    """A group's panel (its members, failures first) or a search's: a page of nodes, each
    opening its own panel, a search box, and the pages."""
    base = group_url(dag_id, group.id) if group else nodes_base(dag_id)
    pages = max(1, -(-found.total // per_page))

    def at(n: int) -> str:
        return f"{base}?{urlencode({'q': q, 'page': n} if q else {'page': n})}"

    duration = ""
    if group is not None and group.started_at:
        duration = format_duration(span_seconds(group.started_at, group.finished_at))
    context = {
        "group": group,
        "slot": dom_id("gs", group.id) if group else "",
        "url": at(page),
        "base": base,
        "counts": counts_text(group) if group else "",
        "duration": duration,
        "q": q,
        "total": found.total,
        "page": page,
        "pages": pages,
        "prev_url": at(page - 1) if page > 1 else "",
        "next_url": at(page + 1) if page < pages else "",
        "rows": [
            {"id": i, "label": label or i, "status": s, "group": g, "url": node_url(dag_id, i)}
            for i, label, s, g in found.rows
        ],
    }
    return mark_safe(render_to_string("dagstream_app/node_list.html", context))
