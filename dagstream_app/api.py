"""The JSON endpoints: the read API, and the WebSocket tickets for apps on other origins.

``GET /api/dags/``, ``GET /api/dags/<dag_id>/``, ``GET /api/dags/<dag_id>/events/``,
``GET /api/gates/`` (docs/http-api.md, docs/gates.md; described by :mod:`dagstream_app.openapi`) and
``POST /dags/<dag_id>/ticket/`` (docs/client.md). A session or an
``Authorization: Bearer`` API token signs the caller in; the permission rule and
hook are the pages' own (:mod:`dagstream_app.permissions`). Every refusal is a
:class:`~dagstream_app.errors.DagstreamError`, answered here, once, with its
``http_status`` and the one JSON error shape ``{"error": {"code", "message"}}``
(:func:`~dagstream_app.errors.error_body`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import msgspec
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from dagstream_app import state, tickets, tokens
from dagstream_app.dagviews import GateView
from dagstream_app.errors import (
    DagstreamError,
    Forbidden,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    Unauthenticated,
    error_body,
)
from dagstream_app.permissions import allowed, authorize, visible
from dagstream_app.protocol import EXECUTION_STATUSES
from dagstream_app.state import RunRow

__all__ = [
    "EVENTS_LIMIT",
    "MAX_EVENTS_LIMIT",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "EventPage",
    "RunList",
    "TicketGrant",
    "dag_events",
    "dag_list",
    "dag_snapshot",
    "dag_ticket",
    "json_endpoint",
    "json_response",
    "read_only",
]

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
EVENTS_LIMIT = 100
MAX_EVENTS_LIMIT = 1000


# ------------------------------------------------------------------ shapes


class RunList(msgspec.Struct):
    """One page of runs, newest first."""

    count: int  # runs matching, all pages
    page: int
    pages: int
    next: str | None  # the next page's URL, or null on the last
    results: list[RunRow]


class EventPage(msgspec.Struct):
    """Events ``after < seq <= after + limit``, in seq order, as the WebSocket sends them."""

    dag_id: str
    last_seq: int  # the DAG's last seq now
    events: list[msgspec.Raw]
    next_after: int  # pass as ``after`` for the next page
    has_more: bool


class WaitingGate(msgspec.Struct):
    """A gate waiting for the caller: its run, its node, when it opened, and the gate."""

    dag_id: str
    run_name: str
    label: str  # its node's label, else its id
    opened_at: str
    gate: GateView


class GateList(msgspec.Struct):
    """Every gate the caller may decide now, across runs, oldest first."""

    count: int
    gates: list[WaitingGate]


class TicketGrant(msgspec.Struct):
    """A single-use WebSocket ticket and its lifetime in seconds."""

    ticket: str
    expires_in: int


def json_response(body: object, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(body), status=status, content_type="application/json")


# --------------------------------------------------------------- the edge

Endpoint = Callable[..., HttpResponse]


def json_endpoint(*methods: str) -> Callable[[Endpoint], Endpoint]:
    """Answer ``methods`` only, and every refusal as the one JSON error shape.

    Another method is 405 with ``Allow``; 401 says ``WWW-Authenticate: Bearer``.
    Exempt from Django's CSRF middleware, whose refusal is an HTML page: a
    read is never checked anyway, and an endpoint that changes something checks
    a session request itself (:func:`_caller`).
    """
    allow = ", ".join(methods)

    def decorate(view: Endpoint) -> Endpoint:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: str, **kwargs: str) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise MethodNotAllowed(f"{request.method} is not allowed here: use {allow}.")
                return view(request, *args, **kwargs)
            except DagstreamError as exc:
                response = json_response(error_body(exc), exc.http_status)
                if isinstance(exc, Unauthenticated):
                    response["WWW-Authenticate"] = "Bearer"
                if isinstance(exc, MethodNotAllowed):
                    response["Allow"] = allow
                return response

        return wrapper

    return decorate


read_only = json_endpoint("GET", "HEAD")


def _csrf_passes(request: HttpRequest) -> bool:
    # The endpoint is exempt so that bearer requests (no cookie, nothing to
    # forge) need no token; session requests get Django's own check here.
    check = CsrfViewMiddleware(lambda _: HttpResponse())
    check.process_request(request)
    return check.process_view(request, HttpResponse, (), {}) is None


def _caller(request: HttpRequest, *, csrf: bool = False) -> AbstractBaseUser:
    """The bearer token's user, or the session's; a bad token is a refusal, never the session.

    With ``csrf`` a session request must also pass Django's CSRF check.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        user = tokens.user_for_authorization(header)
        if user is None:
            raise Unauthenticated("The API token is not valid (or was revoked).")
        return user
    session_user = request.user
    if isinstance(session_user, AnonymousUser) or not session_user.is_authenticated:
        raise Unauthenticated("Sign in, or send Authorization: Bearer <API token>.")
    if csrf and not _csrf_passes(request):
        raise Forbidden("CSRF check failed: send the csrftoken cookie in X-CSRFToken.")
    return session_user


def _text(request: HttpRequest, name: str, limit: int = 200) -> str:
    value = request.GET.get(name, "")
    if "\x00" in value:
        raise InvalidParameter(f"{name} must not contain NUL characters.")
    if len(value) > limit:
        raise InvalidParameter(f"{name} is at most {limit} characters.")
    return value.strip()


def _int(request: HttpRequest, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = _text(request, name, 20)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, not {raw!r}.") from None
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidParameter(f"{name} must be {span}, not {value}.")
    return value


# --------------------------------------------------------------- endpoints


@read_only
def dag_list(request: HttpRequest) -> HttpResponse:
    """Runs the caller may view, newest first: ``?status=&q=&page=&page_size=``."""
    user = _caller(request)
    status = _text(request, "status")
    if status and status not in EXECUTION_STATUSES:
        raise InvalidParameter(
            f"status must be one of {', '.join(EXECUTION_STATUSES)}, not {status!r}."
        )
    query = _text(request, "q")
    size = _int(request, "page_size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    number = _int(request, "page", 1, 1)
    if not allowed(user, "view"):
        raise Forbidden("You may not view DAGs.")
    paginator = Paginator(visible(user, state.runs(query, status)), size)
    if number > max(1, paginator.num_pages):
        raise NotFound(f"There is no page {number}; there are {paginator.num_pages}.")
    page = paginator.page(number)
    following = None
    if page.has_next():
        params = request.GET.copy()
        params["page"] = str(page.next_page_number())
        following = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    rows = state.run_rows([dag.dag_id for dag in page.object_list])
    return json_response(RunList(paginator.count, number, paginator.num_pages, following, rows))


@read_only
def gate_list(request: HttpRequest) -> HttpResponse:
    """The gates the caller may decide now, oldest first (the inbox): ``?run=``."""
    from dagstream_app.inbox import waiting_for

    user = _caller(request)
    run = _text(request, "run")
    if not allowed(user, "decide"):
        raise Forbidden("You may not decide gates.")
    items = [
        WaitingGate(i.dag_id, i.run_name, i.label, i.opened_at, i.gate)
        for i in waiting_for(user, run)
    ]
    return json_response(GateList(len(items), items))


@read_only
def dag_snapshot(request: HttpRequest, dag_id: str) -> HttpResponse:
    """The run's whole state with ``last_seq``: connect the socket with ``?last_seq=`` next."""
    authorize(_caller(request), "view", dag_id)
    snap = state.snapshot(dag_id)
    if snap is None:  # deleted between the two reads
        raise NotFound(f"Unknown DAG {dag_id!r}.")
    return json_response(snap)


@read_only
def dag_events(request: HttpRequest, dag_id: str) -> HttpResponse:
    """The run's events after ``?after=`` (default 0), at most ``?limit=``, in seq order."""
    dag = authorize(_caller(request), "view", dag_id)
    after = _int(request, "after", 0, 0)
    limit = _int(request, "limit", EVENTS_LIMIT, 1, MAX_EVENTS_LIMIT)
    # Seqs are gap-free: the page is a range of them.
    frames = state.event_frames(dag_id, after, after + limit)
    last = frames[-1][0] if frames else after
    return json_response(
        EventPage(
            dag_id=dag_id,
            last_seq=dag.last_seq,
            events=[msgspec.Raw(text.encode()) for _, text in frames],
            next_after=last,
            has_more=last < dag.last_seq,
        )
    )


@json_endpoint("POST")
def dag_ticket(request: HttpRequest, dag_id: str) -> HttpResponse:
    """``POST /dags/<dag_id>/ticket/``: a WebSocket ticket, :class:`TicketGrant`.

    Authenticated by ``Authorization: Bearer`` or by the session (with CSRF);
    the user must be allowed to view the DAG. See docs/client.md.
    """
    user = _caller(request, csrf=True)
    dag = authorize(user, "view", dag_id)
    key, lifetime = tickets.issue_ticket(user, dag, tickets.issuer_of(request))
    response = json_response(TicketGrant(key, lifetime))
    response["Cache-Control"] = "no-store"
    return response
