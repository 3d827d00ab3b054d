"""System checks: each id fires on its mistake, and only then."""

from __future__ import annotations

import copy
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.checks import Error, Warning, run_checks
from django.core.management import call_command
from django.test import modify_settings, override_settings

from dagstream_app.checks import check_setup
from tests.servers import ROOT, child_env

PROJECT_LAYERS = copy.deepcopy(settings.CHANNEL_LAYERS)
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]},
    }
}


def ids() -> list[str]:
    return sorted(m.id for m in run_checks() if (m.id or "").startswith("dagstream_app."))


@pytest.fixture(autouse=True)
def _clean_baseline():
    """Checks under a configuration with none of the mistakes, unless a test adds one."""
    with override_settings(CHANNEL_LAYERS=REDIS, DAGSTREAM={}):
        yield


def test_correct_setup_has_no_messages() -> None:
    assert ids() == []
    assert check_setup() == []


def test_e001_channels_missing() -> None:
    with modify_settings(INSTALLED_APPS={"remove": ["channels"]}):
        [message] = check_setup()
        assert ids() == ["dagstream_app.E001"]
    assert isinstance(message, Error)
    assert "'channels' is not in INSTALLED_APPS" in message.msg
    assert message.hint == "Add 'channels' to INSTALLED_APPS."


def test_host_served_by_uvicorn_needs_no_daphne_app() -> None:
    # daphne in INSTALLED_APPS only turns runserver into an ASGI server; a host run by
    # uvicorn (or hypercorn, or the daphne command) leaves it out.
    uvicorn_host = [app for app in settings.INSTALLED_APPS if app != "daphne"]
    assert len(uvicorn_host) == len(settings.INSTALLED_APPS) - 1
    with override_settings(INSTALLED_APPS=uvicorn_host):
        assert ids() == []
        assert check_setup() == []


def test_uvicorn_host_passes_manage_py_check() -> None:
    # In its own process: this one imported daphne, whose own check would still run.
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=child_env(DJANGO_SETTINGS_MODULE="tests.uvicorn_host_settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "daphne" not in done.stdout + done.stderr


def test_apps_listed_by_app_config_count_as_installed() -> None:
    apps = [
        {"channels": "channels.apps.ChannelsConfig", "daphne": "daphne.apps.DaphneConfig"}.get(
            app, app
        )
        for app in settings.INSTALLED_APPS
    ]
    with override_settings(INSTALLED_APPS=apps):
        assert ids() == []


def test_e003_no_channel_layer() -> None:
    for layers in ({}, {"other": IN_MEMORY["default"]}):
        with override_settings(CHANNEL_LAYERS=layers):
            [message] = check_setup()
            assert ids() == ["dagstream_app.E003"]
        assert isinstance(message, Error)
        assert "InMemoryChannelLayer" in (message.hint or "")
    with override_settings():
        del settings.CHANNEL_LAYERS
        assert ids() == ["dagstream_app.E003"]


def test_w001_in_memory_layer_with_debug_off() -> None:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, DEBUG=False):
        [message] = check_setup()
        assert ids() == ["dagstream_app.W001"]
    assert isinstance(message, Warning)
    assert "channels_redis" in (message.hint or "")


def test_w001_not_with_debug_on_or_redis() -> None:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, DEBUG=True):
        assert ids() == []
    with override_settings(CHANNEL_LAYERS=REDIS, DEBUG=False):
        assert ids() == []


def test_e004_unknown_dagstream_keys() -> None:
    with override_settings(DAGSTREAM={"REPLAY_WINDOW": 5, "REPLAY_WINDWO": 5, "colour": 1}):
        [message] = check_setup()
        assert ids() == ["dagstream_app.E004"]
    assert isinstance(message, Error)
    assert message.msg == "Unknown DAGSTREAM setting(s): REPLAY_WINDWO, colour."
    assert "REPLAY_WINDOW" in (message.hint or "")


def test_e004_not_for_known_keys() -> None:
    with override_settings(DAGSTREAM={"REPLAY_WINDOW": 5, "PERMISSION_HOOK": None}):
        assert ids() == []


def _databases(**options: object) -> dict[str, dict[str, object]]:
    databases = copy.deepcopy(settings.DATABASES)
    databases["extra"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if options:
        databases["extra"]["OPTIONS"] = options
    return databases


def test_w002_sqlite_without_immediate_transactions() -> None:
    # Django warns about overriding DATABASES; the check only reads the setting.
    with (
        pytest.warns(UserWarning, match="DATABASES"),
        override_settings(DATABASES=_databases(timeout=20)),
    ):
        messages = check_setup()
    assert [m.id for m in messages] == ["dagstream_app.W002"]
    assert isinstance(messages[0], Warning)
    assert "'extra'" in messages[0].msg
    assert "IMMEDIATE" in (messages[0].hint or "")


def test_w002_not_with_immediate_transactions() -> None:
    with (
        pytest.warns(UserWarning, match="DATABASES"),
        override_settings(DATABASES=_databases(transaction_mode="IMMEDIATE")),
    ):
        assert check_setup() == []


def test_example_project_passes_manage_py_check() -> None:
    # The project's own layer: in-memory (W001 silenced on purpose, one process)
    # or Redis when REDIS_URL is set.
    with override_settings(CHANNEL_LAYERS=PROJECT_LAYERS):
        out, err = StringIO(), StringIO()
        call_command("check", stdout=out, stderr=err)
    assert "dagstream_app." not in out.getvalue() + err.getvalue()


# ------------------------------------------------------------------ E005


@pytest.mark.parametrize("days", [0, -1, 0.0, float("nan"), "30", True])
def test_e005_when_retention_days_is_not_a_positive_number(days) -> None:
    with override_settings(DAGSTREAM={"RETENTION_DAYS": days}):
        [message] = [m for m in check_setup() if m.id == "dagstream_app.E005"]
    assert isinstance(message, Error)
    assert "RETENTION_DAYS must be" in message.msg


@pytest.mark.parametrize("days", [None, 1, 30, 0.5])
def test_e005_silent_for_a_positive_retention(days) -> None:
    with override_settings(DAGSTREAM={"RETENTION_DAYS": days}):
        assert "dagstream_app.E005" not in ids()


# ------------------------------------------------------------------ E006

ON = {"NOTIFY_GATES": True, "SITE_URL": "https://dags.example.com"}
HOOKS = {"NOTIFY_WEBHOOKS": ["https://hooks.example.com/x"], "NOTIFY_WEBHOOK_SECRET": "s" * 16}


@pytest.mark.parametrize(
    ("dagstream", "says"),
    [
        ({"NOTIFY_GATES": True}, "NOTIFY_GATES needs SITE_URL"),
        ({"NOTIFY_GATES": True, "SITE_URL": "dags.example.com"}, "NOTIFY_GATES needs SITE_URL"),
        ({"NOTIFY_GATES": "yes"}, "NOTIFY_GATES must be True or False"),
        ({**ON, "GATE_LINKS_DECIDE": 1}, "GATE_LINKS_DECIDE must be True or False"),
        ({**ON, "NOTIFY_POLL_SECONDS": 0}, "NOTIFY_POLL_SECONDS must be more than 0"),
        ({**ON, "NOTIFY_RETRY_SECONDS": "10"}, "NOTIFY_RETRY_SECONDS must be a number"),
        ({**ON, "GATE_LINK_SECONDS": -1}, "GATE_LINK_SECONDS must be more than 0"),
        ({**ON, "NOTIFY_MAX_ATTEMPTS": 0}, "NOTIFY_MAX_ATTEMPTS must be a whole number"),
        ({**ON, "NOTIFY_MAX_RECIPIENTS": 2.5}, "NOTIFY_MAX_RECIPIENTS must be a whole number"),
        ({**ON, "NOTIFY_WEBHOOKS": "https://hooks.example.com/x"}, "must be a list of URLs"),
        ({**ON, **HOOKS, "NOTIFY_WEBHOOKS": ["ftp://x.example.com/"]}, "is not an http://"),
        ({**ON, **HOOKS, "NOTIFY_WEBHOOKS": ["https://x.example.com/" + "a" * 500]}, "at most 500"),
        ({**ON, **HOOKS, "NOTIFY_WEBHOOK_SECRET": "short"}, "NOTIFY_WEBHOOK_SECRET must be"),
        ({**ON, "ESCALATE_AFTER_SECONDS": 60}, "ESCALATE_TO and NOTIFY_WEBHOOKS are empty"),
        ({**ON, "ESCALATE_AFTER_SECONDS": 0, "ESCALATE_TO": ["a"]}, "must be more than 0"),
        ({**ON, "ESCALATE_TO": "group:ops"}, "ESCALATE_TO must be a list"),
        ({**ON, "ESCALATE_TO": ["ops", ""]}, "ESCALATE_TO must hold usernames"),
    ],
)
def test_e006_when_a_notification_setting_cannot_be_used(
    dagstream: dict[str, object], says: str
) -> None:
    with override_settings(DAGSTREAM=dagstream):
        [message] = [m for m in check_setup() if m.id == "dagstream_app.E006"]
    assert isinstance(message, Error)
    assert says in message.msg


@pytest.mark.parametrize(
    "dagstream",
    [
        {},
        ON,
        {**ON, **HOOKS, "ESCALATE_AFTER_SECONDS": 3600, "ESCALATE_TO": ["ann", "group:ops"]},
        {**ON, "SITE_URL": "http://localhost:8000", "GATE_LINKS_DECIDE": True},
    ],
)
def test_e006_silent_for_usable_notification_settings(dagstream: dict[str, object]) -> None:
    with override_settings(DAGSTREAM=dagstream):
        assert "dagstream_app.E006" not in ids()


# ------------------------------------------------------------------ W004


def _with_extra(**database: object) -> dict[str, dict[str, object]]:
    databases = copy.deepcopy(settings.DATABASES)
    databases["extra"] = {"NAME": "extra", **database}
    return databases


def _checked(databases: dict[str, dict[str, object]], **extra_settings: object) -> list[str]:
    # Django warns about overriding DATABASES; the check only reads the setting.
    with (
        pytest.warns(UserWarning, match="DATABASES"),
        override_settings(DATABASES=databases, **extra_settings),
    ):
        return [m.id or "" for m in check_setup()]


PG = "django.db.backends.postgresql"


@pytest.mark.parametrize("max_age", [600, None])
def test_w004_when_postgres_keeps_a_connection_per_thread_under_asgi(max_age) -> None:
    databases = _with_extra(ENGINE=PG, CONN_MAX_AGE=max_age)
    with (
        pytest.warns(UserWarning, match="DATABASES"),
        override_settings(DATABASES=databases),
    ):
        [message] = [m for m in check_setup() if m.id == "dagstream_app.W004"]
    assert isinstance(message, Warning)
    assert "'extra'" in message.msg and "under ASGI" in message.msg
    assert "'pool'" in (message.hint or "")


@pytest.mark.parametrize(
    "database",
    [
        {"ENGINE": PG, "CONN_MAX_AGE": 0, "OPTIONS": {"pool": True}},
        {"ENGINE": PG, "CONN_MAX_AGE": 0},
        {"ENGINE": "django.db.backends.sqlite3", "CONN_MAX_AGE": 600},
    ],
)
def test_w004_silent_for_pooled_per_request_or_sqlite_connections(database) -> None:
    assert "dagstream_app.W004" not in _checked(_with_extra(**database))


def test_w004_silent_without_asgi() -> None:
    databases = _with_extra(ENGINE=PG, CONN_MAX_AGE=600)
    assert "dagstream_app.W004" not in _checked(databases, ASGI_APPLICATION=None)


# ------------------------------------------------------------------ W003


@pytest.mark.parametrize("login_url", ["/accounts/login/", "login", "/dags/"])
def test_w003_silent_when_login_url_is_a_page_here(login_url: str) -> None:
    with override_settings(LOGIN_URL=login_url):
        assert "dagstream_app.W003" not in ids()


@pytest.mark.parametrize("login_url", ["https://sso.example.com/login", "//sso.example.com/"])
def test_w003_silent_when_another_site_signs_people_in(login_url: str) -> None:
    with override_settings(LOGIN_URL=login_url):
        assert "dagstream_app.W003" not in ids()


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/nowhere/"])
def test_w003_when_login_url_does_not_resolve(login_url: str) -> None:
    # A fresh startproject with dagstream's urls but no sign-in route.
    with override_settings(ROOT_URLCONF="tests.urls_without_sign_in", LOGIN_URL=login_url):
        [message] = [m for m in check_setup() if m.id == "dagstream_app.W003"]
        assert ids() == ["dagstream_app.W003"]
    assert isinstance(message, Warning)
    assert f"LOGIN_URL {login_url!r} is not a page of this site" in message.msg
    assert "include('dagstream_app.account_urls')" in (message.hint or "")
