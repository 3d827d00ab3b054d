"""The README's five minutes, as a new user takes them: a fresh ``startproject``, only
the README's own blocks (read from README.md, so the README cannot drift), ``migrate``,
``runserver``, the README's engine script in its own process, and a gate decided by a
non-staff user who signs in at the README's sign-in page.
"""

from __future__ import annotations

import ast
import contextlib
import http.cookiejar
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.servers import ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
PROJECT = "yourproject"
# A block the README means to be applied starts with a comment naming its file and
# saying how: "# yourproject/urls.py — add at the end".
BLOCK = re.compile(r"```python\n# (?P<path>[\w/.]+) — (?P<how>[^\n]+)\n(?P<code>.*?)```", re.S)
DEADLINE = 60  # s, for each thing the server or the engine must do


def readme_blocks() -> list[tuple[str, str, str]]:
    return [(m["path"], m["how"], m["code"]) for m in BLOCK.finditer(README.read_text())]


def apply(project: Path, path: str, how: str, code: str) -> None:
    target = project / path
    if how == "add at the end":
        target.write_text(target.read_text() + "\n" + code)
    elif how in ("replace the file", "beside manage.py"):
        target.write_text(code)
    else:
        raise AssertionError(f"README block for {path} says {how!r}: tell the test what it means")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manage(project: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _env() -> dict[str, str]:
    # What a new user's shell has: no settings module, no test database of ours.
    skip = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DAGSTREAM_JSON", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if k not in skip}


class Browser:
    """A person's HTTP session: cookies, and Django's CSRF token from them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        with self.opener.open(self.base + path, timeout=DEADLINE) as response:
            return response.status, response.geturl(), response.read().decode()

    def post(self, path: str, data: dict[str, str], **headers: str) -> tuple[int, str]:
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        request = urllib.request.Request(
            self.base + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"X-CSRFToken": token or "", "Referer": self.base + path, **headers},
        )
        try:
            with self.opener.open(request, timeout=DEADLINE) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def wait_until(what: str, check: Any) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.2)  # polling a separate process's outcome, bounded by DEADLINE
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def fresh_project(tmp_path: Path) -> Iterator[Path]:
    subprocess.run(
        [str(BIN / "django-admin"), "startproject", PROJECT],
        cwd=tmp_path,
        check=True,
        timeout=DEADLINE,
        env=_env(),
    )
    yield tmp_path / PROJECT


def test_the_readme_takes_a_fresh_project_to_a_live_dag_with_a_gate_decided(
    fresh_project: Path,
) -> None:
    project = fresh_project
    blocks = readme_blocks()
    edits = [path for path, _, _ in blocks]
    assert edits == [
        f"{PROJECT}/settings.py",
        f"{PROJECT}/urls.py",
        f"{PROJECT}/asgi.py",
        "engine.py",
    ], "the README promises four edits"
    for path, how, code in blocks:
        apply(project, path, how, code)
    manage(project, "migrate", "-v", "0")
    check = manage(project, "check", "--fail-level", "WARNING")
    assert "System check identified no issues" in check
    # The README says: give people view_dag and decide_gate. Here, in code.
    manage(
        project,
        "shell",
        "-v",
        "0",
        "-c",
        "from django.contrib.auth.models import Permission, User\n"
        "u = User.objects.create_user('grace', password='pw-for-readme')\n"
        "u.user_permissions.set(Permission.objects.filter(codename__in="
        "['view_dag', 'decide_gate']))\n",
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=project,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine: subprocess.Popen[str] | None = None
    stack = contextlib.ExitStack()
    try:
        base = f"http://127.0.0.1:{port}"
        person = Browser(base)
        wait_until("the server", lambda: _answers(base))
        # Signed out, /dags/ sends her to the README's sign-in page, which exists.
        status, url, page = person.get("/dags/")
        assert status == 200 and "/accounts/login/?next=/dags/" in url and "Sign in" in page
        status, _ = person.post(
            "/accounts/login/?next=/dags/",
            {"username": "grace", "password": "pw-for-readme", "next": "/dags/"},
        )
        assert status == 200
        engine = subprocess.Popen(
            [sys.executable, "engine.py"],
            cwd=project,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The run appears on her list, waiting at its gate.
        wait_until("the run on the list", lambda: "etl-42" in person.get("/dags/")[2])
        detail = wait_until(
            "the gate on the page",
            lambda: (
                (p := person.get("/dags/etl-42/")[2]) and 'data-gate-status="pending"' in p and p
            ),
        )
        assert 'data-node-id="load" data-status="waiting"' in detail
        # Her session opens the run's live stream, as the page's script does.
        session = next(c.value for c in person.jar if c.name == "sessionid")
        live = stack.enter_context(
            connect(
                f"ws://127.0.0.1:{port}/ws/dags/etl-42/",
                origin=base,  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={session}"},
                open_timeout=DEADLINE,
            )
        )
        assert json.loads(live.recv(timeout=DEADLINE))["type"] == "snapshot"
        status, card = person.post(
            "/dags/etl-42/gates/load/decide/",
            {"decision": "approve", "feedback": "Go ahead."},
            **{"HX-Request": "true"},
        )
        assert status == 200 and 'data-gate-status="approved"' in card
        # ... and the decision reaches it live.
        wait_until("the decision on the stream", lambda: _next_type(live) == "gate_decided")
        out, err = engine.communicate(timeout=DEADLINE)
        assert engine.returncode == 0, err
        assert "decided: approve by grace" in out
        final = person.get("/dags/etl-42/")[2]
        assert 'data-status="completed"' in final and "Approved</strong> by grace" in final
    finally:
        stack.close()
        for process in (engine, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate(timeout=DEADLINE)
        if server.stderr is not None:
            server.stderr.close()


def _next_type(ws: ClientConnection) -> str:
    data = json.loads(ws.recv(timeout=DEADLINE))
    return str((data[-1] if isinstance(data, list) else data)["type"])


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/accounts/login/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_every_python_block_of_the_readme_is_one_the_adoption_test_applies() -> None:
    # A python block that is not applied would be a snippet nobody ran.
    assert README.read_text().count("```python\n") == len(readme_blocks()) == 4


DOC_BLOCK = re.compile(r"^(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```", re.S | re.M)
DOCS = sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_python_block_in_the_docs_compiles_and_its_imports_exist(doc: Path) -> None:
    """Docs' blocks are parts of an engine or a settings file: each must at least be
    Python as written (``await`` as inside an async engine), and what it imports from
    dagstream (and Django) must exist under that name."""
    blocks = list(DOC_BLOCK.finditer(doc.read_text()))
    for block in blocks:
        code = textwrap.dedent(block["code"])
        line = doc.read_text()[: block.start()].count("\n") + 1
        tree = compile(code, f"{doc.name}:{line}", "exec", ast.PyCF_ONLY_AST | TOP_AWAIT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in ("dagstream_app", "django", "channels"):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert (
                        alias.name == "*"
                        or hasattr(module, alias.name)
                        or _submodule(node.module, alias.name)
                    ), f"{doc.name}:{line}: {node.module} has no {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ("dagstream_app", "django", "channels"):
                        importlib.import_module(alias.name)


TOP_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _submodule(package: str, name: str) -> bool:
    try:
        importlib.import_module(f"{package}.{name}")
    except ImportError:
        return False
    return True
