"""dagstream settings: the host's ``DAGSTREAM`` dict over documented defaults.

Read lazily through :func:`config`, a frozen, typed :class:`Config` built once; the
cache is cleared when Django's ``setting_changed`` fires, so
``override_settings(DAGSTREAM=...)`` works in tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclass(frozen=True)
class Config:
    """dagstream's settings, typed; the host sets them as upper-case keys of ``DAGSTREAM``."""

    # How many events behind the DAG's last seq a client may resume by replay;
    # further behind, it gets a snapshot instead.
    replay_window: int = 10_000
    # Largest client frame accepted, in bytes (answered with ``too_large``).
    max_frame_bytes: int = 64 * 1024
    # Per-connection token bucket for client frames: sustained rate and burst.
    # Past it frames are dropped unread; another burst past it closes the socket (4008).
    rate_limit_per_second: float = 20.0
    rate_limit_burst: int = 40
    # Replays and snapshots one credential may cost in a minute on one process, in
    # events (a snapshot: its nodes, edges and gates); past it, resumes get
    # rate_limited and new connections close with 4013.
    replay_budget_per_minute: int = 50_000
    # Bytes a server may hold for a socket whose client does not read, besides
    # what is left of the largest message it is sending (a big snapshot); past it
    # the socket is closed with 4013 (daphne; uvicorn applies back-pressure itself).
    max_unsent_bytes: int = 4 * 1024 * 1024
    # What an engine may put in one event: an output, metrics, a presentation or
    # results whose JSON is longer is stored as {"truncated", "bytes", "preview"};
    # a longer error message is cut.
    max_value_bytes: int = 64 * 1024
    # A consumer this many events behind closes with 4013 (client resumes).
    max_lag: int = 5_000
    # Idle consumers and waiting engines re-check the database this often (s),
    # so a lost *last* message is still noticed.
    idle_check_seconds: float = 1.0
    # Open sockets read their credential and permission again this often (s):
    # a revoked token, an ended session, a deactivated user or a lost view
    # permission closes them within it, whatever the client sends. Commands are
    # checked as they arrive too.
    revalidate_seconds: float = 5.0
    # A stream silent this long (s) gets a keep-alive message: proxies with
    # idle timeouts keep it open, and clients tell a dead connection by its absence.
    keepalive_seconds: float = 20.0
    # With ``?batch=1`` and on dashboards: events are coalesced for at most this
    # long (s); fewer, fuller frames are what let a server keep up in a storm ...
    batch_window_seconds: float = 0.025
    # ... and at most this many go into one frame.
    batch_max_events: int = 500
    # Reports an engine may queue (``stream.nowait``) before the database has
    # written them; past it nowait raises BufferFull (async) or blocks (sync).
    engine_buffer: int = 10_000
    # How long (s) the engine API waits out a database that does not answer (a
    # restart, a dropped connection): its reports and reads are tried again,
    # in order, until it answers; past it they raise DatabaseUnavailable.
    db_retry_seconds: float = 30.0
    # Money on pages, the timeline and admin: the currency's prefix and how
    # many decimals every amount shows.
    currency: str = "$"
    money_decimals: int = 2
    # While a stream is open, the engine API reports a heartbeat this often (s)
    # when it has reported nothing else; a live run whose engine has been silent
    # for ENGINE_STALE_SECONDS is shown as "engine not responding", and people
    # with control_dag may force-end it.
    engine_heartbeat_seconds: float = 10.0
    engine_stale_seconds: float = 60.0
    # WebSocket tickets (``POST /dags/<dag_id>/ticket/``) are valid this long (s).
    ticket_seconds: float = 30
    # Origins besides ALLOWED_HOSTS that may open a WebSocket with a ticket, as
    # Channels' OriginValidator patterns, e.g. ["https://app.example.com"].
    # They need auth.AllowedOriginsValidator in asgi.py to pass the handshake.
    allowed_origins: tuple[str, ...] = ()
    # Longest gate feedback accepted, in characters.
    feedback_max_length: int = 4_000
    # ``manage.py dagstream_prune`` deletes runs finished more than this many
    # days ago when no ``--older-than`` is given; None keeps every run.
    retention_days: float | None = None
    # Dotted path to ``callable(user, action, dag) -> bool`` for per-DAG rules;
    # ``action`` is "view", "decide", "control" or "delete". Runs after Django's
    # own permission check, which it can only narrow; only ever asked about a real DAG.
    permission_hook: str | Callable[..., bool] | None = None
    # Template the dashboard pages extend; point it at the host's own base.
    # It needs only the blocks ``title``, ``dagstream_head``, ``content`` and
    # ``dagstream_scripts``: each page fills the head with its CSS and
    # htmx-config and wraps its content in the ``.dagstream`` root
    # (see docs/dashboard.md).
    base_template: str = "dagstream_app/base.html"
    # The dashboard draws this many siblings or more that share their parents and
    # children (a fan-out), or that their engine put in one group, as one group node
    # with counts per status; 0 draws every node on its own.
    group_threshold: int = 50
    # The LangGraph integration's prices of chat models, per million tokens:
    # {"gpt-4o": {"input": 2.5, "output": 10.0}, "*": {...}} ("*": any other
    # model). ``stream_graph(prices=...)`` adds to it and wins.
    model_prices: dict[str, dict[str, float]] | None = None
    # Notifications (docs/gates.md, "Notifications and links"). When a gate opens, the
    # people who may decide it (at most NOTIFY_MAX_RECIPIENTS) get an email through
    # Django's mail settings, and every URL of NOTIFY_WEBHOOKS a POST signed with
    # NOTIFY_WEBHOOK_SECRET; links start with SITE_URL ("https://dags.example.com").
    notify_gates: bool = False
    site_url: str = ""
    notify_max_recipients: int = 20
    notify_email: bool = True
    notify_webhooks: tuple[str, ...] = ()
    notify_webhook_secret: str = ""
    # The outbox is sent by a thread of each server process (NOTIFY_EMBEDDED), or by
    # ``manage.py dagstream_notify`` processes; it looks for due messages this often (s).
    notify_embedded: bool = True
    notify_poll_seconds: float = 2.0
    # A failed message is tried again after this long (s), then twice as long each
    # time (at most an hour), NOTIFY_MAX_ATTEMPTS times in all.
    notify_retry_seconds: float = 10.0
    notify_max_attempts: int = 8
    # A gate still pending this long (s) after it opened notifies ESCALATE_TO too:
    # usernames and "group:<name>" (and the webhooks again); None: no escalation.
    escalate_after_seconds: float | None = None
    escalate_to: tuple[str, ...] = ()
    # A notification's link is valid this long (s); with GATE_LINKS_DECIDE it may
    # decide its gate as its person, once, without signing in (a GET never decides).
    gate_link_seconds: float = 7 * 24 * 3600
    gate_links_decide: bool = False


CONFIG_DEFAULTS: dict[str, Any] = {f.name.upper(): f.default for f in fields(Config)}


@lru_cache(maxsize=1)
def config() -> Config:
    """The settings in force: the defaults overlaid with the host's ``DAGSTREAM``.

    Unknown keys are left to the system check (``dagstream_app.E004``), which names them.
    """
    user: dict[str, Any] = getattr(settings, "DAGSTREAM", {}) or {}
    return Config(**{key.lower(): value for key, value in user.items() if key in CONFIG_DEFAULTS})


def retention_days_problem(value: object) -> str | None:
    """Why ``RETENTION_DAYS`` cannot be used (None: it can).

    Zero or less would delete every finished run at the next prune.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"RETENTION_DAYS must be a number of days or None, not {value!r}."
    if not math.isfinite(value) or value <= 0:
        return (
            f"RETENTION_DAYS must be more than 0 (or None to keep every run), not {value!r}: "
            "0 or less would delete every finished run."
        )
    return None


def _positive(name: str, value: object, *, none_ok: bool = False) -> str | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, not {value!r}."
    if not math.isfinite(value) or value <= 0:
        return f"{name} must be more than 0, not {value!r}."
    return None


def _http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def notify_problems(values: dict[str, Any]) -> list[str]:
    """Why the notification settings of ``DAGSTREAM`` (upper-case keys) cannot be used."""
    get = {k: values.get(k.upper(), CONFIG_DEFAULTS[k.upper()]) for k in CONFIG_DEFAULTS}
    problems = [
        f"{name} must be True or False, not {get[name]!r}."
        for name in ("NOTIFY_GATES", "NOTIFY_EMAIL", "NOTIFY_EMBEDDED", "GATE_LINKS_DECIDE")
        if not isinstance(get[name], bool)
    ]
    for name in ("NOTIFY_POLL_SECONDS", "NOTIFY_RETRY_SECONDS", "GATE_LINK_SECONDS"):
        problems.append(_positive(name, get[name]) or "")
    problems.append(
        _positive("ESCALATE_AFTER_SECONDS", get["ESCALATE_AFTER_SECONDS"], none_ok=True) or ""
    )
    for name in ("NOTIFY_MAX_RECIPIENTS", "NOTIFY_MAX_ATTEMPTS"):
        value = get[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{name} must be a whole number of at least 1, not {value!r}.")
    hooks, names = get["NOTIFY_WEBHOOKS"], get["ESCALATE_TO"]
    if isinstance(hooks, str) or not isinstance(hooks, list | tuple):
        problems.append(f"NOTIFY_WEBHOOKS must be a list of URLs, not {hooks!r}.")
    else:
        problems += [
            f"NOTIFY_WEBHOOKS: {url!r} is not an http:// or https:// URL of at most 500 characters."
            for url in hooks
            if not _http_url(url) or len(url) > 500
        ]
        secret = get["NOTIFY_WEBHOOK_SECRET"]
        if hooks and (not isinstance(secret, str) or len(secret) < 16):
            problems.append(
                "NOTIFY_WEBHOOK_SECRET must be a string of at least 16 characters when "
                "NOTIFY_WEBHOOKS lists URLs: receivers check each POST's signature with it."
            )
    if isinstance(names, str) or not isinstance(names, list | tuple):
        problems.append(
            f"ESCALATE_TO must be a list of usernames and 'group:<name>'s, not {names!r}."
        )
    elif not all(isinstance(n, str) and n.strip() for n in names):
        problems.append(f"ESCALATE_TO must hold usernames and 'group:<name>'s, not {names!r}.")
    if get["ESCALATE_AFTER_SECONDS"] is not None and not names and not hooks:
        problems.append(
            "ESCALATE_AFTER_SECONDS is set, but ESCALATE_TO and NOTIFY_WEBHOOKS are empty."
        )
    if get["NOTIFY_GATES"] is True and not _http_url(str(get["SITE_URL"]).rstrip("/")):
        problems.append(
            f"NOTIFY_GATES needs SITE_URL, the address people open the site at "
            f"(e.g. 'https://dags.example.com'), not {get['SITE_URL']!r}: links start with it."
        )
    return [problem for problem in problems if problem]


@receiver(setting_changed)
def _clear_config_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "DAGSTREAM":
        config.cache_clear()
        from dagstream_app import permissions

        permissions.get_hook.cache_clear()
