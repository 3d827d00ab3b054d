"""Engine values bounded by size, as they are stored and sent.

Free of Django's models, so that Celery's worker signals (imported before Django
is set up) bound task results with the same functions the services use.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["bounded_json", "bounded_text"]


def bounded_json(data: Any, limit: int) -> Any:
    """``data`` (JSON builtins) as it is stored: itself, or, where its JSON is longer
    than ``limit`` bytes, ``{"truncated": True, "bytes": N, "preview": P}``: N the
    size of its compact UTF-8 JSON, P the first ``limit`` bytes of that JSON (a
    character cut in two left out)."""
    if data is None or type(data) in (bool, int):
        return data
    encoded = msgspec.json.encode(data)
    if len(encoded) <= limit:
        return data
    preview = encoded[:limit].decode(errors="ignore")
    return {"truncated": True, "bytes": len(encoded), "preview": preview}


def bounded_text(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` UTF-8 bytes and how long it was, where it is longer."""
    if len(text) * 4 <= limit:  # no character takes more than 4 bytes
        return text
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return f"{encoded[:limit].decode(errors='ignore')}… [truncated: {len(encoded)} bytes]"
