"""The DAG as one server-rendered SVG: a slot per node, a path per edge.

Built here in Python, not in templates, because a 5,000-node DAG must render
in well under a second. The dashboard's scripts (``static/dagstream_app/dashboard/``)
add zoom, pan and the tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

from dagstream_app import layout
from dagstream_app.dagviews import EdgeView, NodeView
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
from dagstream_app.vocabulary import FINISHED_NODE_STATUSES


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
    short = label if len(label) <= 20 else label[:19] + "…"
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
    return (
        f'<g class="node s-{status}" data-node-id="{e_id}" data-status="{status}"'
        f' data-seq="{seq}" data-href="{escape(node_url(dag_id, node_id, base))}" tabindex="0"'
        # The full label shows on hover and focus (dashboard/tooltip.js); the
        # accessible name carries it too. Few elements per node: 5,000 must parse fast.
        f' role="button" aria-label="{e_label}: {escape(said)}">'
        f'<rect class="node-box" width="{layout.NODE_W}" height="{layout.NODE_H}" rx="10"/>'
        f'<rect class="node-bar" width="4" height="{layout.NODE_H - 16}" x="0" y="8" rx="2"/>'
        f'<use class="node-icon{" spin" if status == "running" else ""}"'
        f' href="#ds-i-{STATUS_ICONS.get(status, "pending")}"'
        ' x="14" y="16" width="20" height="20"/>'
        f'<text class="node-label" x="44" y="22">{escape(short)}</text>'
        f'<text class="node-meta" x="44" y="40"{timer}>{escape(text)}</text>'
        "</g>"
    )


def _status_text(node: NodeView) -> str:
    """A node's status in words; a retry and a held start say so (Celery reports both)."""
    retries = node.metrics.get("retries")
    if node.status == "waiting" and type(retries) is int and retries > 0:
        return f"Retrying · #{retries}"
    if node.status == "pending" and node.metrics.get("held"):
        return "Held: paused"
    return node.status.capitalize()


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
) -> SafeString:
    """The whole graph: ``<div id="graph">`` around one server-rendered ``<svg>``.

    The drawing fits its card (``viewBox``, never enlarged); ``dashboard/zoom.js`` adds
    zoom and pan (wheel, drag, pinch, keys, the buttons), a minimap for big graphs
    and a tooltip with each node's full label.
    """
    ids = [n.id for n in nodes]
    pairs = [(e.src, e.dst) for e in edges]
    lay = layout.compute(ids, pairs)
    out = [
        f'<div id="graph"{oob_attr(oob)} class="graph" data-nodes="{len(ids)}" tabindex="0"'
        ' aria-label="Graph. Plus and minus zoom, arrows pan, 0 fits it to the card."'
        f' style="--graph-w: {lay.width}px; --graph-h: {lay.height}px">',
        '<div class="graph-tools" role="toolbar" aria-label="Zoom">'
        '<button type="button" class="btn btn--icon btn--sm" data-zoom="out"'
        ' aria-label="Zoom out" title="Zoom out (-)">\u2212</button>'
        '<output class="graph-zoom" aria-live="polite">100%</output>'
        '<button type="button" class="btn btn--icon btn--sm" data-zoom="in"'
        ' aria-label="Zoom in" title="Zoom in (+)">+</button>'
        '<button type="button" class="btn btn--sm" data-zoom="fit"'
        ' title="Fit the graph to the card (0)">Fit</button></div>',
        f'<svg class="graph-svg" viewBox="0 0 {lay.width} {lay.height}"'
        f' data-width="{lay.width}" data-height="{lay.height}"'
        ' preserveAspectRatio="xMidYMid meet"'
        f' role="group" aria-label="Graph of {len(ids)} nodes">',
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
    out.append("</g></svg>")
    if not ids:
        out.append('<p class="empty">This run has no nodes yet.</p>')
    out.append("</div>")
    return mark_safe("".join(out))
