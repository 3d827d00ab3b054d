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
    # Replays and snapshots one connection may cost in a minute, in events (a
    # snapshot: its nodes, edges and gates); past it, resumes get rate_limited.
    "REPLAY_BUDGET_PER_MINUTE": 50_000,
    # Bytes a server may hold for a socket whose client does not read; past it
    # the socket is closed with 4013 (daphne; uvicorn applies back-pressure itself).
    "MAX_UNSENT_BYTES": 4 * 1024 * 1024,
    # A consumer this many events behind closes with 4013 (client resumes).
    "MAX_LAG": 5_000,
    # Idle consumers and waiting engines re-check the database this often (s),
    # so a lost *last* message is still noticed.
    "IDLE_CHECK_SECONDS": 1.0,
    # Open sockets read their credential and permission again this often (s):
    # a revoked token, an ended session, a deactivated user or a lost view
    # permission closes them within it. Commands are checked as they arrive.
    "REVALIDATE_SECONDS": 5.0,
    # A stream silent this long (s) gets a keep-alive message: proxies with
    # idle timeouts keep it open, and clients tell a dead connection by its absence.
    "KEEPALIVE_SECONDS": 20.0,
    # With ``?batch=1`` and on dashboards: events are coalesced for at most this
    # long (s); fewer, fuller frames are what let a server keep up in a storm ...
    "BATCH_WINDOW_SECONDS": 0.025,
    # ... and at most this many go into one frame.
    "BATCH_MAX_EVENTS": 500,
    # Reports an engine may queue (``stream.nowait``) before the database has
    # written them; past it nowait raises BufferFull (async) or blocks (sync).
    "ENGINE_BUFFER": 10_000,
    # Money on pages, the timeline and admin: the currency's prefix and how
    # many decimals every amount shows.
    "CURRENCY": "$",
    "MONEY_DECIMALS": 2,
    # While a stream is open, the engine API reports a heartbeat this often (s)
    # when it has reported nothing else; a live run whose engine has been silent
    # for ENGINE_STALE_SECONDS is shown as "engine not responding", and people
    # with control_dag may force-end it.
    "ENGINE_HEARTBEAT_SECONDS": 10.0,
    "ENGINE_STALE_SECONDS": 60.0,
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
