"""Dashboard pages, and the htmx POSTs that act through :mod:`dagstream_app.services`.

A refusal on a page is Django's 404 or the "No access" page; one answering an htmx
POST is the fragment again with the refusal's message and its ``http_status``
(:mod:`dagstream_app.errors`). The JSON endpoints are in :mod:`dagstream_app.api`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import msgspec
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dagstream_app import render, services, state
from dagstream_app.conf import config
from dagstream_app.errors import Conflict, DagstreamError, NotFound
from dagstream_app.events import named_nodes
from dagstream_app.models import Dag
from dagstream_app.permissions import (
    Voter,
    allowed,
    authorize,
    dashboard_perms,
    visible,
    voter_of,
)
from dagstream_app.protocol import format_ts
from dagstream_app.vocabulary import verb

PAGE_SIZE = 25
View = Callable[..., HttpResponse]


def _page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    voter: Voter | None = None,
) -> HttpResponse:
    """``template`` in the page frame; ``voter``: the viewer as gate assignees see them, on a
    page whose gate cards arrive live (the run's page), for its scripts
    (:func:`dagstream_app.render.page_config`)."""
    context = {
        "dagstream_base_template": config().base_template,
        "dagstream_config": render.page_config(voter),
        "server_now": format_ts(timezone.now()),
        **context,
    }
    return TemplateResponse(request, f"dagstream_app/{template}", context, status=status)


def _refuse(request: HttpRequest, status: int, heading: str, message: str) -> HttpResponse:
    return _page(request, "forbidden.html", {"heading": heading, "message": message}, status)


# The same page frame and refusal page, for the dashboard's other view modules (linkviews).
render_page = _page
refuse_page = _refuse


# A run's page (its detail, its history) renders one at a time in a server
# process: building a big DAG's page is pure Python, and two at once starved the
# process's event loop of the GIL. With two clients reloading a 5,000-node page,
# other viewers' events waited 3.5 s (p95) instead of 0.23 s, and an engine inside
# the process reported a sixth as much. Pages wait their turn; sockets do not.
_PAGE_RENDERS = threading.BoundedSemaphore(1)


def one_render_at_a_time(view: View) -> View:
    """``view``'s page built and rendered while no other run page is (per process)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> HttpResponse:
        with _PAGE_RENDERS:
            response = view(*args, **kwargs)
            if isinstance(response, TemplateResponse):
                response.render()
            return response

    return wrapper


def viewer_required(view: View) -> View:
    """Login, then ``view_dag`` (403 page), then the DAG itself (404) and per-DAG hooks."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, dag_id: str | None = None, **kwargs: str) -> HttpResponse:
        if any("\x00" in value for value in kwargs.values()):
            raise Http404("No node has a NUL character in its id.")
        if dag_id is None:
            if not allowed(request.user, "view"):
                return _refuse(
                    request, 403, _("No access"), _("You don't have permission to view runs.")
                )
            return view(request, **kwargs)
        try:
            dag = authorize(request.user, "view", dag_id)
        except DagstreamError as exc:
            if isinstance(exc, NotFound):
                raise Http404(exc.message) from None
            return _refuse(
                request,
                exc.http_status,
                _("No access"),
                _("You don't have permission to view this run."),
            )
        return view(request, dag, **kwargs)

    return wrapper


# ------------------------------------------------------------------- list


@require_GET
@viewer_required
def dag_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").replace("\x00", "").strip()[:200]  # no NUL reaches a query
    status = request.GET.get("status", "")
    if status not in Dag.Status.values:
        status = ""
    # Filtered before it is counted and paged: the count and the pages never
    # include runs this user may not see.
    dags = visible(request.user, state.runs(q, status))
    page = Paginator(dags, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = state.run_rows([d.dag_id for d in page])
    params = {k: v for k, v in (("q", q), ("status", status)) if v}
    ids = ",".join(row.dag_id for row in rows)
    return _page(
        request,
        "dag_list.html",
        {
            "rows": [render.row_html(row) for row in rows],
            "page_obj": page,
            "q": q,
            "status": status,
            "statuses": Dag.Status.choices,
            "query_prefix": urlencode(params) + "&" if params else "",
            # WebSocket routes live at the root (the host's asgi.py), whatever
            # prefix the HTTP pages are mounted under.
            "ws_url": "/ws/dags/?" + urlencode({"ids": ids, **render.stream_language()}),
        },
    )


# ----------------------------------------------------------------- detail


@require_GET
@viewer_required
@one_render_at_a_time
def dag_detail(request: HttpRequest, dag: Dag) -> HttpResponse:
    found = state.page_snapshot(dag.dag_id)
    if found is None:
        raise Http404
    snap, graph = found
    events = state.recent_events(dag.dag_id, render.TIMELINE_SCAN, snap.last_seq)
    # Members of groups are not in the snapshot: the timeline's names for those it shows.
    named = render.timeline_names(events, graph.group_of) - {n.id for n in snap.nodes}
    health = state.engine_health(dag.dag_id)
    voter = voter_of(request.user)
    return _page(
        request,
        "dag_detail.html",
        {
            "dag": dag,
            "last_seq": snap.last_seq,
            "regions": render.regions(
                snap,
                dashboard_perms(request.user, dag),
                events,
                health=health,
                gantt=state.gantt(dag.dag_id, groups={g.id: g for g in graph.groups}),
                graph=graph,
                labels=state.labels_of(dag.dag_id, named),
                voter=voter,
            ),
            "ws_url": f"/ws/dags/{dag.dag_id}/html/{render.stream_query()}",
        },
        voter=voter,
    )


@require_GET
@viewer_required
def engine_status(request: HttpRequest, dag: Dag) -> HttpResponse:
    """The engine's liveness, polled by the detail page; the controls too when they
    change with it (``shown`` is what the page shows now)."""
    health = state.engine_health(dag.dag_id)
    if health is None:
        raise Http404
    html = render.engine_html(dag.dag_id, health)
    if health.stale or request.GET.get("shown") != ("1" if health.stale else "0"):
        can_control = allowed(request.user, "control", dag)
        html += render.controls_html(
            dag.dag_id, health.status, can_control, oob=True, engine_stale=health.stale
        )
    return HttpResponse(html)


@require_GET
@viewer_required
def node_panel(request: HttpRequest, dag: Dag, node_id: str) -> HttpResponse:
    node = state.node(dag.dag_id, node_id)
    if node is None:
        raise Http404(f"Unknown node {node_id!r}.")
    return HttpResponse(render.node_panel_html(dag.dag_id, node))


# A group's panel and a search list this many nodes a page.
NODES_PAGE = 50


@require_GET
@viewer_required
def group_panel(request: HttpRequest, dag: Dag, group_id: str) -> HttpResponse:
    """A group's panel: its members, failures first, paged; a search among them."""
    return _node_list(request, dag, group_id)


# A group's events panel lists this many events a page.
EVENTS_PAGE = 50


@require_GET
@viewer_required
def group_events(request: HttpRequest, dag: Dag, group_id: str) -> HttpResponse:
    """A group's members' events, newest first, paged by seq (``before``: older than it)."""
    grouping = state.grouping(dag.dag_id)
    if group_id not in grouping.members:
        raise Http404(f"Unknown group {group_id!r}.")
    raw = request.GET.get("before", "")
    try:
        before = int(raw) if raw else None
    except ValueError:
        before = None
    found, older = state.group_events(
        dag.dag_id, group_id, grouping.group_of, before=before, limit=EVENTS_PAGE
    )
    view = state.group_views(dag.dag_id, grouping, {group_id})[group_id]
    labels = state.labels_of(dag.dag_id, set().union(*(named_nodes(e) for e in found)))
    url = render.group_events_url(dag.dag_id, group_id)
    html = render.group_events_html(
        dag.dag_id,
        view,
        found,
        labels,
        url=f"{url}?{urlencode({'before': before})}" if before else url,
        older_url=f"{url}?{urlencode({'before': older})}" if older else "",
        newest_url=url if before else "",
    )
    return HttpResponse(html)


@require_GET
@viewer_required
def node_search(request: HttpRequest, dag: Dag) -> HttpResponse:
    """Any node of the run found by id or label (``q``), paged."""
    return _node_list(request, dag, None)


def _node_list(request: HttpRequest, dag: Dag, group_id: str | None) -> HttpResponse:
    q = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    offset = (page - 1) * NODES_PAGE
    found = state.find_nodes(dag.dag_id, group=group_id, q=q, offset=offset, limit=NODES_PAGE)
    if found is None:
        raise Http404(f"Unknown group {group_id!r}.")
    group = None
    if group_id is not None:
        views = state.group_views(dag.dag_id, state.grouping(dag.dag_id), {group_id})
        group = views[group_id]
    html = render.node_list_html(
        dag.dag_id, found, group=group, q=q, page=page, per_page=NODES_PAGE
    )
    return HttpResponse(html)


@require_GET
@viewer_required
@one_render_at_a_time
def dag_replay(request: HttpRequest, dag: Dag) -> HttpResponse:
    last = dag.last_seq
    try:
        seq = int(request.GET.get("seq", last))
    except ValueError:
        seq = last
    seq = max(min(seq, last), 1 if last else 0)
    shown = _latest(dag) if seq == last else _past(dag, seq)
    if shown is None:
        raise Http404
    seq, at, regions = shown
    response = _page(
        request,
        "dag_replay.html",
        {
            "dag": dag,
            "seq": seq,
            "last_seq": max(last, seq),
            "at": at,
            "at_html": render.moment_html(at) if at else "",
            "regions": regions,
        },
    )
    if request.headers.get("HX-Request"):
        # The address names the event this response shows (clamped, as shown),
        # not whatever the slider said when the request left.
        response["HX-Replace-Url"] = f"{request.path}?{urlencode({'seq': seq})}"
    return response


Shown = tuple[int, "str | None", dict[str, Any]]


def _past(dag: Dag, seq: int) -> Shown | None:
    """The run after event ``seq``, from its log (:func:`dagstream_app.state.past`)."""
    events = state.recent_events(dag.dag_id, render.TIMELINE_SCAN, seq)
    found = state.past(dag.dag_id, seq, events)
    if found is None:
        return None
    regions = render.regions(
        found.snapshot,
        (False, False),
        events,
        readonly=True,
        now=found.at,
        graph=found.graph,
        labels=found.labels,
    )
    return seq, found.at, regions


def _latest(dag: Dag) -> Shown | None:
    """The run after its latest event: its state now, read as the detail page reads it (the
    log folded to its end is that state; a 50,000-task fan-out costs what a small run does)."""
    found = state.page_snapshot(dag.dag_id)
    if found is None:
        return None
    snap, graph = found
    # The engine's liveness is today's, not the log's: history leaves it unknown.
    snap = msgspec.structs.replace(snap, engine_seen_at=None, engine_stale=False)
    events = state.recent_events(dag.dag_id, render.TIMELINE_SCAN, snap.last_seq)
    named = render.timeline_names(events, graph.group_of) - {n.id for n in snap.nodes}
    at = events[0]["ts"] if events else None
    regions = render.regions(
        snap,
        (False, False),
        events,
        readonly=True,
        now=at,
        graph=graph,
        labels=state.labels_of(dag.dag_id, named),
    )
    return snap.last_seq, at, regions


# ----------------------------------------------------------------- actions

# On a fragment answering an htmx POST: a refusal is swapped into its card like a
# success, and dashboard/refusals.js keeps django-htmx's DEBUG handler (which would
# replace the whole page with a 4xx response) away from it.
FRAGMENT_HEADER = "X-Dagstream-Fragment"


def _fragment(html: str, status: int) -> HttpResponse:
    response = HttpResponse(html, status=status)
    response[FRAGMENT_HEADER] = "1"
    return response


@require_POST
@viewer_required
def gate_decide(request: HttpRequest, dag: Dag, node_id: str) -> HttpResponse:
    decision = request.POST.get("decision", "")
    feedback = request.POST.get("feedback", "")
    can_decide = allowed(request.user, "decide", dag)
    message, tone, status = "", "error", 200
    try:
        services.decide_gate(dag.dag_id, node_id, decision, feedback=feedback, actor=request.user)
    except DagstreamError as exc:
        status = exc.http_status
        message = exc.message
        if isinstance(exc, Conflict) and exc.decision:
            who = exc.decision.get("decided_by") or _("the system")
            winner = verb(str(exc.decision.get("decision")))
            message = _("Someone else decided first: %(decision)s by %(who)s.") % {
                "decision": winner,
                "who": who,
            }
            tone = "info"
    gate = state.gate_view(dag.dag_id, node_id)
    if gate is None:
        return _fragment(f'<p class="alert alert--error" role="alert">{escape(message)}</p>', 404)
    node = state.node(dag.dag_id, node_id)
    html = render.gate_html(
        dag.dag_id,
        gate,
        can_decide,
        message=message,
        tone=tone,
        draft=feedback if gate.status == "pending" and status != 200 else "",
        label=node.label if node is not None else "",
        across_runs=request.POST.get("across_runs") == "1",
        voter=voter_of(request.user),
    )
    return _fragment(html, status)


@require_POST
@viewer_required
def dag_control(request: HttpRequest, dag: Dag) -> HttpResponse:
    action = request.POST.get("action", "")
    message, status = "", 200
    try:
        dag = services.control(dag.dag_id, action, actor=request.user)
    except DagstreamError as exc:
        status = exc.http_status
        message = exc.message
        dag = state.dag(dag.dag_id) or dag
    health = state.engine_health(dag.dag_id)
    html = render.controls_html(
        dag.dag_id,
        dag.status,
        allowed(request.user, "control", dag),
        message=message,
        engine_stale=health is not None and health.stale,
    )
    return _fragment(html, status)
