"""Dashboard pages, and the htmx POSTs that act through :mod:`dagstream_app.services`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render as render_page
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_POST

from dagstream_app import render, replay, services, state
from dagstream_app.conf import get_config
from dagstream_app.models import Dag, Node
from dagstream_app.permissions import Refused, allowed, authorize
from dagstream_app.protocol import format_ts

PAGE_SIZE = 25
View = Callable[..., HttpResponse]


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    context = {
        "dagstream_base_template": get_config()["BASE_TEMPLATE"],
        "server_now": format_ts(timezone.now()),
        **context,
    }
    return TemplateResponse(request, f"dagstream_app/{template}", context, status=status)


def _refuse(request: HttpRequest, status: int, heading: str, message: str) -> HttpResponse:
    return _page(request, "forbidden.html", {"heading": heading, "message": message}, status)


def viewer_required(view: View) -> View:
    """Login, then ``view_dag`` (403 page), then the DAG itself (404) and per-DAG hooks."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, dag_id: str | None = None, **kwargs: Any) -> HttpResponse:
        if dag_id is None:
            if not allowed(request.user, "view"):
                return _refuse(request, 403, "No access", "You don't have permission to view runs.")
            return view(request, **kwargs)
        try:
            dag = authorize(request.user, "view", dag_id)
        except Refused as exc:
            if exc.reason == "not_found":
                raise Http404(exc.message) from None
            return _refuse(request, 403, "No access", "You don't have permission to view this run.")
        return view(request, dag, **kwargs)

    return wrapper


def _perms(request: HttpRequest, dag: Dag) -> render.Perms:
    return (allowed(request.user, "decide", dag), allowed(request.user, "control", dag))


# ------------------------------------------------------------------- list


@require_GET
@viewer_required
def dag_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    status = request.GET.get("status", "")
    dags = Dag.objects.order_by("-created_at")
    if q:
        dags = dags.filter(Q(name__icontains=q) | Q(dag_id__icontains=q))
    if status in Dag.Status.values:
        dags = dags.filter(status=status)
    else:
        status = ""
    page = Paginator(dags, PAGE_SIZE).get_page(request.GET.get("page"))
    page_dags = [d for d in render.annotated(Dag.objects.filter(pk__in=[d.pk for d in page]))]
    page_dags.sort(key=lambda d: d.created_at, reverse=True)
    page_dags = [d for d in page_dags if allowed(request.user, "view", d)]
    params = {k: v for k, v in (("q", q), ("status", status)) if v}
    ids = ",".join(d.dag_id for d in page_dags)
    return _page(
        request,
        "dag_list.html",
        {
            "rows": [render.row_html(d) for d in page_dags],
            "page_obj": page,
            "q": q,
            "status": status,
            "statuses": Dag.Status.choices,
            "query_prefix": urlencode(params) + "&" if params else "",
            # WebSocket routes live at the root (the host's asgi.py), whatever
            # prefix the HTTP pages are mounted under.
            "ws_url": "/ws/dags/?" + urlencode({"ids": ids}),
        },
    )


# ----------------------------------------------------------------- detail


@require_GET
@viewer_required
def dag_detail(request: HttpRequest, dag: Dag) -> HttpResponse:
    snap = state.snapshot(dag.dag_id)
    if snap is None:
        raise Http404
    events = render.recent_events(dag.dag_id, snap["last_seq"])
    return _page(
        request,
        "dag_detail.html",
        {
            "dag": dag,
            "last_seq": snap["last_seq"],
            "regions": render.regions(snap, _perms(request, dag), events),
            "ws_url": f"/ws/dags/{dag.dag_id}/html/",
        },
    )


@require_GET
@viewer_required
def node_panel(request: HttpRequest, dag: Dag, node_id: str) -> HttpResponse:
    node = Node.objects.filter(dag=dag, node_id=node_id).first()
    if node is None:
        raise Http404(f"Unknown node {node_id!r}.")
    started = format_ts(node.started_at) if node.started_at else None
    finished = format_ts(node.finished_at) if node.finished_at else None
    duration = render.format_duration(
        render.span_seconds(started, finished if node.status != "running" else None)
    )
    return render_page(
        request,
        "dagstream_app/node_panel.html",
        {
            "node": node,
            "slot": render.dom_id("ns", node.node_id),
            "url": render.node_url(dag.dag_id, node.node_id),
            "started": started,
            "duration": duration,
            "output": "" if node.output is None else render.pretty_json(node.output),
            "metrics": [(k, render.pretty_json(v)) for k, v in sorted(node.metrics.items())],
        },
    )


@require_GET
@viewer_required
def dag_replay(request: HttpRequest, dag: Dag) -> HttpResponse:
    last = dag.last_seq
    try:
        seq = int(request.GET.get("seq", last))
    except ValueError:
        seq = last
    seq = max(min(seq, last), 1 if last else 0)
    snap = replay.state_at(dag.dag_id, seq)
    if snap is None:
        raise Http404
    events = render.recent_events(dag.dag_id, seq)
    regions = render.regions(snap, (False, False), events, readonly=True)
    return _page(
        request,
        "dag_replay.html",
        {"dag": dag, "seq": seq, "last_seq": last, "at": snap["at"], "regions": regions},
    )


# ----------------------------------------------------------------- actions

_STATUS = {"conflict": 409, "forbidden": 403, "not_found": 404, "invalid_message": 400}


@require_POST
@viewer_required
def gate_decide(request: HttpRequest, dag: Dag, node_id: str) -> HttpResponse:
    decision = request.POST.get("decision", "")
    feedback = request.POST.get("feedback", "")
    can_decide = allowed(request.user, "decide", dag)
    message, tone, status = "", "error", 200
    try:
        services.decide_gate(dag.dag_id, node_id, decision, feedback=feedback, actor=request.user)
    except services.DagstreamError as exc:
        status = _STATUS.get(exc.code, 400)
        message = exc.message
        if isinstance(exc, services.Conflict) and exc.decision:
            who = exc.decision.get("decided_by") or "the system"
            message = f"Someone else decided first: {exc.decision.get('decision')} by {who}."
            tone = "info"
    gate = state.gate(dag.dag_id, node_id)
    if gate is None:
        return HttpResponse(
            f'<p class="alert alert--error" role="alert">{escape(message)}</p>',
            status=404,
        )
    html = render.gate_html(
        dag.dag_id,
        state.gate_dict(gate),
        can_decide,
        message=message,
        tone=tone,
        draft=feedback if gate.status == "pending" else "",
    )
    return HttpResponse(html, status=status)


@require_POST
@viewer_required
def dag_control(request: HttpRequest, dag: Dag) -> HttpResponse:
    action = request.POST.get("action", "")
    message, status = "", 200
    try:
        dag = services.control(dag.dag_id, action, actor=request.user)
    except services.DagstreamError as exc:
        status = _STATUS.get(exc.code, 400)
        message = exc.message
        dag.refresh_from_db()
    html = render.controls_html(
        dag.dag_id, dag.status, allowed(request.user, "control", dag), message=message
    )
    return HttpResponse(html, status=status)
