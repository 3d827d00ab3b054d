"""Task results and errors as a node shows them: JSON, and never too large."""

from __future__ import annotations

from typing import Any

import msgspec
from celery.utils.saferepr import saferepr

from dagstream_app.bounds import bounded_json
from dagstream_app.protocol import json_problem


def json_output(value: Any, limit: int) -> Any:
    """``value`` as JSON builtins, or a bounded stand-in when it is not JSON or too large."""
    try:
        data = msgspec.to_builtins(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return {"repr": saferepr(value, maxlen=limit)}
    if json_problem(data) is not None:  # NaN, a NUL, an integer past 64 bits...
        return {"repr": saferepr(value, maxlen=limit)}
    return bounded_json(data, limit)


def error_text(exception: BaseException | None) -> str:
    """``Type: message`` of a task's exception, one line, bounded."""
    if exception is None:
        return "unknown error"
    if getattr(exception, "says_it_all", False):  # GateRejected: "rejected by ..."
        return str(exception)[:500]
    message = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
    text = f"{type(exception).__name__}: {message}" if message else type(exception).__name__
    return text[:500]
