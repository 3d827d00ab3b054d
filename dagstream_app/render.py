"""HTML for the dashboard, from typed views of a DAG's state: views in, HTML out.

The same functions render a region into the page and into a live message
(``oob=True`` adds ``hx-swap-oob``), so the two never disagree. Regions use
overridable templates under ``dagstream_app/fragments/``, which get ``oob`` in
their context; the graph's nodes and edges are built here in Python because a
5,000-node DAG must render in well under a second. Nothing here queries the
database: callers read with :mod:`dagstream_app.state` first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from dagstream_app import layout
from dagstream_app.conf import config
from dagstream_app.markup import markdown_html
from dagstream_app.money import budget_use, format_money
from dagstream_app.protocol import (
    CLOSE_CODES,
    DECISION_TO_GATE_STATUS,
    FINISHED_NODE_STATUSES,
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    DagSnapshot,
    EdgeView,
    EngineHealth,
    GanttView,
    GateView,
    NodeView,
)
from dagstream_app.replay import NodeCounts, Working, count_nodes

if TYPE_CHECKING:
    from dagstream_app.state import RunRow

# How many events the timeline shows (the page trims to it as events arrive).
TIMELINE_LENGTH = 100
STATUS_ICONS = {
    "pending": "pending",
    "running": "running",
    "waiting": "waiting",
    "completed": "completed",
    "failed": "failed",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "paused": "paused",
    "cancelling": "cancelled",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Perms = tuple[bool, bool]  # (may decide gates, may control the run)


# ----------------------------------------------------------------- helpers


def dom_id(prefix: str, raw: str) -> str:
    """A DOM id (and CSS selector) safe for any string, stable and unique per string."""
    digest = hashlib.blake2s(raw.encode(), digest_size=5).hexdigest()
    return f"{prefix}-{_UNSAFE.sub('', raw)[:32]}-{digest}"


def edge_dom_id(src: str, dst: str) -> str:
    return dom_id("e", f"{src}\x00{dst}")


def nodes_base(dag_id: str) -> str:
    return f"{reverse('dagstream:detail', args=[dag_id])}nodes/"


def node_url(dag_id: str, node_id: str, base: str | None = None) -> str:
    """The node panel's URL; node ids are arbitrary strings, so fully encoded."""
    return f"{base or nodes_base(dag_id)}{quote(node_id, safe='')}/"


def decide_url(dag_id: str, node_id: str) -> str:
    return f"{reverse('dagstream:detail', args=[dag_id])}gates/{quote(node_id, safe='')}/decide/"


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def format_duration(seconds: float | None) -> str:
    """``850 ms``, ``4.2 s``, ``3 m 05 s``, ``2 h 04 m``."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def span_seconds(start: str | None, end: str | None, now: str | None = None) -> float | None:
    """Seconds from ``start`` to ``end`` (still going: to ``now``, default the present)."""
    begin = parse_ts(start)
    if begin is None:
        return None
    finish = parse_ts(end) or parse_ts(now) or timezone.now()
    return (finish - begin).total_seconds()


def pretty_json(value: Any) -> str:
    """JSON for people: indented, keys sorted; a string stays as it is."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _oob(oob: bool) -> str:
    return ' hx-swap-oob="true"' if oob else ""


def page_config() -> dict[str, Any]:
    """What ``dagstream.js`` takes from Python (the pages embed it with ``json_script``)."""
    return {"closeCodes": CLOSE_CODES, "timelineLength": TIMELINE_LENGTH}


# ------------------------------------------------------------------- graph


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
        # The full label shows on hover and focus (dagstream.js's tooltip); the
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

    The drawing fits its card (``viewBox``, never enlarged); ``dagstream.js`` adds
    zoom and pan (wheel, drag, pinch, keys, the buttons), a minimap for big graphs
    and a tooltip with each node's full label.
    """
    ids = [n.id for n in nodes]
    pairs = [(e.src, e.dst) for e in edges]
    lay = layout.compute(ids, pairs)
    out = [
        f'<div id="graph"{_oob(oob)} class="graph" data-nodes="{len(ids)}" tabindex="0"'
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


# ------------------------------------------------------------------- gantt

GANTT_W = 1000  # the drawing's width (it scales to the card)
GANTT_LABEL_W = 190
GANTT_ROW_H = 22
GANTT_TOP = 26  # the axis
GANTT_TICKS = 5


def gantt_html(view: GanttView | None, *, oob: bool = False, now: str | None = None) -> SafeString:
    """The run's Gantt view: ``<section id="gantt-card">`` around one server-rendered ``<svg>``.

    A bar per node from running (or its gate opening) to its end, coloured by
    status; a gate's wait hatched, its decision a diamond; pauses shaded across.
    Bars still going run to ``now`` (default: the present), marked open.
    """
    head = (
        f'<section id="gantt-card" class="card gantt-card"{_oob(oob)}'
        ' aria-labelledby="gantt-title">'
        '<h2 id="gantt-title" class="card-title"><svg class="icon" aria-hidden="true">'
        '<use href="#ds-i-clock"/></svg>Where the time went</h2>'
    )
    if view is None or not view.bars:
        return mark_safe(head + '<p class="empty">No node has run yet.</p></section>')
    t0 = parse_ts(view.start)
    t1 = parse_ts(view.end) or parse_ts(now) or timezone.now()
    assert t0 is not None
    latest = max((parse_ts(b.end) or t1 for b in view.bars), default=t1)
    span = max((max(t1, latest) - t0).total_seconds(), 0.001)
    chart = GANTT_W - GANTT_LABEL_W - 10

    def x(moment: str | None) -> float:
        at = parse_ts(moment) or t1
        return round(GANTT_LABEL_W + chart * max(0.0, (at - t0).total_seconds()) / span, 1)

    height = GANTT_TOP + GANTT_ROW_H * len(view.bars) + 6
    out = [
        head,
        '<div class="gantt-scroll">'
        f'<svg class="gantt" viewBox="0 0 {GANTT_W} {height}" width="100%"'
        f' role="img" aria-label="Gantt view of {len(view.bars)} nodes over'
        f' {escape(format_duration(span))}">',
    ]
    for i in range(GANTT_TICKS + 1):
        tx = round(GANTT_LABEL_W + chart * i / GANTT_TICKS, 1)
        anchor = "start" if i == 0 else "end" if i == GANTT_TICKS else "middle"
        out.append(
            f'<line class="gantt-tick" x1="{tx}" x2="{tx}" y1="{GANTT_TOP - 6}" y2="{height}"/>'
            f'<text class="gantt-axis" x="{tx}" y="{GANTT_TOP - 10}" text-anchor="{anchor}">'
            f"{escape(format_duration(span * i / GANTT_TICKS))}</text>"
        )
    for start, end in view.pauses:
        a, b = x(start), x(end)
        out.append(
            f'<rect class="gantt-pause" x="{a}" y="{GANTT_TOP - 6}" width="{max(b - a, 1.5)}"'
            f' height="{height - GANTT_TOP + 6}"><title>Paused for'
            f" {escape(format_duration(span_seconds(start, end, now)))}</title></rect>"
        )
    for row, bar in enumerate(view.bars):
        y = GANTT_TOP + row * GANTT_ROW_H
        a, b = x(bar.start), x(bar.end)
        label = bar.label if len(bar.label) <= 26 else bar.label[:25] + "…"
        took = format_duration(span_seconds(bar.start, bar.end, now))
        still = "" if bar.end else " so far"
        out.append(
            f'<g class="gantt-row g-{bar.status}" data-node-id="{escape(bar.node_id)}"'
            f' data-status="{bar.status}"{"" if bar.end else " data-open"}>'
            f"<title>{escape(bar.label)}: {bar.status}, {escape(took)}{still}</title>"
            f'<text class="gantt-label" x="{GANTT_LABEL_W - 8}" y="{y + 15}"'
            f' text-anchor="end">{escape(label)}</text>'
            f'<rect class="gantt-bar" x="{a}" y="{y + 4}" width="{max(b - a, 2)}"'
            f' height="{GANTT_ROW_H - 8}" rx="3"/>'
        )
        if bar.gate_opened:
            ga, gb = x(bar.gate_opened), x(bar.gate_decided or bar.end)
            out.append(
                f'<rect class="gantt-wait" x="{ga}" y="{y + 4}" width="{max(gb - ga, 2)}"'
                f' height="{GANTT_ROW_H - 8}" rx="3"/>'
            )
        if bar.gate_decided:
            d = x(bar.gate_decided)
            cy = y + GANTT_ROW_H // 2
            out.append(
                f'<path class="gantt-gate gate-{bar.gate_status}"'
                f' d="M{d} {cy - 6}L{d + 6} {cy}L{d} {cy + 6}L{d - 6} {cy}Z">'
                f"<title>Gate {bar.gate_status}</title></path>"
            )
        out.append("</g>")
    out.append("</svg></div>")
    legend = (
        '<p class="gantt-legend muted"><span class="gl gl-bar"></span>running to its end'
        '<span class="gl gl-wait"></span>waiting at a gate'
        '<span class="gl gl-gate"></span>decision<span class="gl gl-pause"></span>paused'
    )
    if view.more:
        legend += f" · the first {len(view.bars)} nodes that ran, of {len(view.bars) + view.more}"
    out.append(legend + "</p></section>")
    return mark_safe("".join(out))


# ----------------------------------------------------------------- regions


def _render(template: str, context: dict[str, Any]) -> SafeString:
    return mark_safe(render_to_string(f"dagstream_app/fragments/{template}", context))


def status_html(
    status: str,
    created_at: str,
    finished_at: str | None,
    *,
    oob: bool = False,
    now: str | None = None,
) -> SafeString:
    return _render(
        "status.html",
        {
            "status": status,
            "icon": STATUS_ICONS.get(status, "pending"),
            "created_at": created_at,
            "finished_at": finished_at,
            "duration": format_duration(span_seconds(created_at, finished_at, now)),
            "live": status not in TERMINAL_STATUSES,
            "oob": oob,
        },
    )


def progress_html(counts: NodeCounts, status: str, *, oob: bool = False) -> SafeString:
    """Nodes done of all; once the run has ended, how many never finished."""
    never = counts.unfinished if status in TERMINAL_STATUSES else 0
    return _render("progress.html", {"p": counts, "never_finished": never, "oob": oob})


def cost_html(spent: float, budget: float | None, *, oob: bool = False) -> SafeString:
    return _render("cost.html", {"c": budget_use(spent, budget), "oob": oob})


def controls_html(
    dag_id: str,
    status: str,
    can_control: bool,
    *,
    message: str = "",
    oob: bool = False,
    engine_stale: bool = False,
) -> SafeString:
    """Pause / resume / cancel; with the engine not responding, "End run" too."""
    return _render(
        "controls.html",
        {
            "url": reverse("dagstream:control", args=[dag_id]),
            "status": status,
            "can_control": can_control,
            "can_force": can_control and engine_stale and status in LIVE_STATUSES,
            "can_pause": can_control and status == "running",
            "can_resume": can_control and status == "paused",
            "can_cancel": can_control and status in ("running", "paused"),
            "terminal": status in TERMINAL_STATUSES,
            "message": message,
            "oob": oob,
        },
    )


def engine_html(
    dag_id: str, health: EngineHealth, *, oob: bool = False, now: str | None = None
) -> SafeString:
    """What the page says about the run's engine; while the run is live it re-asks
    the server every ``ENGINE_HEARTBEAT_SECONDS`` (liveness has no event)."""
    live = health.status in LIVE_STATUSES
    every = max(1, round(float(config().engine_heartbeat_seconds)))
    shown = "1" if health.stale else "0"
    url = f"{reverse('dagstream:engine', args=[dag_id])}?shown={shown}"
    ago = format_duration(span_seconds(health.seen_at, None, now)) if health.seen_at else ""
    context = {"e": health, "live": live, "every": every, "url": url, "ago": ago, "oob": oob}
    return _render("engine.html", context)


def field_view(key: str, value: Any) -> dict[str, Any]:
    """One presentation field as people read it: a label, and text or a block of data."""
    label = str(key).replace("_", " ").strip()
    label = label[:1].upper() + label[1:]
    if isinstance(value, bool):
        return {"label": label, "text": "Yes" if value else "No", "data": ""}
    if isinstance(value, int | float):
        return {"label": label, "text": f"{value:,}", "data": ""}
    if isinstance(value, str):
        return {"label": label, "text": value, "data": ""}
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return {"label": label, "text": ", ".join(map(str, value)) or "—", "data": ""}
    if value is None:
        return {"label": label, "text": "—", "data": ""}
    return {"label": label, "text": "", "data": pretty_json(value)}


def gate_context(
    dag_id: str,
    gate: GateView,
    can_decide: bool,
    *,
    message: str = "",
    tone: str = "error",
    draft: str = "",
    readonly: bool = False,
) -> dict[str, Any]:
    presentation = gate.presentation
    title = presentation.get("title")
    body = presentation.get("body")
    node_id = gate.node_id
    return {
        "dom_id": dom_id("gate", node_id),
        "node_id": node_id,
        "title": title if isinstance(title, str) and title else f"Decision needed at {node_id}",
        # A text body is Markdown (escaped, see markup); any other body is data.
        "body": markdown_html(body) if isinstance(body, str) else "",
        "body_data": "" if isinstance(body, str) or body is None else pretty_json(body),
        "fields": [
            field_view(key, value)
            for key, value in presentation.items()
            if key not in ("title", "body")
        ],
        "status": gate.status,
        "decided_by": gate.decided_by,
        "decided_at": gate.decided_at or "",
        "feedback": gate.feedback,
        "url": decide_url(dag_id, node_id),
        "can_decide": can_decide,
        "max_length": config().feedback_max_length,
        "message": message,
        "tone": tone,
        "draft": draft,
        "readonly": readonly,
    }


def gate_html(
    dag_id: str,
    gate: GateView,
    can_decide: bool,
    *,
    oob: bool = False,
    message: str = "",
    tone: str = "error",
    draft: str = "",
    readonly: bool = False,
) -> SafeString:
    """One gate card; ``oob`` makes it replace the card already on the page."""
    context = gate_context(
        dag_id, gate, can_decide, message=message, tone=tone, draft=draft, readonly=readonly
    )
    return _render("gate.html", {"g": context, "oob": oob})


def gates_html(
    dag_id: str,
    gates: Iterable[GateView],
    can_decide: bool,
    *,
    oob: bool = False,
    readonly: bool = False,
) -> SafeString:
    cards = [gate_html(dag_id, g, can_decide, readonly=readonly) for g in gates]
    return _render("gates.html", {"cards": cards, "oob": oob})


def results_html(status: str, results: Any, *, oob: bool = False) -> SafeString:
    text = "" if results is None else pretty_json(results)
    return _render("results.html", {"status": status, "text": text, "oob": oob})


def describe(event: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Icon, tone and text of one event for the timeline; nodes named by their labels."""
    labels = labels or {}

    def name(node_id: str) -> str:
        return labels.get(node_id) or node_id

    kind = event["type"]
    match kind:
        case "node_state":
            status = event["status"]
            return {
                "icon": STATUS_ICONS.get(status, "pending"),
                "tone": status,
                "subject": name(event["node_id"]),
                "text": status,
            }
        case "edge_active":
            return {
                "icon": "flow",
                "tone": "info",
                "subject": f"{name(event['from'])} → {name(event['to'])}",
                "text": "data flowing",
            }
        case "dag_mutated":
            m = event["mutation"]
            op = m["op"]
            if op == "add_node":
                subject, text = m["node"].get("label") or m["node"]["id"], "node added"
            elif op == "remove_node":
                subject, text = name(m["node_id"]), "node removed"
            else:
                subject = f"{name(m['from'])} → {name(m['to'])}"
                text = "edge added" if op == "add_edge" else "edge removed"
            return {"icon": "branch", "tone": "info", "subject": subject, "text": text}
        case "cost_update":
            budget = event.get("budget")
            text = format_money(event["spent"])
            if budget is not None:
                text += f" of {format_money(budget)}"
            return {"icon": "coin", "tone": "info", "subject": "Cost", "text": text}
        case "execution_complete":
            return {
                "icon": "completed",
                "tone": "completed",
                "subject": "Run",
                "text": "completed with results",
            }
        case "human_gate_waiting":
            return {
                "icon": "waiting",
                "tone": "waiting",
                "subject": name(event["node_id"]),
                "text": "waiting for a decision",
            }
        case "gate_decided":
            who = event.get("decided_by") or "the system"
            past = DECISION_TO_GATE_STATUS.get(event["decision"], event["decision"])
            return {
                "icon": "gate",
                "tone": "info",
                "subject": name(event["node_id"]),
                "text": f"{past} by {who}",
            }
        case "execution_state":
            state = event["state"]
            return {
                "icon": STATUS_ICONS.get(state, "pending"),
                "tone": state,
                "subject": "Run",
                "text": state,
            }
        case "error":
            return {
                "icon": "alert",
                "tone": "failed",
                "subject": name(event["node_id"]) if event.get("node_id") else "Run",
                "text": event["message"],
            }
    return {"icon": "pending", "tone": "info", "subject": kind, "text": ""}  # pragma: no cover


def timeline_entry_html(
    event: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> SafeString:
    ts = event.get("ts") or ""
    return _render(
        "timeline_entry.html",
        {
            "e": describe(event, labels),
            "seq": event["seq"],
            "type": event["type"],
            "ts": ts,
            "time": ts[11:19],
        },
    )


def timeline_html(
    events: Sequence[Mapping[str, Any]],
    *,
    oob: bool = False,
    labels: Mapping[str, str] | None = None,
) -> SafeString:
    """``events`` newest first (at most ``TIMELINE_LENGTH``); nodes named by ``labels``."""
    entries = [timeline_entry_html(e, labels) for e in events]
    return _render("timeline.html", {"entries": entries, "limit": TIMELINE_LENGTH, "oob": oob})


def seq_marker(seq: int) -> str:
    return f'<div id="ds-seq" data-seq="{int(seq)}" hidden hx-swap-oob="true"></div>'


def regions(
    snap: DagSnapshot,
    perms: Perms,
    events: Sequence[Mapping[str, Any]],
    *,
    oob: bool = False,
    readonly: bool = False,
    now: str | None = None,
    health: EngineHealth | None = None,
    gantt: GanttView | None = None,
) -> dict[str, SafeString]:
    """Every live region of the detail page, rendered from one snapshot.

    ``now`` is the moment durations run to (a replayed state is "as of" its
    last event); by default, the present. ``health`` (from
    :func:`dagstream_app.state.engine_health`) adds what the snapshot lacks;
    with ``gantt`` (:func:`dagstream_app.state.gantt`) the Gantt view is a region too.
    """
    dag_id = snap.dag_id
    if health is None:
        health = EngineHealth(snap.status, snap.engine_seen_at, snap.engine_stale)
    return {
        "graph": graph_html(dag_id, snap.nodes, snap.edges, now, oob=oob),
        "status": status_html(snap.status, snap.created_at, snap.finished_at, oob=oob, now=now),
        "engine": engine_html(dag_id, health, oob=oob, now=now),
        "progress": progress_html(count_nodes(snap.nodes), snap.status, oob=oob),
        "cost": cost_html(snap.spent, snap.budget, oob=oob),
        "controls": controls_html(
            dag_id, snap.status, perms[1], oob=oob, engine_stale=health.stale
        ),
        "gates": gates_html(dag_id, snap.gates, perms[0], oob=oob, readonly=readonly),
        "results": results_html(snap.status, snap.results, oob=oob),
        "timeline": timeline_html(events, oob=oob, labels={n.id: n.label for n in snap.nodes}),
        **({"gantt": gantt_html(gantt, oob=oob, now=now)} if gantt is not None else {}),
    }


def snapshot_message(
    snap: DagSnapshot,
    perms: Perms,
    events: Sequence[Mapping[str, Any]],
    *,
    health: EngineHealth | None = None,
    gantt: GanttView | None = None,
) -> str:
    """Every region re-rendered out of band (a resume that could not replay)."""
    parts = regions(snap, perms, events, oob=True, health=health, gantt=gantt)
    return "".join(parts.values()) + seq_marker(snap.last_seq)


def node_panel_html(dag_id: str, node: NodeView) -> SafeString:
    """The side panel of one node: status, timing, output and metrics."""
    started, finished = node.started_at, node.finished_at
    duration = format_duration(
        span_seconds(started, finished if node.status != "running" else None)
    )
    context = {
        "node": node,
        "slot": dom_id("ns", node.id),
        "url": node_url(dag_id, node.id),
        "started": started,
        "duration": duration,
        "output": "" if node.output is None else pretty_json(node.output),
        "metrics": [(k, pretty_json(v)) for k, v in sorted(node.metrics.items())],
    }
    return mark_safe(render_to_string("dagstream_app/node_panel.html", context))


# ----------------------------------------------------------- live fragments


def _labels_of(event: Mapping[str, Any], work: Working) -> dict[str, str]:
    named = [event.get(key) for key in ("node_id", "from", "to")]
    mutation = event.get("mutation") or {}
    named += [mutation.get(key) for key in ("node_id", "from", "to")]
    return {node_id: work.label(node_id) for node_id in named if isinstance(node_id, str)}


# One fragment of a live message, with the slot it replaces: of several fragments
# for one slot in a message only the last is sent. None: never dropped.
Part = tuple[str | None, str]
TIMELINE_SLOT = "timeline"
# A message with one of these events also carries the progress line, once.
PROGRESS_EVENTS = frozenset({"node_state", "dag_mutated", "execution_state"})


def event_parts(
    dag_id: str, seq: int, event: Mapping[str, Any], work: Working, perms: Perms
) -> list[Part]:
    """One event as out-of-band fragments for only what it changed (without the seq marker).

    ``work`` is what the fragments show (:func:`dagstream_app.state.live_state`).
    Node slots, the cost card and the edge flash are latest-wins; gates,
    errors, the run's state and its results never drop. The progress line
    and the Gantt view are drawn once per message (:mod:`dagstream_app.live`).
    """
    parts: list[Part] = []
    match event["type"]:
        case "node_state":
            node = work.nodes.get(event["node_id"])
            if node is not None:
                parts.append((f"node:{node.id}", node_slot_html(dag_id, node, seq)))
        case "edge_active":
            parts.append(
                (
                    "flash",
                    f'<div id="ds-flash" hidden hx-swap-oob="true" data-seq="{seq}"'
                    f' data-edge="{edge_dom_id(event["from"], event["to"])}"></div>',
                )
            )
        case "dag_mutated":
            snap = work.snapshot()
            parts.append((None, graph_html(dag_id, snap.nodes, snap.edges, oob=True)))
        case "cost_update":
            parts.append(("cost", cost_html(work.spent, work.budget, oob=True)))
        case "execution_complete":
            parts.append((None, results_html("completed", work.results, oob=True)))
        case "human_gate_waiting":
            card = gate_html(dag_id, work.gates[event["node_id"]], perms[0])
            parts.append((None, f'<div hx-swap-oob="beforeend:#gate-list">{card}</div>'))
        case "gate_decided":
            card = gate_html(dag_id, work.gates[event["node_id"]], perms[0], oob=True)
            parts.append((None, card))
        case "execution_state":
            status = status_html(work.status, work.created_at, work.finished_at, oob=True)
            parts.append((None, status))
            parts.append((None, controls_html(dag_id, work.status, perms[1], oob=True)))
        case "error":
            pass
    entry = timeline_entry_html(event, _labels_of(event, work))
    parts.append((TIMELINE_SLOT, f'<ol hx-swap-oob="afterbegin:#timeline">{entry}</ol>'))
    return parts


def event_html(dag_id: str, seq: int, event: Mapping[str, Any], work: Working, perms: Perms) -> str:
    """:func:`event_parts` as one string."""
    return "".join(html for _, html in event_parts(dag_id, seq, event, work, perms))


def conflate(parts: Sequence[Part]) -> str:
    """Fragments of several events in order, each slot's last only, the last timeline entries."""
    last: dict[str, int] = {}
    for index, (slot, _) in enumerate(parts):
        if slot is not None and slot != TIMELINE_SLOT:
            last[slot] = index
    entries = [i for i, (slot, _) in enumerate(parts) if slot == TIMELINE_SLOT]
    kept_entries = set(entries[-TIMELINE_LENGTH:])
    return "".join(
        html
        for index, (slot, html) in enumerate(parts)
        if slot is None
        or (slot == TIMELINE_SLOT and index in kept_entries)
        or last.get(slot) == index
    )


# ------------------------------------------------------------- run list


def row_context(row: RunRow) -> dict[str, Any]:
    created = parse_ts(row.created_at)
    return {
        "dom_id": dom_id("run", row.dag_id),
        "dag_id": row.dag_id,
        "name": row.name,
        "status": row.status,
        "url": reverse("dagstream:detail", args=[row.dag_id]),
        "total": row.total,
        "done": row.done,
        "pct": round(100 * row.done / row.total) if row.total else 0,
        "waiting": row.waiting,
        "engine_stale": row.engine_stale,
        "spent": row.spent,
        "budget": row.budget,
        "created_at": row.created_at,
        "created_label": created.strftime("%b %d, %H:%M") if created else "",
        "finished_at": row.finished_at,
        "duration": format_duration(span_seconds(row.created_at, row.finished_at)),
    }


def row_html(row: RunRow, *, oob: bool = False) -> SafeString:
    return _render("dag_row.html", {"r": row_context(row), "oob": oob})


# What a silent dashboard stream sends now and then: htmx swaps it, nothing shows.
KEEPALIVE_HTML = '<div id="ds-keepalive" hidden hx-swap-oob="true"></div>'


def row_deleted_html(dag_id: str) -> str:
    """Takes a deleted run's row off a list page (out of band)."""
    return f'<tr id="{dom_id("run", dag_id)}" hx-swap-oob="delete"></tr>'


def index_message(rows: Iterable[RunRow], new_runs: int) -> str:
    """Rows of the changed DAGs on a list page (out of band), and the new-runs notice."""
    parts = [row_html(row, oob=True) for row in rows]
    if new_runs:
        parts.append(_render("list_notice.html", {"count": new_runs}))
    return "".join(parts)
