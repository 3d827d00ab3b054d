"""HTML for the dashboard: page regions, and each event as out-of-band fragments.

The same functions render a region into the page and into a live message (with
``hx-swap-oob``), so the two never disagree. Regions use overridable templates
under ``dagstream_app/fragments/``; the graph's nodes and edges are built here
in Python because a 5,000-node DAG must render in well under a second.

Live fragments are rendered once per (DAG, seq, permission variant) per process
and cached, so a thousand viewers cost one render and no per-viewer queries.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from dagstream_app import layout
from dagstream_app.models import Dag, Edge, Event, Gate, Node
from dagstream_app.protocol import TERMINAL_STATUSES, format_ts

TIMELINE_LENGTH = 100
DONE_STATUSES = ("completed", "skipped")
FINISHED_NODE_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})
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
# (dag_id, seq, frame, perms): the frame (with its timestamp) tells apart a DAG
# deleted and created again under the same id, whose seqs start over.
CacheKey = tuple[str, int, str, Perms]


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
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def icon(name: str, cls: str = "icon") -> str:
    return (
        f'<svg class="{cls}" aria-hidden="true" focusable="false"><use href="#ds-i-{name}"/></svg>'
    )


# ------------------------------------------------------------------- graph


def node_svg(
    dag_id: str,
    node: Mapping[str, Any],
    seq: int = 0,
    base: str | None = None,
    now: str | None = None,
) -> str:
    """The inner ``<g class="node">`` of one node's slot (status, label, duration)."""
    node_id: str = node["id"]
    status: str = node["status"]
    label = node.get("label") or node_id
    short = label if len(label) <= 20 else label[:19] + "…"
    started, finished = node.get("started_at"), node.get("finished_at")
    duration = ""
    timer = ""
    if status == "running" and started:
        duration = format_duration(span_seconds(started, None, now))
        timer = f' data-started="{escape(started)}"'
    elif started and finished and status in FINISHED_NODE_STATUSES:
        duration = format_duration(span_seconds(started, finished))
    text = status.capitalize() + (f" · {duration}" if duration else "")
    e_id, e_label = escape(node_id), escape(label)
    return (
        f'<g class="node s-{status}" data-node-id="{e_id}" data-status="{status}"'
        f' data-seq="{seq}" data-href="{escape(node_url(dag_id, node_id, base))}" tabindex="0"'
        f' role="button" aria-label="{e_label}: {status}">'
        f"<title>{e_label} ({e_id}): {status}</title>"
        f'<rect class="node-box" width="{layout.NODE_W}" height="{layout.NODE_H}" rx="10"/>'
        f'<rect class="node-bar" width="4" height="{layout.NODE_H - 16}" x="0" y="8" rx="2"/>'
        # The icon sits in a translated group so a spinning icon turns in place.
        '<g transform="translate(14 16)">'
        f'<use class="node-icon{" spin" if status == "running" else ""}"'
        f' href="#ds-i-{STATUS_ICONS.get(status, "pending")}" width="20" height="20"/></g>'
        f'<text class="node-label" x="44" y="22">{escape(short)}</text>'
        f'<text class="node-meta" x="44" y="40"{timer}>{escape(text)}</text>'
        "</g>"
    )


def graph_html(
    dag_id: str,
    nodes: Sequence[Mapping[str, Any]],
    edges: Sequence[Mapping[str, str]],
    now: str | None = None,
) -> SafeString:
    """The whole graph: ``<div id="graph">`` around one server-rendered ``<svg>``."""
    ids = [n["id"] for n in nodes]
    pairs = [(e["from"], e["to"]) for e in edges]
    lay = layout.compute(ids, pairs)
    out = [
        f'<div id="graph" class="graph" data-nodes="{len(ids)}">',
        f'<svg class="graph-svg" viewBox="0 0 {lay.width} {lay.height}" width="{lay.width}"'
        f' height="{lay.height}" role="group" aria-label="Graph of {len(ids)} nodes">',
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
        x, y = lay.positions[node["id"]]
        out.append(
            f'<g id="{dom_id("ns", node["id"])}" class="slot" transform="translate({x} {y})">'
            f"{node_svg(dag_id, node, base=base, now=now)}</g>"
        )
    out.append("</g></svg>")
    if not ids:
        out.append('<p class="empty">This run has no nodes yet.</p>')
    out.append("</div>")
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


def node_counts(dag_id: str) -> dict[str, int]:
    return Node.objects.filter(dag_id=dag_id).aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status__in=DONE_STATUSES)),
        failed=Count("id", filter=Q(status="failed")),
        running=Count("id", filter=Q(status__in=("running", "waiting"))),
    )


def progress_context(counts: Mapping[str, int]) -> dict[str, Any]:
    total = counts["total"]
    return {**counts, "pct": round(100 * counts["done"] / total) if total else 0}


def progress_html(counts: Mapping[str, int], *, oob: bool = False) -> SafeString:
    return _render("progress.html", {"p": progress_context(counts), "oob": oob})


def cost_context(spent: float, budget: float | None) -> dict[str, Any]:
    if budget is None:
        return {"spent": spent, "budget": None, "remaining": None, "pct": 0, "level": "none"}
    ratio = spent / budget if budget else (1.0 if spent == 0 else 2.0)
    level = "over" if spent > budget else "warn" if ratio >= 0.8 else "ok"
    return {
        "spent": spent,
        "budget": budget,
        "remaining": budget - spent,
        "pct": min(100, round(ratio * 100)),
        "level": level,
    }


def cost_html(spent: float, budget: float | None, *, oob: bool = False) -> SafeString:
    return _render("cost.html", {"c": cost_context(spent, budget), "oob": oob})


def controls_html(
    dag_id: str, status: str, can_control: bool, *, message: str = "", oob: bool = False
) -> SafeString:
    return _render(
        "controls.html",
        {
            "url": reverse("dagstream:control", args=[dag_id]),
            "can_control": can_control,
            "can_pause": can_control and status == "running",
            "can_resume": can_control and status == "paused",
            "can_cancel": can_control and status in ("running", "paused"),
            "terminal": status in TERMINAL_STATUSES,
            "message": message,
            "oob": oob,
        },
    )


def gate_context(
    dag_id: str, gate: Mapping[str, Any], can_decide: bool, **extra: Any
) -> dict[str, Any]:
    presentation: dict[str, Any] = gate.get("presentation") or {}
    title = presentation.get("title")
    body = presentation.get("body")
    fields = [
        (str(key), pretty_json(value))
        for key, value in presentation.items()
        if key not in ("title", "body")
    ]
    node_id: str = gate["node_id"]
    return {
        "dom_id": dom_id("gate", node_id),
        "node_id": node_id,
        "title": title if isinstance(title, str) and title else f"Decision needed at {node_id}",
        "body": body if isinstance(body, str) else (pretty_json(body) if body else ""),
        "fields": fields,
        "status": gate.get("status", "pending"),
        "decided_by": gate.get("decided_by") or "",
        "decided_at": gate.get("decided_at") or "",
        "feedback": gate.get("feedback") or "",
        "url": decide_url(dag_id, node_id),
        "can_decide": can_decide,
        "message": "",
        "tone": "error",
        "draft": "",
        "readonly": False,
        **extra,
    }


def gate_html(dag_id: str, gate: Mapping[str, Any], can_decide: bool, **extra: Any) -> SafeString:
    return _render("gate.html", {"g": gate_context(dag_id, gate, can_decide, **extra)})


def gates_html(
    dag_id: str,
    gates: Iterable[Mapping[str, Any]],
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


def describe(event: Mapping[str, Any]) -> dict[str, Any]:
    """Icon, tone and text of one event for the timeline."""
    kind = event["type"]
    match kind:
        case "node_state":
            status = event["status"]
            return {
                "icon": STATUS_ICONS.get(status, "pending"),
                "tone": status,
                "subject": event["node_id"],
                "text": status,
            }
        case "edge_active":
            return {
                "icon": "flow",
                "tone": "info",
                "subject": f"{event['from']} → {event['to']}",
                "text": "data flowing",
            }
        case "dag_mutated":
            m = event["mutation"]
            op = m["op"]
            if op == "add_node":
                subject, text = m["node"]["id"], "node added"
            elif op == "remove_node":
                subject, text = m["node_id"], "node removed"
            else:
                subject = f"{m['from']} → {m['to']}"
                text = "edge added" if op == "add_edge" else "edge removed"
            return {"icon": "branch", "tone": "info", "subject": subject, "text": text}
        case "cost_update":
            budget = event.get("budget")
            text = f"${event['spent']:,.2f}" + (f" of ${budget:,.2f}" if budget is not None else "")
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
                "subject": event["node_id"],
                "text": "waiting for a decision",
            }
        case "gate_decided":
            who = event.get("decided_by") or "the system"
            past = {"approve": "approved", "reject": "rejected", "modify": "modified"}
            return {
                "icon": "gate",
                "tone": "info",
                "subject": event["node_id"],
                "text": f"{past.get(event['decision'], event['decision'])} by {who}",
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
                "subject": event.get("node_id") or "Run",
                "text": event["message"],
            }
    return {"icon": "pending", "tone": "info", "subject": kind, "text": ""}  # pragma: no cover


def timeline_entry_html(event: Mapping[str, Any]) -> SafeString:
    ts = event.get("ts") or ""
    return _render(
        "timeline_entry.html",
        {
            "e": describe(event),
            "seq": event["seq"],
            "type": event["type"],
            "ts": ts,
            "time": ts[11:19],
        },
    )


def timeline_html(events: Sequence[Mapping[str, Any]], *, oob: bool = False) -> SafeString:
    """``events`` newest first."""
    entries = [timeline_entry_html(e) for e in events]
    return _render("timeline.html", {"entries": entries, "oob": oob})


def recent_events(
    dag_id: str, upto: int | None = None, limit: int = TIMELINE_LENGTH
) -> list[dict[str, Any]]:
    """The last ``limit`` events (at or before ``upto``), newest first, as dicts."""
    rows = Event.objects.filter(dag_id=dag_id)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [
        {"type": kind, "seq": seq, "ts": format_ts(created), **payload}
        for seq, kind, created, payload in rows.order_by("-seq").values_list(
            "seq", "type", "created_at", "payload"
        )[:limit]
    ]


def seq_marker(seq: int) -> str:
    return f'<div id="ds-seq" data-seq="{int(seq)}" hidden hx-swap-oob="true"></div>'


def regions(
    snap: Mapping[str, Any],
    perms: Perms,
    events: Sequence[Mapping[str, Any]],
    *,
    oob: bool = False,
    readonly: bool = False,
) -> dict[str, SafeString]:
    """Every live region of the detail page, rendered from one snapshot."""
    dag_id = snap["dag_id"]
    counts = {
        "total": len(snap["nodes"]),
        "done": sum(1 for n in snap["nodes"] if n["status"] in DONE_STATUSES),
        "failed": sum(1 for n in snap["nodes"] if n["status"] == "failed"),
        "running": sum(1 for n in snap["nodes"] if n["status"] in ("running", "waiting")),
    }
    now = snap.get("at")  # a replayed state is "as of" its last event
    graph = graph_html(dag_id, snap["nodes"], snap["edges"], now)
    if oob:
        graph = mark_safe(graph.replace('<div id="graph"', '<div id="graph" hx-swap-oob="true"', 1))
    return {
        "graph": graph,
        "status": status_html(
            snap["status"], snap["created_at"], snap["finished_at"], oob=oob, now=now
        ),
        "progress": progress_html(counts, oob=oob),
        "cost": cost_html(snap["spent"], snap["budget"], oob=oob),
        "controls": controls_html(dag_id, snap["status"], perms[1], oob=oob),
        "gates": gates_html(dag_id, snap["gates"], perms[0], oob=oob, readonly=readonly),
        "results": results_html(snap["status"], snap["results"], oob=oob),
        "timeline": timeline_html(events, oob=oob),
    }


# ----------------------------------------------------------- live fragments


class FragmentCache:
    """A small thread-safe LRU of rendered event fragments."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._data: OrderedDict[CacheKey, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: CacheKey, value: str) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


cache = FragmentCache()


def _node_view(dag_id: str, node_id: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    row = Node.objects.filter(dag_id=dag_id, node_id=node_id).values("label", "started_at").first()
    if row is None:
        return None
    status = event["status"]
    started = format_ts(row["started_at"]) if row["started_at"] else None
    if status == "running" and started is None:
        started = event["ts"]
    finished = event["ts"] if status in FINISHED_NODE_STATUSES else None
    return {
        "id": node_id,
        "label": row["label"],
        "status": status,
        "started_at": started,
        "finished_at": finished,
    }


def render_event(dag_id: str, seq: int, frame: str, perms: Perms) -> str:
    """One event as out-of-band fragments for only what it changed (without the seq marker)."""
    event: dict[str, Any] = json.loads(frame)
    parts: list[str] = []
    match event["type"]:
        case "node_state":
            view = _node_view(dag_id, event["node_id"], event)
            if view is not None:
                parts.append(
                    f'<svg hx-swap-oob="innerHTML:#{dom_id("ns", event["node_id"])}">'
                    f"{node_svg(dag_id, view, seq)}</svg>"
                )
            parts.append(progress_html(node_counts(dag_id), oob=True))
        case "edge_active":
            parts.append(
                f'<div id="ds-flash" hidden hx-swap-oob="true" data-seq="{seq}"'
                f' data-edge="{edge_dom_id(event["from"], event["to"])}"></div>'
            )
        case "dag_mutated":
            nodes = [
                {
                    "id": n["node_id"],
                    "label": n["label"],
                    "status": n["status"],
                    "started_at": _iso(n["started_at"]),
                    "finished_at": _iso(n["finished_at"]),
                }
                for n in Node.objects.filter(dag_id=dag_id).values(
                    "node_id", "label", "status", "started_at", "finished_at"
                )
            ]
            edges = _edges(dag_id)
            graph = graph_html(dag_id, nodes, edges)
            parts.append(graph.replace('<div id="graph"', '<div id="graph" hx-swap-oob="true"', 1))
            parts.append(progress_html(node_counts(dag_id), oob=True))
        case "cost_update":
            parts.append(cost_html(event["spent"], event.get("budget"), oob=True))
        case "execution_complete":
            parts.append(results_html("completed", event.get("results"), oob=True))
        case "human_gate_waiting":
            gate = {
                "node_id": event["node_id"],
                "presentation": event["presentation"],
                "status": "pending",
            }
            parts.append(
                f'<div hx-swap-oob="beforeend:#gate-list">{gate_html(dag_id, gate, perms[0])}</div>'
            )
        case "gate_decided":
            presentation = (
                Gate.objects.filter(dag_id=dag_id, node_id=event["node_id"])
                .values_list("presentation", flat=True)
                .first()
            )
            gate = {
                "node_id": event["node_id"],
                "presentation": presentation or {},
                "status": {"approve": "approved", "reject": "rejected", "modify": "modified"}[
                    event["decision"]
                ],
                "feedback": event.get("feedback", ""),
                "decided_by": event.get("decided_by", ""),
                "decided_at": event["ts"],
            }
            html = gate_html(dag_id, gate, perms[0])
            parts.append(html.replace("<article ", '<article hx-swap-oob="true" ', 1))
        case "execution_state":
            state = event["state"]
            created = Dag.objects.filter(pk=dag_id).values_list("created_at", flat=True).first()
            started = format_ts(created) if created else event["ts"]
            finished = event["ts"] if state in TERMINAL_STATUSES else None
            parts.append(status_html(state, started, finished, oob=True))
            parts.append(controls_html(dag_id, state, perms[1], oob=True))
        case "error":
            pass
    parts.append(f'<ol hx-swap-oob="afterbegin:#timeline">{timeline_entry_html(event)}</ol>')
    return "".join(parts)


def _iso(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment else None


def _edges(dag_id: str) -> list[dict[str, str]]:
    return [
        {"from": a, "to": b}
        for a, b in Edge.objects.filter(dag_id=dag_id).values_list("src", "dst")
    ]


def cached_events_html(dag_id: str, events: Sequence[tuple[int, str]], perms: Perms) -> str | None:
    """The message for ``events`` if every fragment is cached (no database), else None."""
    parts = []
    for seq, frame in events:
        html = cache.get((dag_id, seq, frame, perms))
        if html is None:
            return None
        parts.append(html)
    parts.append(seq_marker(events[-1][0]))
    return "".join(parts)


def events_html(dag_id: str, events: Sequence[tuple[int, str]], perms: Perms) -> str:
    """One message for ``events``: their fragments, in order, then the seq marker."""
    parts = []
    for seq, frame in events:
        key = (dag_id, seq, frame, perms)
        html = cache.get(key)
        if html is None:
            html = render_event(dag_id, seq, frame, perms)
            cache.put(key, html)
        parts.append(html)
    parts.append(seq_marker(events[-1][0]))
    return "".join(parts)


def snapshot_message(snap: Mapping[str, Any], perms: Perms) -> str:
    """Every region re-rendered out of band (a resume that could not replay)."""
    events = recent_events(snap["dag_id"], snap["last_seq"])
    parts = regions(snap, perms, events, oob=True)
    return "".join(parts.values()) + seq_marker(snap["last_seq"])


# ------------------------------------------------------------- run list


def row_context(dag: Dag, total: int, done: int) -> dict[str, Any]:
    created = format_ts(dag.created_at)
    finished = format_ts(dag.finished_at) if dag.finished_at else None
    return {
        "dom_id": dom_id("run", dag.dag_id),
        "dag_id": dag.dag_id,
        "name": dag.name,
        "status": dag.status,
        "url": reverse("dagstream:detail", args=[dag.dag_id]),
        "total": total,
        "done": done,
        "pct": round(100 * done / total) if total else 0,
        "spent": dag.spent,
        "budget": dag.budget,
        "created_at": created,
        "created_label": dag.created_at.strftime("%b %d, %H:%M"),
        "finished_at": finished,
        "duration": format_duration(span_seconds(created, finished)),
    }


def annotated(queryset: Any) -> Any:
    """DAGs with their node counts and waiting gates (a subquery: no join fan-out)."""
    waiting = (
        Gate.objects.filter(dag=OuterRef("pk"), status="pending")
        .order_by()
        .values("dag")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        n_total=Count("nodes"),
        n_done=Count("nodes", filter=Q(nodes__status__in=DONE_STATUSES)),
        n_waiting=Coalesce(Subquery(waiting), 0),
    )


def row_html(dag: Any, *, oob: bool = False) -> SafeString:
    row = {**row_context(dag, dag.n_total, dag.n_done), "waiting": dag.n_waiting}
    return _render("dag_row.html", {"r": row, "oob": oob})


def index_message(pending: Mapping[str, int], new_runs: int) -> str:
    """Rows of the changed DAGs on a list page (out of band), and the new-runs notice."""
    # One query per throttle window per list page; rows are not cached, since
    # the list's messages carry no event to tell a re-created DAG apart.
    parts = [row_html(dag, oob=True) for dag in annotated(Dag.objects.filter(pk__in=list(pending)))]
    if new_runs:
        parts.append(_render("list_notice.html", {"count": new_runs}))
    return "".join(parts)
