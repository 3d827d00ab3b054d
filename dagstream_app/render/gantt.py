"""Where a run's time went, as one server-rendered SVG (the Gantt view).

While the run goes on, the drawing keeps growing between events: the ``<svg>``
carries its start moment and time scale (``data-start``, ``data-span``,
``data-x0``, ``data-chart``; ``data-now``: where open bars end as drawn), every
bar, wait, pause and decision its offsets in seconds from the start (``data-t0``;
``data-t1`` once it has ended), and the axis labels their share of the span
(``data-tick``), so the dashboard's timers
stretch the open bars and relabel the axis once a second (``timers.js``).
"""

from __future__ import annotations

from html import escape

from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from dagstream_app.dagviews import GanttView
from dagstream_app.render.format import format_duration, oob_attr, parse_ts, span_seconds
from dagstream_app.render.groups import group_url
from dagstream_app.vocabulary import status_word

GANTT_W = 1000  # the drawing's width (it scales to the card)
GANTT_LABEL_W = 190
GANTT_ROW_H = 22
GANTT_TOP = 26  # the axis
GANTT_TICKS = 5
GANTT_MIN_W = 2  # the narrowest bar, wait or pause drawn


def legend_html() -> str:
    """The Gantt view's legend, in the active language."""
    # Each word is its own call (outside f-strings): makemessages finds only those.
    return (
        '<p class="gantt-legend muted"><span class="gl gl-bar"></span>'
        + escape(_("running to its end"))
        + '<span class="gl gl-wait"></span>'
        + escape(_("waiting at a gate"))
        + '<span class="gl gl-waited"></span>'
        + escape(_("waited, then decided"))
        + '<span class="gl gl-gate"></span>'
        + escape(_("decision"))
        + '<span class="gl gl-pause"></span>'
        + escape(_("paused"))
    )


def gantt_html(
    view: GanttView | None, *, oob: bool = False, now: str | None = None, dag_id: str = ""
) -> SafeString:
    """The run's Gantt view: ``<section id="gantt-card">`` around one server-rendered ``<svg>``.

    A bar per node from running (or its gate opening) to its end, coloured by
    status; a gate's wait hatched (solid once decided), its decision a diamond;
    pauses shaded across. Bars still going run to ``now`` (default: the
    present), marked open. A group of nodes (a fan-out) is one bar, from its first
    member's start to its last one's end; with ``dag_id``, it opens the group's panel.
    """
    head = (
        f'<section id="gantt-card" class="card gantt-card"{oob_attr(oob)}'
        ' aria-labelledby="gantt-title">'
        '<h2 id="gantt-title" class="card-title"><svg class="icon" aria-hidden="true">'
        '<use href="#ds-i-clock"/></svg>' + escape(_("Where the time went")) + "</h2>"
    )
    if view is None or not view.bars:
        empty = escape(_("No node has run yet."))
        return mark_safe(head + f'<p class="empty">{empty}</p></section>')
    t0 = parse_ts(view.start)
    t1 = parse_ts(view.end) or parse_ts(now) or timezone.now()
    assert t0 is not None
    latest = max((parse_ts(b.end) or t1 for b in view.bars), default=t1)
    span = max((max(t1, latest) - t0).total_seconds(), 0.001)
    chart = GANTT_W - GANTT_LABEL_W - 10

    def offset(moment: str | None) -> float:
        at = parse_ts(moment) or t1
        return max(0.0, (at - t0).total_seconds())

    def x(moment: str | None) -> float:
        return round(GANTT_LABEL_W + chart * offset(moment) / span, 1)

    def timed(start: str | None, end: str | None) -> str:
        """The element's place in run time, for the live stretch (``data-t1``: ended)."""
        until = f' data-t1="{offset(end):.3f}"' if end else ""
        return f' data-t0="{offset(start):.3f}"{until}'

    def span_rect(css: str, start: str | None, end: str | None, y: float, h: float) -> str:
        a, b = x(start), x(end)
        return (
            f'<rect class="{css}" x="{a}" y="{y}" width="{max(b - a, GANTT_MIN_W)}"'
            f' height="{h}"{timed(start, end)}'
        )

    height = GANTT_TOP + GANTT_ROW_H * len(view.bars) + 6
    gantt_name = _("Gantt view of %(count)s nodes over %(duration)s") % {
        "count": len(view.bars),
        "duration": format_duration(span),
    }
    live = "" if view.end else " data-live"
    out = [
        head,
        '<div class="gantt-scroll">'
        f'<svg class="gantt" viewBox="0 0 {GANTT_W} {height}" width="100%"'
        f' role="img" aria-label="{escape(gantt_name)}" data-start="{escape(view.start)}"'
        f' data-span="{span:.3f}" data-now="{offset(None):.3f}" data-x0="{GANTT_LABEL_W}"'
        f' data-chart="{chart}" data-min-w="{GANTT_MIN_W}"{live}>',
    ]
    for i in range(GANTT_TICKS + 1):
        tx = round(GANTT_LABEL_W + chart * i / GANTT_TICKS, 1)
        anchor = "start" if i == 0 else "end" if i == GANTT_TICKS else "middle"
        out.append(
            f'<line class="gantt-tick" x1="{tx}" x2="{tx}" y1="{GANTT_TOP - 6}" y2="{height}"/>'
            f'<text class="gantt-axis" x="{tx}" y="{GANTT_TOP - 10}" text-anchor="{anchor}"'
            f' data-tick="{i / GANTT_TICKS}">{escape(format_duration(span * i / GANTT_TICKS))}'
            "</text>"
        )
    for start, end in view.pauses:
        took = format_duration(span_seconds(start, end, now))
        paused_for = _("Paused for %(duration)s") % {"duration": took}
        out.append(
            span_rect("gantt-pause", start, end, GANTT_TOP - 6, height - GANTT_TOP + 6)
            + f"><title>{escape(paused_for)}</title></rect>"
        )
    for row, bar in enumerate(view.bars):
        y = GANTT_TOP + row * GANTT_ROW_H
        label = bar.label if len(bar.label) <= 26 else bar.label[:25] + "…"
        took = format_duration(span_seconds(bar.start, bar.end, now))
        shown = status_word(bar.status)
        group, named = "", bar.label
        if bar.members:
            label = f"{label[:18]} \u00d7{bar.members:,}"
            # Translators: a Gantt row's name when it stands for a group of nodes.
            named = _("%(label)s, a group of %(count)s nodes") % {
                "label": bar.label,
                "count": formats.number_format(bar.members, force_grouping=True),
            }
            group = " gantt-group"
            if dag_id:
                href = escape(group_url(dag_id, bar.node_id))
                group += f'" data-href="{href}" tabindex="0" role="button'
        # Translators: a bar's tooltip: a node's label, its status and how long it took.
        if bar.end:
            said = _("%(label)s: %(status)s, %(duration)s")
        else:
            said = _("%(label)s: %(status)s, %(duration)s so far")
        tip = said % {"label": named, "status": shown, "duration": took}
        out.append(
            f'<g class="gantt-row g-{bar.status}{group}" data-node-id="{escape(bar.node_id)}"'
            f' data-status="{bar.status}"{"" if bar.end else " data-open"}>'
            f"<title>{escape(tip)}</title>"
            f'<text class="gantt-label" x="{GANTT_LABEL_W - 8}" y="{y + 15}"'
            f' text-anchor="end">{escape(label)}</text>'
            + span_rect("gantt-bar", bar.start, bar.end, y + 4, GANTT_ROW_H - 8)
            + ' rx="3"/>'
        )
        if bar.gate_opened:
            # A decided wait is drawn solid, and opaque: one colour whatever lies under it.
            until = bar.gate_decided or bar.end
            decided = " data-decided" if bar.gate_decided else ""
            out.append(
                span_rect("gantt-wait", bar.gate_opened, until, y + 4, GANTT_ROW_H - 8)
                + f' rx="3"{decided}/>'
            )
        if bar.gate_decided:
            cy = y + GANTT_ROW_H // 2
            gate_said = _("Gate %(status)s") % {"status": status_word(str(bar.gate_status))}
            out.append(
                f'<path class="gantt-gate gate-{bar.gate_status}"'
                f' d="M0 -6L6 0L0 6L-6 0Z" transform="translate({x(bar.gate_decided)} {cy})"'
                f"{timed(bar.gate_decided, bar.gate_decided)}>"
                f"<title>{escape(gate_said)}</title></path>"
            )
        out.append("</g>")
    out.append("</svg></div>")
    legend = legend_html()
    if view.more:
        ran, of = len(view.bars), len(view.bars) + view.more
        legend += " · " + escape(
            _("the first %(ran)s that ran, of %(all)s") % {"ran": ran, "all": of}
        )
    out.append(legend + "</p></section>")
    return mark_safe("".join(out))
