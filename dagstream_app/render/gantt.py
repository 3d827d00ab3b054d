"""Where a run's time went, as one server-rendered SVG (the Gantt view)."""

from __future__ import annotations

from html import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from dagstream_app.dagviews import GanttView
from dagstream_app.render.format import format_duration, oob_attr, parse_ts, span_seconds

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
        f'<section id="gantt-card" class="card gantt-card"{oob_attr(oob)}'
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
