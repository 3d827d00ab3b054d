"""The DAG as one server-rendered SVG: a slot per node, a path per edge.

Built here in Python, not in templates, because a 5,000-node DAG must render
in well under a second. The dashboard's scripts (``static/dagstream_app/dashboard/``)
add zoom, pan and the tooltip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from dagstream_app import groups, layout
from dagstream_app.conf import config
from dagstream_app.dagviews import EdgeView, GraphView, NodeView
from dagstream_app.render.format import (
    STATUS_ICONS,
    dom_id,
    edge_dom_id,
    format_duration,
    node_url,
    nodes_base,
    oob_attr,
    span_seconds,
)
from dagstream_app.render.groups import GROUP_H, group_svg
from dagstream_app.vocabulary import FINISHED_NODE_STATUSES, status_label

# A label's lines: its font size (dagstream.css .node-label), the room beside the icon,
# and the distance between two lines. Two lines at most; past that it ends with "…" (the
# tooltip and the accessible name carry it whole).
LABEL_PX = 14
LABEL_X = 44
LABEL_ROOM = layout.NODE_W - LABEL_X - 8
LINE_H = 17
MAX_LINES = 2
# Widths of characters in ems, generous (DejaVu Sans, the widest of the usual system
# fonts): a label that fits by this measure fits in the box whatever font shows it.
_NARROW = frozenset("iIjl.,:;'|!`")
_SLIM = frozenset("frt()[]{} -/")
_WIDE = frozenset("mwMW@%")


def _em(char: str) -> float:
    if char in _NARROW:
        return 0.3
    if char in _SLIM:
        return 0.42
    if char in _WIDE or ord(char) >= 0x2E80:  # CJK and the like: full width
        return 1.0
    if char.isdigit():
        return 0.66
    return 0.72 if char.isupper() else 0.6


def text_width(text: str, px: float = LABEL_PX) -> float:
    """An upper estimate of ``text``'s width in pixels at ``px`` (no font at hand)."""
    return sum(_em(c) for c in text) * px


def _fit(text: str, room: float) -> int:
    """How many of ``text``'s first characters fit in ``room`` pixels."""
    used = 0.0
    for i, char in enumerate(text):
        used += _em(char) * LABEL_PX
        if used > room:
            return i
    return len(text)


def label_lines(label: str) -> list[str]:
    """``label`` wrapped to the box: at word ends where it can, at most ``MAX_LINES``."""
    lines: list[str] = []
    rest = " ".join(label.split())
    while rest:
        if len(lines) == MAX_LINES - 1:
            if text_width(rest) <= LABEL_ROOM:
                lines.append(rest)
            else:
                lines.append(rest[: _fit(rest, LABEL_ROOM - text_width("…"))].rstrip() + "…")
            break
        n = _fit(rest, LABEL_ROOM)
        if n < len(rest):
            space = rest.rfind(" ", 0, n + 1)
            n = space if space > 0 else max(n, 1)
        lines.append(rest[:n].rstrip())
        rest = rest[n:].lstrip()
    return lines or [""]


def box_height(lines: int) -> int:
    """The height of a node's box whose label takes ``lines`` lines."""
    return layout.NODE_H + LINE_H * (lines - 1)


def node_svg(
    dag_id: str,
    node: NodeView,
    seq: int = 0,
    base: str | None = None,
    now: str | None = None,
) -> str:
    """The inner ``<g class="node">`` of one node's slot (status, label, duration)."""
    node_id, status = node.id, node.status
    label = node.label or node_id
    lines = label_lines(label)
    height = box_height(len(lines))
    started, finished = node.started_at, node.finished_at
    duration = ""
    timer = ""
    if status == "running" and started:
        duration = format_duration(span_seconds(started, None, now))
        timer = f' data-started="{escape(started)}"'
    elif started and finished and status in FINISHED_NODE_STATUSES:
        duration = format_duration(span_seconds(started, finished))
    said = _status_text(node)
    text = said + (f" · {duration}" if duration else "")
    e_id, e_label = escape(node_id), escape(label)
    if len(lines) == 1:
        shown = escape(lines[0])
    else:  # one <tspan> a line; the <text> keeps the class tests and hosts select
        shown = "".join(
            f'<tspan x="{LABEL_X}" dy="{LINE_H if i else 0}">{escape(line)}</tspan>'
            for i, line in enumerate(lines)
        )
    return (
        f'<g class="node s-{status}" data-node-id="{e_id}" data-status="{status}"'
        f' data-seq="{seq}" data-href="{escape(node_url(dag_id, node_id, base))}" tabindex="0"'
        # The full label shows on hover and focus (dashboard/tooltip.js); the
        # accessible name carries it too. Few elements per node: 5,000 must parse fast.
        f' role="button" aria-label="{e_label}: {escape(said)}">'
        f'<rect class="node-box" width="{layout.NODE_W}" height="{height}" rx="10"/>'
        f'<rect class="node-bar" width="4" height="{height - 16}" x="0" y="8" rx="2"/>'
        f'<use class="node-icon{" spin" if status == "running" else ""}"'
        f' href="#ds-i-{STATUS_ICONS.get(status, "pending")}"'
        ' x="14" y="16" width="20" height="20"/>'
        f'<text class="node-label" x="{LABEL_X}" y="22">{shown}</text>'
        f'<text class="node-meta" x="{LABEL_X}" y="{height - 12}"{timer}>{escape(text)}</text>'
        "</g>"
    )


def _status_text(node: NodeView) -> str:
    """A node's status in words; a retry and a held start say so (Celery reports both)."""
    retries = node.metrics.get("retries")
    if node.status == "waiting" and type(retries) is int and retries > 0:
        return _("Retrying · #%(retries)s") % {"retries": retries}
    if node.status == "pending" and node.metrics.get("held"):
        return _("Held: paused")
    return status_label(node.status)


def _zoom_bar() -> str:
    """The zoom buttons under the graph (words outside f-strings: makemessages finds them)."""
    said = [
        escape(word)
        for word in (
            _("Zoom"),
            _("Zoom out"),
            _("Zoom out (-)"),
            _("Zoom in"),
            _("Zoom in (+)"),
            _("Fit the whole graph in the card (0)"),
            _("Fit"),
        )
    ]
    return (
        f'<div class="graph-bar"><div class="graph-tools" role="toolbar" aria-label="{said[0]}">'
        '<button type="button" class="btn btn--icon btn--sm" data-zoom="out"'
        f' aria-label="{said[1]}" title="{said[2]}">\u2212</button>'
        '<output class="graph-zoom" aria-live="polite">100%</output>'
        '<button type="button" class="btn btn--icon btn--sm" data-zoom="in"'
        f' aria-label="{said[3]}" title="{said[4]}">+</button>'
        '<button type="button" class="btn btn--sm" data-zoom="fit"'
        f' title="{said[5]}">{said[6]}</button></div></div></div>'
    )


def node_slot_html(dag_id: str, node: NodeView, seq: int) -> str:
    """One node's ``<g>`` swapped into its stable slot (as ``<svg>``: a message is HTML)."""
    return (
        f'<svg hx-swap-oob="innerHTML:#{dom_id("ns", node.id)}">{node_svg(dag_id, node, seq)}</svg>'
    )


def graph_html(
    dag_id: str,
    nodes: Sequence[NodeView],
    edges: Sequence[EdgeView],
    now: str | None = None,
    *,
    oob: bool = False,
    graph: GraphView | None = None,
    declared: Mapping[str, str] | None = None,
) -> SafeString:
    """The whole graph: ``<div id="graph">`` around one server-rendered ``<svg>``.

    Fan-outs are drawn as one box each (:mod:`dagstream_app.groups`): ``graph``
    gives them as read (:func:`dagstream_app.state.page_snapshot`); without it,
    ``nodes`` and ``edges`` are the whole DAG and are grouped here (``declared``: the
    groups engines declared, node -> group).

    The drawing sits in a viewport (``.graph-port``) with a bar below it for the zoom
    buttons and the minimap, so neither covers a node. ``dashboard/graph-view.js``
    sizes the viewport to the drawing and opens it at a readable size (fitted when that
    is readable, else zoomed on the active nodes); ``dashboard/zoom.js`` adds zoom and pan
    (wheel, drag, pinch, keys, the buttons), ``minimap.js`` the minimap of graphs too big
    to read whole, ``tooltip.js`` each node's full label.
    """
    if graph is None:
        graph = groups.fold(nodes, edges, config().group_threshold, declared)[1]
    nodes, edges = graph.nodes, graph.edges
    ids = graph.order
    pairs = [(e.src, e.dst) for e in edges]
    tall = {
        n.id: h
        for n in nodes
        if (h := box_height(len(label_lines(n.label or n.id)))) > layout.NODE_H
    }
    tall.update((g.id, GROUP_H) for g in graph.groups)
    lay = layout.compute(ids, pairs, tall)
    total = len(nodes) + sum(g.total for g in graph.groups)
    keys = _("Graph. Plus and minus zoom, arrows pan, 0 fits it to the card.")
    named = _("Graph of %(count)s nodes") % {"count": total}
    out = [
        f'<div id="graph"{oob_attr(oob)} class="graph" data-nodes="{len(ids)}" tabindex="0"'
        f' aria-label="{escape(keys)}"'
        f' style="--graph-w: {lay.width}px; --graph-h: {lay.height}px">',
        f'<div class="graph-port"><svg class="graph-svg" viewBox="0 0 {lay.width} {lay.height}"'
        f' data-width="{lay.width}" data-height="{lay.height}"'
        ' preserveAspectRatio="xMidYMid meet"'
        f' role="group" aria-label="{escape(named)}">',
        '<g class="edges">',
    ]
    out.extend(
        f'<path id="{edge_dom_id(a, b)}" class="edge" d="{lay.edge_path(a, b)}"/>'
        for a, b in pairs
        if a in lay.positions and b in lay.positions
    )
    out.append('</g><g class="nodes">')
    base = nodes_base(dag_id)  # reverse() once, not per node
    for node in nodes:
        x, y = lay.positions[node.id]
        out.append(
            f'<g id="{dom_id("ns", node.id)}" class="slot" transform="translate({x} {y})">'
            f"{node_svg(dag_id, node, base=base, now=now)}</g>"
        )
    for group in graph.groups:
        x, y = lay.positions[group.id]
        out.append(
            f'<g id="{dom_id("gs", group.id)}" class="slot" transform="translate({x} {y})">'
            f"{group_svg(dag_id, group, now=now)}</g>"
        )
    out.append("</g></svg></div>")
    if not ids:
        out.append('<p class="empty">' + escape(_("This run has no nodes yet.")) + "</p>")
    out.append(_zoom_bar())
    return mark_safe("".join(out))
