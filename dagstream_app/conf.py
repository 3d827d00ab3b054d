"""dagstream settings: the host's ``DAGSTREAM`` dict over documented defaults.

Read lazily through :func:`get_config`; the cache is cleared when Django's
``setting_changed`` fires, so ``override_settings(DAGSTREAM=...)`` works in tests.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

CONFIG_DEFAULTS: dict[str, Any] = {
    # How many events behind the DAG's last seq a client may resume by replay;
    # further behind, it gets a snapshot instead.
    "REPLAY_WINDOW": 10_000,
    # Largest client frame accepted, in bytes (answered with ``too_large``).
    "MAX_FRAME_BYTES": 64 * 1024,
    # Per-connection token bucket for client frames: sustained rate and burst.
    "RATE_LIMIT_PER_SECOND": 20.0,
    "RATE_LIMIT_BURST": 40,
    # A consumer this many events behind closes with 4013 (client resumes).
    "MAX_LAG": 5_000,
    # Idle consumers and waiting engines re-check the database this often (s),
    # so a lost *last* message is still noticed.
    "IDLE_CHECK_SECONDS": 1.0,
    # A socket silent this long gets a ``keepalive`` message (s): idle proxies
    # keep it open, and clients reconnect when they hear nothing for ~2.5x it.
    "KEEPALIVE_SECONDS": 20.0,
    # With ``?batch=1``: events are coalesced for at most this long (s) ...
    "BATCH_WINDOW_SECONDS": 0.005,
    # ... and at most this many go into one frame.
    "BATCH_MAX_EVENTS": 500,
    # Reports an engine may queue (``stream.nowait``) before the database has
    # written them; past it nowait raises BufferFull (async) or blocks (sync).
    "ENGINE_BUFFER": 10_000,
    # WebSocket tickets (``POST /dags/<dag_id>/ticket/``) are valid this long (s).
    "TICKET_SECONDS": 30,
    # Origins besides ALLOWED_HOSTS that may open a WebSocket with a ticket, as
    # Channels' OriginValidator patterns, e.g. ["https://app.example.com"].
    # They need auth.AllowedOriginsValidator in asgi.py to pass the handshake.
    "ALLOWED_ORIGINS": (),
    # Longest gate feedback accepted, in characters.
    "FEEDBACK_MAX_LENGTH": 4_000,
    # ``manage.py dagstream_prune`` deletes runs finished more than this many
    # days ago when no ``--older-than`` is given; None keeps every run.
    "RETENTION_DAYS": None,
    # Dotted path to ``callable(user, action, dag) -> bool`` for per-DAG rules;
    # ``action`` is "view", "decide", "control" or "delete". Runs after Django's
    # own permission check, which it can only narrow; only ever asked about a real DAG.
    "PERMISSION_HOOK": None,
    # Template the dashboard pages extend; point it at the host's own base.
    # It needs only the blocks ``title``, ``dagstream_head``, ``content`` and
    # ``dagstream_scripts``: each page fills the head with its CSS and
    # htmx-config and wraps its content in the ``.dagstream`` root
    # (see docs/dashboard.md).
    "BASE_TEMPLATE": "dagstream_app/base.html",
}


@lru_cache(maxsize=1)
def get_config() -> dict[str, Any]:
    """Return the merged configuration (defaults overlaid with ``DAGSTREAM``)."""
    user: dict[str, Any] = getattr(settings, "DAGSTREAM", {}) or {}
    return {**CONFIG_DEFAULTS, **user}


@receiver(setting_changed)
def _clear_config_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "DAGSTREAM":
        get_config.cache_clear()
        from dagstream_app import permissions

        permissions.get_hook.cache_clear()
