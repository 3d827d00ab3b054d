"""Database connections under ASGI: a burst of requests is served from a bounded pool.

The example project pools PostgreSQL connections (``DATABASE_POOL_SIZE`` a
process). Before, every request's thread kept a connection of its own for ten
minutes: 50 concurrent requests used up the server's 100. This test always runs
on PostgreSQL (the pool is PostgreSQL's), on a database of its own, in the
SQLite run of the suite too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.servers import ROOT, Server, child_env, start_server

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/dagstream")
POOL_SIZE = 4
REQUESTS = 100


def _admin_url() -> str:
    return urlsplit(POSTGRES_URL)._replace(path="/postgres").geturl()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database for this test alone; its URL."""
    name = f"dagstream_pool_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_admin_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL does not answer: {exc}")
    url = urlsplit(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=child_env(DATABASE_URL=url),
                check=True,
                timeout=120,
            )
            yield url
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _connections(url: str, server: Server) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [f"dagstream-{server.process.pid}"],
        ).fetchone()
    assert row is not None
    return int(row[0])


def _get(url: str) -> int:
    # A bearer token the server must look up: each request reads the database.
    request = urllib.request.Request(url, headers={"Authorization": "Bearer dgs_nosuchtoken"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_burst_of_requests_holds_no_more_connections_than_the_pool(
    postgres_database: str,
) -> None:
    server = start_server(DATABASE_URL=postgres_database, DATABASE_POOL_SIZE=str(POOL_SIZE))
    try:
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            statuses = list(pool.map(_get, [f"{server.http}/api/dags/"] * REQUESTS))
        assert statuses == [401] * REQUESTS  # every one answered, none with a 5xx
        held = _connections(postgres_database, server)
        assert 1 <= held <= POOL_SIZE, f"{held} connections held after the burst"
        # The server still answers (its pool gave every connection back).
        assert _get(f"{server.http}/api/dags/") == 401
    finally:
        server.stop()
