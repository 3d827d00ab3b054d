"""The dashboard's regions: status, progress, cost, controls, engine, gates, results, rows.

Each renders one overridable template under ``dagstream_app/fragments/`` (which
gets ``oob`` in its context), so a region looks the same in the page and in a
live message. Also the node panel and the run list's rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from dagstream_app.conf import config
from dagstream_app.dagviews import EngineHealth, GateView, NodeCounts, NodeView, Working
from dagstream_app.markup import markdown_html
from dagstream_app.money import budget_use, format_money
from dagstream_app.render.format import (
    STATUS_ICONS,
    decide_url,
    dom_id,
    format_duration,
    fragment,
    node_url,
    parse_ts,
    pretty_json,
    span_seconds,
)
from dagstream_app.vocabulary import LIVE_STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from dagstream_app.permissions import Voter
    from dagstream_app.state import RunRow


def status_html(
    status: str,
    created_at: str,
    finished_at: str | None,
    *,
    oob: bool = False,
    now: str | None = None,
) -> SafeString:
    return fragment(
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
    return fragment("progress.html", {"p": counts, "never_finished": never, "oob": oob})


def cost_html(spent: float, budget: float | None, *, oob: bool = False) -> SafeString:
    return fragment("cost.html", {"c": budget_use(spent, budget), "oob": oob})


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
    return fragment(
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
    return fragment("engine.html", context)


# A presentation key with one of these words (split on ``_``, ``-``, spaces) holds money.
MONEY_WORDS = frozenset(
    {"amount", "budget", "cost", "costs", "fee", "fees", "price", "spend", "spent", "usd"}
)


def is_money_key(key: str) -> bool:
    """Whether a presentation key names an amount of money (``cost``, ``budget_usd``...)."""
    return not MONEY_WORDS.isdisjoint(re.split(r"[\W_]+", key.lower()))


def field_view(key: str, value: Any) -> dict[str, Any]:
    """One presentation field as people read it: a label, and text or a block of data."""
    label = str(key).replace("_", " ").strip()
    label = label[:1].upper() + label[1:]
    if isinstance(value, bool):
        return {"label": label, "text": _("Yes") if value else _("No"), "data": ""}
    if isinstance(value, int | float) and is_money_key(str(key)):
        return {"label": label, "text": format_money(value), "data": ""}
    if isinstance(value, int | float):
        text = formats.number_format(value, force_grouping=True)
        return {"label": label, "text": text, "data": ""}
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
    label: str = "",
    across_runs: bool = False,
    voter: Voter | None = None,
) -> dict[str, Any]:
    """What a gate card shows; ``label``: its node's (people's name for it), else its id.

    ``across_runs``: a card among gates of several runs (the inbox), so its DOM id
    names its run too. ``voter``: the person looking, when known: a gate that
    waits for others is read-only to them, and one they voted on says so.
    """
    presentation = gate.presentation
    voted = False
    if voter is not None:
        readonly = readonly or not voter.named_in(gate.assignees)
        voted = any(v.voter == voter.username for v in gate.votes)
    title = presentation.get("title")
    body = presentation.get("body")
    node_id = gate.node_id
    return {
        **votes_context(dag_id, gate, across_runs=across_runs),
        "node_id": node_id,
        "label": label or node_id,
        "title": title
        if isinstance(title, str) and title
        else _("Decision needed at %(node)s") % {"node": node_id},
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
        # Who may decide it, for the page's script: a card that arrives live is the same
        # for everyone, and the script makes it read-only to whom it does not name.
        "assignees_json": json.dumps(list(gate.assignees)) if gate.assignees else "",
        "voted": voted,
        "across_runs": across_runs,
    }


def votes_context(dag_id: str, gate: GateView, *, across_runs: bool = False) -> dict[str, Any]:
    """What a gate's votes line shows: who it waits for, the approvals so far, each vote."""
    return {
        "dom_id": dom_id("gate", f"{dag_id}\x00{gate.node_id}" if across_runs else gate.node_id),
        "status": gate.status,
        "assignees": gate.assignees,
        "quorum": gate.quorum,
        "approvals": gate.approvals,
        "votes": gate.votes,
    }


def gate_votes_html(dag_id: str, gate: GateView, *, oob: bool = False) -> SafeString:
    """A gate card's votes line (who it waits for, the votes cast); ``oob`` replaces it."""
    return fragment("gate_votes.html", {"g": votes_context(dag_id, gate), "oob": oob})


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
    label: str = "",
    across_runs: bool = False,
    voter: Voter | None = None,
) -> SafeString:
    """One gate card; ``oob`` makes it replace the card already on the page."""
    context = gate_context(
        dag_id,
        gate,
        can_decide,
        message=message,
        tone=tone,
        draft=draft,
        readonly=readonly,
        label=label,
        across_runs=across_runs,
        voter=voter,
    )
    return fragment("gate.html", {"g": context, "oob": oob})


def run_gate_html(
    dag_id: str, work: Working, node_id: str, can_decide: bool, *, oob: bool = False
) -> SafeString:
    """The card of the gate at ``node_id`` as a run's replayed state has it (live fragments)."""
    return gate_html(dag_id, work.gates[node_id], can_decide, oob=oob, label=work.label(node_id))


def gates_html(
    dag_id: str,
    gates: Iterable[GateView],
    can_decide: bool,
    *,
    oob: bool = False,
    readonly: bool = False,
    labels: Mapping[str, str] | None = None,
    voter: Voter | None = None,
) -> SafeString:
    """Every gate card of a run; ``labels``: node labels by node id."""
    named = labels or {}
    cards = [
        gate_html(
            dag_id,
            g,
            can_decide,
            readonly=readonly,
            label=named.get(g.node_id, ""),
            voter=voter,
        )
        for g in gates
    ]
    return fragment("gates.html", {"cards": cards, "oob": oob})


def results_html(status: str, results: Any, *, oob: bool = False) -> SafeString:
    text = "" if results is None else pretty_json(results)
    return fragment("results.html", {"status": status, "text": text, "oob": oob})


def seq_marker(seq: int) -> str:
    return f'<div id="ds-seq" data-seq="{int(seq)}" hidden hx-swap-oob="true"></div>'


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
        "created_label": f"{formats.date_format(created, 'MONTH_DAY_FORMAT')}, {created:%H:%M}"
        if created
        else "",
        "finished_at": row.finished_at,
        "duration": format_duration(span_seconds(row.created_at, row.finished_at)),
    }


def row_html(row: RunRow, *, oob: bool = False) -> SafeString:
    return fragment("dag_row.html", {"r": row_context(row), "oob": oob})


# What a silent dashboard stream sends now and then: htmx swaps it, nothing shows.
KEEPALIVE_HTML = '<div id="ds-keepalive" hidden hx-swap-oob="true"></div>'


def row_deleted_html(dag_id: str) -> str:
    """Takes a deleted run's row off a list page (out of band)."""
    return f'<tr id="{dom_id("run", dag_id)}" hx-swap-oob="delete"></tr>'


def list_notice_html(count: int) -> SafeString:
    """A list page's notice of ``count`` runs started since it loaded."""
    return fragment("list_notice.html", {"count": count})
