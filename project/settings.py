"""Settings of the example host project, read from the environment.

DATABASE_URL   default: SQLite file db.sqlite3 beside manage.py
DATABASE_POOL_SIZE  PostgreSQL connections one process may hold (default 30)
REDIS_URL      unset: in-memory channel layer (one process); set: channels-redis
DJANGO_SECRET_KEY, DJANGO_DEBUG (default off), DJANGO_ALLOWED_HOSTS
DJANGO_STATIC_ROOT (for collectstatic), DAGSTREAM_JSON (DAGSTREAM overrides)
EMAIL_BACKEND  default: the console (mail is printed); EMAIL_FILE_PATH for the file
               backend; EMAIL_HOST, EMAIL_PORT (SMTP); DEFAULT_FROM_EMAIL
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    # Local use: a random key kept beside the project (git-ignored), never a
    # well-known default.
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "dagstream_app",
    # The example project's own demo: its pipeline and the dagstream_demo commands.
    "project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of each request: Accept-Language (or the django_language cookie).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Engines and consumers make many short queries: keep connections open (a
    # reopen per event costs more than the event). A SQLite connection is a file
    # handle, so one per thread costs the database nothing.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    # Several writers (engine + server processes): wait for the lock, take it at
    # BEGIN, and let readers run beside the writer (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    }
else:
    # Under ASGI every request runs in a thread of its own, and persistent
    # connections (CONN_MAX_AGE > 0) stay with the thread: 50 concurrent requests
    # used up PostgreSQL's 100 connections. A pool per process bounds them
    # (DATABASE_POOL_SIZE, default 30); a request or read returns its connection
    # when it ends, and a burst waits for a free one (up to 20 s) instead of
    # opening more. Each process names its connections (pg_stat_activity).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "application_name": f"dagstream-{os.getpid()}",
        "pool": {
            "min_size": 1,
            "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "30")),
            "timeout": 20,
        },
    }

# Test databases: one per test run (runs may overlap), and for SQLite a file, so
# that the daphne processes the tests start share it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _test_db_name = str(Path(tempfile.gettempdir()) / f"dagstream-test-{os.getpid()}.sqlite3")
else:
    _test_db_name = f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
DATABASES["default"]["TEST"] = {"NAME": _test_db_name}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads time out after 5 s by default, the same as the
                # layer's blocking receive: give reads room (DESIGN §10).
                "hosts": [
                    {"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}
                ],
                "capacity": 1000,
                "expiry": 60,
                # Live processes renew their group memberships (dagstream_app.fanout):
                # a crashed one drops out of every group within five minutes.
                "group_expiry": 300,
                "prefix": os.environ.get("DAGSTREAM_REDIS_PREFIX", "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
    # The embedded default is one process on purpose (server + engine inside it).
    SILENCED_SYSTEM_CHECKS = ["dagstream_app.W001"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only for deployments that run collectstatic.
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
# daphne serves no static files; WhiteNoise does, straight from the apps'
# static folders, so nothing needs collectstatic for local use.
WHITENOISE_USE_FINDERS = True

LOGIN_REDIRECT_URL = "/dags/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
    # daphne's own INFO lines (the address it listens on) stay visible.
    "loggers": {"daphne.server": {"level": "INFO"}},
}

# Mail, for gate notifications (docs/gates.md): printed on the console unless the
# environment names a backend, e.g. EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
# with EMAIL_HOST and EMAIL_PORT, or ...filebased.EmailBackend with EMAIL_FILE_PATH.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
EMAIL_HOST = os.environ.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or "25")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "dagstream@localhost"

# dagstream's settings (see docs/settings.md); DAGSTREAM_JSON overrides keys
# from the environment, e.g. DAGSTREAM_JSON='{"REPLAY_WINDOW": 50000}'.
DAGSTREAM: dict[str, Any] = json.loads(os.environ.get("DAGSTREAM_JSON") or "{}")
