"""The one refusal vocabulary: every error knows its code, HTTP status and close code.

Each edge maps a refusal once, from these attributes: a socket answers a command
with ``{"type": "error", "code", "message"}`` (or closes with ``close_code`` when
the refusal ends the socket), HTTP answers ``http_status`` with the one JSON error
shape :func:`error_body`, and the dashboard shows ``message``. Nothing was changed
by a refused request.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypedDict

__all__ = [
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_TOO_MANY_FRAMES",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNAUTHENTICATED",
    "Conflict",
    "DagstreamError",
    "ErrorBody",
    "ErrorCode",
    "Forbidden",
    "InvalidDelta",
    "InvalidJson",
    "InvalidParameter",
    "MethodNotAllowed",
    "NotFound",
    "RateLimited",
    "TooLarge",
    "Unauthenticated",
    "UnknownType",
    "error_body",
]

ErrorCode = Literal[
    "invalid_json",
    "invalid_message",
    "invalid_parameter",
    "unknown_type",
    "too_large",
    "rate_limited",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "method_not_allowed",
]

# WebSocket close codes, sent after accept (a close before accept reaches a
# browser only as 1006). The first three are refusals: clients do not retry.
# 4013 stands in for 1013 "try again later" (a client too far behind), and 4008
# for 1008 "policy violation" (a client that keeps sending far past the rate
# limit), which daphne (autobahn) cannot send: a server may send only 1000 and
# 3000-4999.
CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_TOO_MANY_FRAMES = 4008
CLOSE_TRY_AGAIN_LATER = 4013


class DagstreamError(Exception):
    """A refused request; nothing was changed.

    ``code`` is the protocol error code, ``http_status`` the HTTP answer and
    ``close_code`` the WebSocket close code when the refusal ends a socket
    (``None``: a socket answers with an ``error`` message and stays open).
    """

    code: ClassVar[ErrorCode] = "invalid_message"
    http_status: ClassVar[int] = 400
    close_code: ClassVar[int | None] = None

    def __init__(self, message: str, command_id: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.command_id = command_id


class InvalidDelta(DagstreamError, ValueError):
    """A message or engine value of the wrong shape."""


class InvalidJson(DagstreamError, ValueError):
    code = "invalid_json"


class UnknownType(DagstreamError, ValueError):
    code = "unknown_type"


class TooLarge(DagstreamError, ValueError):
    code = "too_large"
    http_status = 413


class InvalidParameter(DagstreamError, ValueError):
    """A query parameter of the HTTP API that cannot be used."""

    code = "invalid_parameter"


class Unauthenticated(DagstreamError, PermissionError):
    code = "unauthenticated"
    http_status = 401
    close_code = CLOSE_UNAUTHENTICATED


class Forbidden(DagstreamError, PermissionError):
    code = "forbidden"
    http_status = 403
    close_code = CLOSE_FORBIDDEN


class NotFound(DagstreamError, LookupError):
    code = "not_found"
    http_status = 404
    close_code = CLOSE_NOT_FOUND


class RateLimited(DagstreamError):
    """Too much asked too fast: try again later."""

    code = "rate_limited"
    http_status = 429


class MethodNotAllowed(DagstreamError):
    code = "method_not_allowed"
    http_status = 405


class Conflict(DagstreamError):
    """The change does not fit the current state. ``decision`` names a gate's winner."""

    code = "conflict"
    http_status = 409

    def __init__(
        self, message: str, decision: dict[str, Any] | None = None, command_id: Any = None
    ) -> None:
        super().__init__(message, command_id)
        self.decision = decision


class ErrorDetail(TypedDict):
    code: ErrorCode
    message: str


class ErrorBody(TypedDict):
    """The one JSON error shape of every HTTP answer: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


def error_body(exc: DagstreamError) -> ErrorBody:
    """The JSON body an HTTP edge answers ``exc`` with."""
    return {"error": {"code": exc.code, "message": exc.message}}
