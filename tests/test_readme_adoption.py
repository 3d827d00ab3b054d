"""The README's five minutes, as a new user takes them: a fresh ``startproject``, only
the README's own blocks (read from README.md, so the README cannot drift), its commands
(``migrate``, ``dagstream_grant``, ``runserver``), the README's engine script in its own
process, twice, and each time a gate decided by the non-staff user the README's grant
made, who signs in at the README's sign-in page.
"""

from __future__ import annotations

import json
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
    free_port,
    manage,
    readme_blocks,
    readme_commands,
    runserver,
    start_engine,
    start_project,
    stop,
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
    commands = readme_commands()
    assert [c[:3] for c in commands] == [
        ["python", "manage.py", "migrate"],
        ["python", "manage.py", "dagstream_grant"],
        ["python", "manage.py", "runserver"],
    ], "the README's commands: migrate, grant, serve"
    migrate, grant, serve = commands
    manage(project, *migrate[2:])
    check = manage(project, "check", "--fail-level", "WARNING")
    assert "System check identified no issues" in check
    # The README's grant, as typed: it makes grace and asks her password (one line here).
    assert "Created user 'grace'" in manage(project, *grant[2:], stdin="pw-for-readme\n")
    assert grant[3] == "grace"
    port = free_port()
    assert serve[3:] == []  # the test names the address: a free port here
    server = runserver(project, port)
    try:
        base = f"http://127.0.0.1:{port}"
        person = Browser(base)
        # Signed out, /dags/ sends her to the README's sign-in page, which exists.
        status, url, page = person.get("/dags/")
        assert status == 200 and "/accounts/login/?next=/dags/" in url and "Sign in" in page
        status, _ = person.post(
            "/accounts/login/?next=/dags/",
            {"username": "grace", "password": "pw-for-readme", "next": "/dags/"},
        )
        assert status == 200
        # Everyone runs the README's engine more than once: each run is a new one.
        first = _run_the_engine_and_decide(project, port, person)
        second = _run_the_engine_and_decide(project, port, person)
        assert first != second
    finally:
        stop(server)


def _run_the_engine_and_decide(project: Path, port: int, person: Browser) -> str:
    """``python engine.py``; grace approves its gate from its page. The run's id."""
    base = f"http://127.0.0.1:{port}"
    engine, dag_id = start_engine(project)
    try:
        # The run appears on her list, waiting at its gate.
        wait_until("the run on the list", lambda: dag_id in person.get("/dags/")[2])
        detail = wait_until(
            "the gate on the page",
            lambda: (
                (p := person.get(f"/dags/{dag_id}/")[2]) and 'data-gate-status="pending"' in p and p
            ),
        )
        assert 'data-node-id="load" data-status="waiting"' in detail
        # Her session opens the run's live stream, as the page's script does.
        session = next(c.value for c in person.jar if c.name == "sessionid")
        with connect(
            f"ws://127.0.0.1:{port}/ws/dags/{dag_id}/",
            origin=base,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={session}"},
            open_timeout=DEADLINE,
        ) as live:
            assert json.loads(live.recv(timeout=DEADLINE))["type"] == "snapshot"
            status, card = person.post(
                f"/dags/{dag_id}/gates/load/decide/",
                {"decision": "approve", "feedback": "Go ahead."},
                **{"HX-Request": "true"},
            )
            assert status == 200 and 'data-gate-status="approved"' in card
            # ... and the decision reaches it live.
            wait_until("the decision on the stream", lambda: _next_type(live) == "gate_decided")
        out, err = engine.communicate(timeout=DEADLINE)
        assert engine.returncode == 0, err
        assert "decided: approve by grace" in out
        final = person.get(f"/dags/{dag_id}/")[2]
        assert 'data-status="completed"' in final and "Approved</strong> by grace" in final
        return dag_id
    finally:
        stop(engine)


def _next_type(ws: ClientConnection) -> str:
    data = json.loads(ws.recv(timeout=DEADLINE))
    return str((data[-1] if isinstance(data, list) else data)["type"])


def test_every_python_block_of_the_readme_is_one_the_adoption_test_applies() -> None:
    # A python block that is not applied would be a snippet nobody ran.
    assert README.read_text().count("```python\n") == len(readme_blocks()) == 4
