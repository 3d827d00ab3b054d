"""The JSON read API: the run list, one run's snapshot, and its event log paged by seq.

``GET /api/dags/``, ``GET /api/dags/<dag_id>/``, ``GET /api/dags/<dag_id>/events/``
and the OpenAPI 3.1 description at ``GET /api/openapi.json`` (docs/http-api.md).
A session or an ``Authorization: Bearer`` API token signs the caller in; the
permission rule and hook are the pages' own (:mod:`dagstream_app.permissions`).
Read-only: there is nothing to forge, so no CSRF exemption is needed. Every
refusal is JSON, ``{"error": {"code", "message"}}``, with its HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import msgspec
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from dagstream_app import protocol, state, tokens
from dagstream_app.errors import DagstreamError, ErrorCode
from dagstream_app.models import Dag
from dagstream_app.permissions import allowed, authorize, visible
from dagstream_app.protocol import DAG_ID_RE, EXECUTION_STATUSES, PROTOCOL_VERSION, DagSnapshot
from dagstream_app.state import RunRow

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
EVENTS_LIMIT = 100
MAX_EVENTS_LIMIT = 1000

_STATUS: dict[str, int] = {
    "invalid_parameter": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
}


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


class ErrorDetail(msgspec.Struct):
    code: ErrorCode
    message: str


class ApiError(msgspec.Struct):
    error: ErrorDetail


class _Refusal(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


def _json(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(body), status=status, content_type="application/json")


def _error(code: ErrorCode, message: str) -> HttpResponse:
    response = _json(ApiError(ErrorDetail(code, message)), _STATUS[code])
    if code == "unauthenticated":
        response["WWW-Authenticate"] = 'Bearer realm="dagstream"'
    if code == "method_not_allowed":
        response["Allow"] = "GET, HEAD"
    return response


# ------------------------------------------------------------ auth, params


def _caller(request: HttpRequest) -> Any:
    """The session's user, or the bearer token's; a bad token is a refusal, not anonymous."""
    header = request.headers.get("Authorization")
    if header is None:
        if not request.user.is_authenticated:
            raise _Refusal("unauthenticated", "Sign in, or send Authorization: Bearer <API token>.")
        return request.user
    scheme, _, key = header.partition(" ")
    user: Any = tokens.user_for_token(key.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise _Refusal("unauthenticated", "The API token is not valid (or was revoked).")
    return user


def _text(request: HttpRequest, name: str, limit: int = 200) -> str:
    value = request.GET.get(name, "")
    if "\x00" in value:
        raise _Refusal("invalid_parameter", f"{name} must not contain NUL characters.")
    if len(value) > limit:
        raise _Refusal("invalid_parameter", f"{name} is at most {limit} characters.")
    return value.strip()


def _int(request: HttpRequest, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = _text(request, name, 20)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Refusal("invalid_parameter", f"{name} must be an integer, not {raw!r}.") from None
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise _Refusal("invalid_parameter", f"{name} must be {span}, not {value}.")
    return value


def _dag(user: Any, dag_id: str) -> Dag:
    if allowed(user, "view") and not DAG_ID_RE.match(dag_id):
        # Never a DAG id (and a NUL would upset PostgreSQL): no need to ask the database.
        raise _Refusal("not_found", f"Unknown DAG {dag_id!r}.")
    try:
        return authorize(user, "view", dag_id)
    except DagstreamError as exc:
        raise _Refusal(exc.code, exc.message) from None


Endpoint = Callable[..., HttpResponse]


def endpoint(view: Endpoint) -> Endpoint:
    """GET (and HEAD) only; refusals as JSON errors."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return _error("method_not_allowed", "This API is read-only: use GET.")
        try:
            return view(request, *args, **kwargs)
        except _Refusal as exc:
            return _error(exc.code, exc.message)

    return wrapper


# --------------------------------------------------------------- endpoints


@endpoint
def dag_list(request: HttpRequest) -> HttpResponse:
    """Runs the caller may view, newest first: ``?status=&q=&page=&page_size=``."""
    user = _caller(request)
    status = _text(request, "status")
    if status and status not in EXECUTION_STATUSES:
        raise _Refusal(
            "invalid_parameter",
            f"status must be one of {', '.join(EXECUTION_STATUSES)}, not {status!r}.",
        )
    query = _text(request, "q")
    size = _int(request, "page_size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    number = _int(request, "page", 1, 1)
    if not allowed(user, "view"):
        raise _Refusal("forbidden", "You may not view DAGs.")
    paginator = Paginator(visible(user, state.runs(query, status)), size)
    if number > max(1, paginator.num_pages):
        raise _Refusal("not_found", f"There is no page {number}; there are {paginator.num_pages}.")
    page = paginator.page(number)
    following = None
    if page.has_next():
        params = request.GET.copy()
        params["page"] = str(page.next_page_number())
        following = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    rows = state.run_rows([dag.dag_id for dag in page.object_list])
    return _json(RunList(paginator.count, number, paginator.num_pages, following, rows))


@endpoint
def dag_snapshot(request: HttpRequest, dag_id: str) -> HttpResponse:
    """The run's whole state with ``last_seq``: connect the socket with ``?last_seq=`` next."""
    _dag(_caller(request), dag_id)
    snap = state.snapshot(dag_id)
    if snap is None:  # deleted between the two reads
        raise _Refusal("not_found", f"Unknown DAG {dag_id!r}.")
    return _json(snap)


@endpoint
def dag_events(request: HttpRequest, dag_id: str) -> HttpResponse:
    """The run's events after ``?after=`` (default 0), at most ``?limit=``, in seq order."""
    dag = _dag(_caller(request), dag_id)
    after = _int(request, "after", 0, 0)
    limit = _int(request, "limit", EVENTS_LIMIT, 1, MAX_EVENTS_LIMIT)
    # Seqs are gap-free: the page is a range of them.
    frames = state.event_frames(dag_id, after, after + limit)
    last = frames[-1][0] if frames else after
    return _json(
        EventPage(
            dag_id=dag_id,
            last_seq=dag.last_seq,
            events=[msgspec.Raw(text.encode()) for _, text in frames],
            next_after=last,
            has_more=last < dag.last_seq,
        )
    )


@endpoint
def openapi_view(request: HttpRequest) -> HttpResponse:
    """This API's OpenAPI 3.1 description (also committed as docs/openapi.json)."""
    return _json(openapi(prefix=reverse("dagstream:api_list").removesuffix("dags/")))


# ----------------------------------------------------------------- OpenAPI

_ERRORS = {
    "400": "A parameter is not valid",
    "401": "Not signed in, or the API token is not valid",
    "403": "Not allowed to view this (Django permission or the permission hook)",
    "404": "No such DAG (or page)",
}


def _responses(schema: str, *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }
    for code in codes:
        out[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
        }
    return out


def _param(name: str, where: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": text,
    }


DAG_ID = _param(
    "dag_id", "path", {"type": "string", "pattern": protocol.DAG_ID_PATTERN}, "The run's id."
)


def openapi(prefix: str = "/api/") -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API, its schemas generated from the msgspec types."""
    _, components = msgspec.json.schema_components(
        [RunList, DagSnapshot, EventPage, ApiError], ref_template="#/components/schemas/{name}"
    )
    components["EventPage"]["properties"]["events"]["items"] = {
        "type": "object",
        "description": "An event exactly as the WebSocket sends it (`server_event` in "
        "the protocol's JSON Schema: `manage.py dagstream_schema`).",
    }
    integer = {"type": "integer"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dagstream HTTP read API",
            "version": f"{PROTOCOL_VERSION}",
            "description": "Runs, snapshots and event logs, under the dashboard's permissions. "
            "See docs/http-api.md.",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"session": []}, {"token": []}],
        "paths": {
            f"{prefix}dags/": {
                "get": {
                    "operationId": "listDags",
                    "summary": "Runs the caller may view, newest first",
                    "parameters": [
                        _param(
                            "status",
                            "query",
                            {"enum": list(EXECUTION_STATUSES)},
                            "Only runs in this status.",
                        ),
                        _param(
                            "q",
                            "query",
                            {"type": "string", "maxLength": 200},
                            "Only runs whose name or id contains this.",
                        ),
                        _param("page", "query", {**integer, "minimum": 1, "default": 1}, "Page."),
                        _param(
                            "page_size",
                            "query",
                            {
                                **integer,
                                "minimum": 1,
                                "maximum": MAX_PAGE_SIZE,
                                "default": PAGE_SIZE,
                            },
                            "Runs per page.",
                        ),
                    ],
                    "responses": _responses("RunList", "400", "401", "403", "404"),
                }
            },
            f"{prefix}dags/{{dag_id}}/": {
                "get": {
                    "operationId": "getDag",
                    "summary": "One run's whole state, with last_seq",
                    "parameters": [DAG_ID],
                    "responses": _responses("DagSnapshot", "401", "403", "404"),
                }
            },
            f"{prefix}dags/{{dag_id}}/events/": {
                "get": {
                    "operationId": "listDagEvents",
                    "summary": "One run's events after a seq, in order",
                    "parameters": [
                        DAG_ID,
                        _param(
                            "after",
                            "query",
                            {**integer, "minimum": 0, "default": 0},
                            "Events with seq greater than this.",
                        ),
                        _param(
                            "limit",
                            "query",
                            {
                                **integer,
                                "minimum": 1,
                                "maximum": MAX_EVENTS_LIMIT,
                                "default": EVENTS_LIMIT,
                            },
                            "Events per page.",
                        ),
                    ],
                    "responses": _responses("EventPage", "400", "401", "403", "404"),
                }
            },
        },
    }
