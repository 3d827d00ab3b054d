"""Shared fixtures: users with permissions, tokens, and real daphne servers on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from tests.servers import (
    Server,
    redis_pair,
    release_database,
    require_redis,
    start_server,
)


@pytest.fixture(scope="session", autouse=True)
def release_everything(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """At the very end: this process's read threads and any other session let go of the
    test database, so that it can be dropped."""
    yield
    from dagstream_app import read_pool

    read_pool.close_read_connections()
    release_database(django_db_blocker, ours_too=True)


@pytest.fixture(scope="module")
def release_engine_connections(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Engine calls keep connections open in their worker thread (CONN_MAX_AGE):
    end them after the module, so the PostgreSQL test database can be dropped."""
    yield
    release_database(django_db_blocker)


@pytest.fixture(scope="session")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    """daphne on the embedded default (in-memory layer) against the test database."""
    with django_db_blocker.unblock():
        srv = start_server()
    yield srv
    srv.stop()
    release_database(django_db_blocker)


@pytest.fixture(scope="session")
def redis_servers(django_db_setup: Any, django_db_blocker: Any) -> Iterator[list[Server]]:
    """Two daphne processes sharing Redis and the test database (scale-out shape)."""
    with redis_pair(django_db_blocker) as servers:
        yield servers


@pytest.fixture(scope="module")
def celery_worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Any]:
    """A real ``celery worker`` (prefork, concurrency 2) of tests/celery_app.py on Redis."""
    from tests.celery_worker import configure_tests, forget_keys, start_worker

    require_redis()
    configure_tests()
    with django_db_blocker.unblock():
        worker = start_worker()
    yield worker
    worker.stop()
    forget_keys()
    release_database(django_db_blocker)


@pytest.fixture(scope="session")
def js_tools() -> None:
    """The JavaScript client's toolchain in tests/js, installed once per session."""
    from tests import jstools

    jstools.install()


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    counter = iter(range(1, 1_000_000))

    def make(*perms: str, username: str | None = None, password: str = "pw-for-tests") -> User:
        user = User.objects.create_user(
            username=username or f"user{next(counter)}", password=password
        )
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
        )
        return User.objects.get(pk=user.pk)  # fresh permission cache

    return make


@pytest.fixture
def make_token(db: Any) -> Callable[[User], str]:
    from dagstream_app import tokens

    def make(user: User) -> str:
        return tokens.create_api_token(user, "tests")[1]

    return make
