"""System checks: configuration mistakes reported at start-up, with hints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.shortcuts import resolve_url
from django.urls import Resolver404, resolve

from dagstream_app.conf import CONFIG_DEFAULTS, notify_problems, retention_days_problem

IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"


@register(Tags.compatibility)
def check_setup(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dagstream's configuration mistakes (ids ``dagstream_app.E001`` to ``W004``, ``E006``)."""
    messages: list[CheckMessage] = []
    # By app name, so "channels.apps.ChannelsConfig" counts as installed too. There is
    # no check for "daphne": it only turns runserver into an ASGI server, and a host
    # served by daphne, uvicorn or hypercorn from the command line does not need it
    # (E002 used to ask for it; the id stays retired).
    if not apps.is_installed("channels"):
        messages.append(
            Error(
                "'channels' is not in INSTALLED_APPS.",
                hint="Add 'channels' to INSTALLED_APPS.",
                id="dagstream_app.E001",
            )
        )
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    default = layers.get("default")
    if default is None:
        messages.append(
            Error(
                "No default channel layer is configured; dagstream cannot broadcast events.",
                hint="Set CHANNEL_LAYERS = {'default': {'BACKEND': "
                "'channels.layers.InMemoryChannelLayer'}} for one process, "
                "or channels_redis for several.",
                id="dagstream_app.E003",
            )
        )
    elif default.get("BACKEND") == IN_MEMORY_LAYER and not settings.DEBUG:
        messages.append(
            Warning(
                "The in-memory channel layer only reaches consumers in this process.",
                hint="Fine for one daphne process with the engine inside it; with several "
                "processes use channels_redis.core.RedisChannelLayer.",
                id="dagstream_app.W001",
            )
        )
    unknown = sorted(set(getattr(settings, "DAGSTREAM", {}) or {}) - set(CONFIG_DEFAULTS))
    if unknown:
        messages.append(
            Error(
                f"Unknown DAGSTREAM setting(s): {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(CONFIG_DEFAULTS))}.",
                id="dagstream_app.E004",
            )
        )
    problem = retention_days_problem(
        (getattr(settings, "DAGSTREAM", {}) or {}).get("RETENTION_DAYS")
    )
    if problem is not None:
        messages.append(
            Error(
                problem,
                hint="Set DAGSTREAM['RETENTION_DAYS'] to the days a finished run is kept, e.g. 30.",
                id="dagstream_app.E005",
            )
        )
    for problem in notify_problems(getattr(settings, "DAGSTREAM", {}) or {}):
        messages.append(
            Error(
                problem,
                hint="See the notification settings in docs/settings.md.",
                id="dagstream_app.E006",
            )
        )
    messages.extend(_check_login_url())
    messages.extend(_check_connections_per_thread())
    for alias, db in settings.DATABASES.items():
        options = db.get("OPTIONS", {})
        if db.get("ENGINE") == "django.db.backends.sqlite3" and (
            options.get("transaction_mode") != "IMMEDIATE"
        ):
            messages.append(
                Warning(
                    f"SQLite database {alias!r} does not use transaction_mode IMMEDIATE.",
                    hint="With an engine and a server writing at once, deferred transactions "
                    "fail with 'database is locked'. Set OPTIONS = {'transaction_mode': "
                    "'IMMEDIATE', 'timeout': 20, 'init_command': 'PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL'}.",
                    id="dagstream_app.W002",
                )
            )
    return messages


def _check_login_url() -> list[CheckMessage]:
    """W003: signed-out people are sent to LOGIN_URL; it must be a page of this site."""
    url = str(resolve_url(settings.LOGIN_URL))
    if "://" in url or url.startswith("//"):
        return []  # another site signs people in
    try:
        resolve(urlsplit(url).path)
    except Resolver404:
        return [
            Warning(
                f"LOGIN_URL {url!r} is not a page of this site: people who are signed out "
                "get a 404 instead of a sign-in page, and only staff can sign in (in admin).",
                hint="Add path('accounts/', include('dagstream_app.account_urls')) to your "
                "urls.py (or django.contrib.auth.urls with your own registration/login.html), "
                "or point LOGIN_URL at your sign-in page.",
                id="dagstream_app.W003",
            )
        ]
    return []


def _check_connections_per_thread() -> list[CheckMessage]:
    """W004: under ASGI, persistent connections stay with each request's thread."""
    if not getattr(settings, "ASGI_APPLICATION", None):
        return []
    messages: list[CheckMessage] = []
    for alias, db in settings.DATABASES.items():
        if db.get("ENGINE") == "django.db.backends.sqlite3" or db.get("CONN_MAX_AGE", 0) == 0:
            continue
        messages.append(
            Warning(
                f"Database {alias!r} keeps connections open (CONN_MAX_AGE="
                f"{db.get('CONN_MAX_AGE')}) under ASGI, where every request runs in a "
                "thread of its own: each thread keeps a connection, and a burst of requests "
                "uses up the server's connections.",
                hint="Use Django's connection pool instead: CONN_MAX_AGE = 0 and OPTIONS = "
                "{'pool': {'min_size': 1, 'max_size': 10}} (pip install 'psycopg[pool]'); "
                "or CONN_MAX_AGE = 0 alone (a connection per request). See docs/deployment.md.",
                id="dagstream_app.W004",
            )
        )
    return messages
