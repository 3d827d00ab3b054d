"""A group of nodes (a fan-out) in the graph: one box with counts, a bar and its time.

The box is a node like the others to the page's scripts and to hosts: a
``<g class="node group">`` with ``data-node-id`` (the group's id), ``data-status``
(the group's: :attr:`dagstream_app.dagviews.GroupView.status`) and a ``node-label``;
its ``data-href`` opens the group's panel (its members, paged, failures first).
A member's update swaps only this box, a few hundred bytes, however many members.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from django.urls import reverse

from dagstream_app import layout
from dagstream_app.dagviews import GroupView
from dagstream_app.render.format import (
    STATUS_ICONS,
    dom_id,
    format_duration,
    span_seconds,
)

LABEL_CHARS = 12
GROUP_H = layout.NODE_H + 30  # label, counts, bar, time
BAR_W = layout.NODE_W - 28
# The bar's parts, left to right, and how the counts line names them.
BAR_PARTS = (("completed", "done"), ("failed", "failed"), ("running", "running"))
SAID = (
    ("failed", "failed"),
    ("running", "running"),
    ("waiting", "waiting"),
    ("completed", "done"),
    ("skipped", "skipped"),
    ("cancelled", "cancelled"),
    ("pending", "pending"),
)


def group_url(dag_id: str, group_id: str) -> str:
    """The group's panel: its members, paged."""
    return f"{reverse('dagstream:detail', args=[dag_id])}groups/{quote(group_id, safe='')}/"


def counts_text(group: GroupView) -> str:
    """``3 failed · 40 running · 12,000 done · 37,957 pending``: failures first."""
    counts = group.counts
    active = counts.get("running", 0) + counts.get("waiting", 0)
    parts = []
    for status, word in SAID:
        n = active if status == "running" else counts.get(status, 0)
        if n and status != "waiting":
            parts.append(f"{n:,} {word}")
    return " · ".join(parts)


def _bar(group: GroupView) -> str:
    total = group.total or 1
    out, x = [], 14.0
    out.append(f'<rect class="group-track" x="14" y="{GROUP_H - 36}" width="{BAR_W}" height="6"/>')
    for status, _ in BAR_PARTS:
        n = group.counts.get(status, 0) + (
            group.counts.get("skipped", 0) if status == "completed" else 0
        )
        if status == "running":
            n += group.counts.get("waiting", 0)
        if not n:
            continue
        w = round(BAR_W * n / total, 1)
        out.append(
            f'<rect class="group-fill g-{status}" x="{x:g}" y="{GROUP_H - 36}"'
            f' width="{w:g}" height="6"/>'
        )
        x += w
    return "".join(out)


def group_svg(dag_id: str, group: GroupView, seq: int = 0, now: str | None = None) -> str:
    """The inner ``<g class="node group">`` of one group's slot."""
    status = group.status
    gid, label = escape(group.id), escape(group.label)
    # Room for about 12 characters beside the icon and the count; the tooltip has it whole.
    shown = group.label if len(group.label) <= LABEL_CHARS else group.label[: LABEL_CHARS - 1] + "…"
    total = group.total
    said = counts_text(group)
    timer, took = "", ""
    if status == "running" and group.started_at:
        took = f"Running · {format_duration(span_seconds(group.started_at, None, now))}"
        timer = f' data-started="{escape(group.started_at)}"'
    elif group.started_at and group.finished_at:
        took = format_duration(span_seconds(group.started_at, group.finished_at))
        took = f"{status.capitalize()} · {took}"
    else:
        took = status.capitalize()
    return (
        f'<g class="node group s-{status}" data-node-id="{gid}" data-group="{gid}"'
        f' data-status="{status}" data-seq="{seq}" data-total="{total}"'
        f' data-href="{escape(group_url(dag_id, group.id))}" tabindex="0" role="button"'
        f' aria-label="{label}: group of {total:,} nodes, {escape(said)}">'
        f'<rect class="node-box group-shadow" x="6" y="6" width="{layout.NODE_W}"'
        f' height="{GROUP_H}" rx="10"/>'
        f'<rect class="node-box" width="{layout.NODE_W}" height="{GROUP_H}" rx="10"/>'
        f'<rect class="node-bar" width="4" height="{GROUP_H - 16}" x="0" y="8" rx="2"/>'
        f'<use class="node-icon{" spin" if status == "running" else ""}"'
        f' href="#ds-i-{STATUS_ICONS.get(status, "pending")}"'
        ' x="14" y="14" width="18" height="18"/>'
        f'<text class="node-label" x="40" y="28">{escape(shown)}'
        f' <tspan class="group-n">\u00d7{total:,}</tspan></text>'
        f'<text class="node-meta group-counts" x="14" y="50">{escape(said)}</text>'
        f"{_bar(group)}"
        f'<text class="node-meta" x="14" y="{GROUP_H - 12}"{timer}>{escape(took)}</text>'
        "</g>"
    )


def group_slot_html(dag_id: str, group: GroupView, seq: int) -> str:
    """One group's box swapped into its stable slot (live: a member changed)."""
    return (
        f'<svg hx-swap-oob="innerHTML:#{dom_id("gs", group.id)}">'
        f"{group_svg(dag_id, group, seq)}</svg>"
    )
