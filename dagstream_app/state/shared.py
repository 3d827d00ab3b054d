"""What every reader shares: timestamps as events carry them, and the stale-engine rule."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dagstream_app.conf import config
from dagstream_app.protocol import LIVE_STATUSES, format_ts


def iso(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment else None


def raw_moment(value: datetime | str | None) -> datetime | None:
    """A datetime column from a raw query: SQLite gives Django's naive UTC text."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    return value


def engine_stale(status: str, seen_at: datetime | None, now: datetime | None = None) -> bool:
    """True if a live run's engine has been silent past ``ENGINE_STALE_SECONDS``."""
    if status not in LIVE_STATUSES:
        return False
    if seen_at is None:
        return True
    silent = ((now or timezone.now()) - seen_at).total_seconds()
    return silent > float(config().engine_stale_seconds)
