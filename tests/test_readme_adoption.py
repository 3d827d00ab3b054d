"""The README's five minutes, as a new user takes them: a fresh ``startproject``, only
the README's own blocks (read from README.md, so the README cannot drift), ``migrate``,
``runserver``, the README's engine script in its own process, and a gate decided by a
non-staff user who signs in at the README's sign-in page.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.freshproject import (
    DEADLINE,
    PROJECT,
    README,
    Browser,
    apply,
    env,
    free_port,
    manage,
    readme_blocks,
    start_project,
    wait_until,
)


@pytest.fixture
def fresh_project(tmp_path: Path) -> Iterator[Path]:
    yield start_project(tmp_path)


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
        env=env(project),
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
            env=env(project),
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
