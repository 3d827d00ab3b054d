"""The errors a refused change raises; ``code`` is the protocol error code it answers with."""

from __future__ import annotations

from typing import Any

from dagstream_app import protocol

__all__ = ["Conflict", "DagstreamError", "Forbidden", "InvalidDelta", "NotFound", "RateLimited"]


class DagstreamError(Exception):
    """A refused change. ``code`` is the protocol error code; nothing was changed."""

    code: protocol.ErrorCode = "invalid_message"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidDelta(DagstreamError, ValueError):
    code = "invalid_message"


class NotFound(DagstreamError, LookupError):
    code = "not_found"


class Forbidden(DagstreamError, PermissionError):
    code = "forbidden"


class RateLimited(DagstreamError):
    """Too much asked too fast: try again later."""

    code = "rate_limited"


class Conflict(DagstreamError):
    """The change does not fit the current state. ``decision`` names a gate's winner."""

    code = "conflict"

    def __init__(self, message: str, decision: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.decision = decision
