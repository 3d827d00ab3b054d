"""Real processes for the tests: daphne servers and engines, and the environment they get.

Test modules import these from here (never from conftest or from each other).
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    """Skip without Redis locally; in CI a missing service is a failure."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI and does not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")


def database_url() -> str:
    """A URL for the test database, for processes the tests start."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DATABASE_URL=database_url(),
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONPATH=str(ROOT),
        # Test runs may overlap on one Redis: keep their groups apart.
        DAGSTREAM_REDIS_PREFIX=f"dagstream-test-{os.getpid()}",
    )
    env.update(extra)
    return env


@dataclass
class Server:
    """A daphne process serving the example project on 127.0.0.1."""

    process: subprocess.Popen[str]
    port: int
    log: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.drain is not None:
            self.drain.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def start_server(port: int = 0, *, access_log: Path | None = None, **env: str) -> Server:
    """Start daphne on ``port`` (0: any free one) and return once it listens.

    ``access_log``: a file for daphne's access log (request paths), else none is kept.
    """
    log_args = ["--access-log", str(access_log)] if access_log is not None else []
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-v",
            "1",
            *log_args,
            "project.asgi:application",
        ],
        cwd=ROOT,
        env=child_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    # daphne logs its address once it listens: read until then (bounded by EOF).
    for line in process.stderr:
        lines.append(line)
        match = re.search(r"Listening on TCP address 127\.0\.0\.1:(\d+)", line)
        if match:
            drain = threading.Thread(target=_drain, args=(process, lines), daemon=True)
            drain.start()
            return Server(process, int(match.group(1)), lines, drain)
    process.wait(timeout=10)
    raise RuntimeError("daphne did not start:\n" + "".join(lines))


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if os.environ.get("DAGSTREAM_SHOW_SERVER_LOG"):
            sys.stderr.write(f"[daphne {process.pid}] {line}")


def release_database(django_db_blocker: Any, *, ours_too: bool = False) -> None:
    """End the sessions that processes which have exited left on the test database, so
    that it can be dropped.

    Each process names its sessions ``dagstream-<pid>`` (the example project's
    settings). A session of a process still running is left alone: the session-wide
    servers keep pooled connections, and ending them under a live pool makes its next
    checkouts back off for seconds (psycopg_pool's retry after a failed check). This
    process's own other connections (its read threads, engine threads) are ended only
    with ``ours_too``, at the very end.
    """
    if connection.vendor != "postgresql":
        return
    own = connection.settings_dict.get("OPTIONS", {}).get("application_name", "")
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        ended = [
            backend
            for backend, name in cursor.fetchall()
            if (ours_too or name != own) and not _process_alive(name)
        ]
        for backend in ended:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])


def _process_alive(application_name: str) -> bool:
    """Whether the process that named its sessions ``application_name`` still runs
    (always False for this process's own name: ``ours_too`` asked to end them)."""
    own = connection.settings_dict.get("OPTIONS", {}).get("application_name", "")
    prefix, _, pid = application_name.rpartition("-")
    if prefix != "dagstream" or not pid.isdigit() or application_name == own:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def redis_pair(django_db_blocker: Any) -> Iterator[list[Server]]:
    """Two daphne processes sharing Redis and the test database (scale-out shape)."""
    require_redis()
    with django_db_blocker.unblock():
        servers = [start_server(REDIS_URL=REDIS_URL) for _ in range(2)]
    try:
        yield servers
    finally:
        for srv in servers:
            srv.stop()
        release_database(django_db_blocker)


@contextmanager
def configured_server(django_db_blocker: Any, **dagstream: Any) -> Iterator[Server]:
    """daphne on the in-memory layer with these ``DAGSTREAM`` settings, for one fixture."""
    with django_db_blocker.unblock():
        srv = start_server(DAGSTREAM_JSON=json.dumps(dagstream))
    try:
        yield srv
    finally:
        srv.stop()
        release_database(django_db_blocker)


class EngineProcess:
    """tests/engine_proc.py in a subprocess, started on ``go()``."""

    def __init__(self, mode: str, dag_id: str, count: int, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.engine_proc", mode, dag_id, str(count)],
            cwd=ROOT,
            env=child_env(**env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 120) -> None:
        assert self.process.stdout is not None
        out, _ = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0
        assert out.strip().endswith("done")


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid``, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def non_reader(server: Server, dag_id: str, token: str, query: str = "") -> socket.socket:
    """A WebSocket handshake by hand on ``dag_id``'s stream, then a client that reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    path = f"/ws/dags/{dag_id}/" + (f"?{query}" if query else "")
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {server.http}\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    sock.settimeout(15)
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock
