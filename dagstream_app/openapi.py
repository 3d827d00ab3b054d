"""The OpenAPI 3.1 description of the JSON read API, generated from the msgspec types it encodes.

Served at ``GET /api/openapi.json`` and committed as docs/openapi.json
(``manage.py dagstream_schema --openapi``). It documents the one JSON error shape
of every refusal, :class:`~dagstream_app.errors.ErrorBody`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from dagstream_app.api import (
    EVENTS_LIMIT,
    MAX_EVENTS_LIMIT,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    EventPage,
    GateList,
    RunList,
    json_response,
    read_only,
)
from dagstream_app.errors import ErrorBody
from dagstream_app.protocol import (
    DAG_ID_PATTERN,
    EXECUTION_STATUSES,
    PROTOCOL_VERSION,
    DagSnapshot,
)

__all__ = ["openapi", "openapi_view"]


@read_only
def openapi_view(request: HttpRequest) -> HttpResponse:
    """This API's OpenAPI 3.1 description (also committed as docs/openapi.json)."""
    prefix = reverse("dagstream:api_list").removesuffix("dags/")
    return json_response(openapi(prefix))


ERROR_SHAPE = (
    'Every refusal answers its HTTP status with one JSON shape, `{"error": {"code", "message"}}`: '
    "`code` is machine-readable (the protocol's error codes), `message` says why in words. "
    "401 comes with `WWW-Authenticate: Bearer`; a method other than GET or HEAD is 405 "
    "`method_not_allowed` with `Allow`. The ticket endpoint (`POST /dags/{dag_id}/ticket/`) "
    "refuses in the same shape."
)
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
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
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


DAG_ID = _param("dag_id", "path", {"type": "string", "pattern": DAG_ID_PATTERN}, "The run's id.")


def openapi(prefix: str = "/api/") -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API, its schemas generated from the msgspec types."""
    _, components = msgspec.json.schema_components(
        [RunList, DagSnapshot, EventPage, GateList, ErrorBody],
        ref_template="#/components/schemas/{name}",
    )
    components["ErrorBody"]["description"] = ERROR_SHAPE
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
            f"See docs/http-api.md.\n\n{ERROR_SHAPE}",
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
            f"{prefix}gates/": {
                "get": {
                    "operationId": "listGates",
                    "summary": "Gates the caller may decide now, across runs, oldest first",
                    "parameters": [
                        _param(
                            "run",
                            "query",
                            {"type": "string", "maxLength": 200},
                            "Only gates of runs whose name or id contains this.",
                        ),
                    ],
                    "responses": _responses("GateList", "400", "401", "403"),
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
