"""A fresh ``django-admin startproject``, as a new user has it, for the tests that apply
the README's and the docs' blocks to one (tests/test_readme_adoption.py,
tests/test_doc_snippets.py).

Its processes get a new user's shell: no settings module, no test database of ours.
The one thing they get from us is this checkout's ``dagstream_app`` (what ``pip install``
of this checkout would give them), so the tests run the code beside them.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
PROJECT = "yourproject"
# A block the README means to be applied starts with a comment naming its file and
# saying how: "# yourproject/urls.py — add at the end".
BLOCK = re.compile(r"```python\n# (?P<path>[\w/.]+) — (?P<how>[^\n]+)\n(?P<code>.*?)```", re.S)
DEADLINE = 60  # s, for each thing a server, an engine or a command must do


def readme_blocks() -> list[tuple[str, str, str]]:
    return [(m["path"], m["how"], m["code"]) for m in BLOCK.finditer(README.read_text())]


def readme_commands() -> list[list[str]]:
    """The commands of the README's ``sh`` block that runs ``manage.py``, as typed."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    [block] = [b for b in blocks if "manage.py dagstream_grant" in b]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def apply(project: Path, path: str, how: str, code: str) -> None:
    target = project / path
    if how == "add at the end":
        target.write_text(target.read_text() + "\n" + code)
    elif how in ("replace the file", "beside manage.py"):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
    else:
        raise AssertionError(f"a block for {path} says {how!r}: tell the test what it means")


def start_project(where: Path) -> Path:
    """``django-admin startproject yourproject`` in ``where``; the project's directory."""
    checkout = where / "checkout"  # what pip install of this checkout would give
    checkout.mkdir(exist_ok=True)
    (checkout / "dagstream_app").symlink_to(ROOT / "dagstream_app")
    subprocess.run(
        [str(BIN / "django-admin"), "startproject", PROJECT],
        cwd=where,
        check=True,
        timeout=DEADLINE,
        env=env(where / PROJECT),
    )
    return where / PROJECT


def adopt(project: Path, *, engine: bool = False) -> None:
    """The README's three edits to the project (and with ``engine``, its engine.py)."""
    for path, how, code in readme_blocks():
        if path.startswith(f"{PROJECT}/") or engine:
            apply(project, path, how, code)


def env(project: Path, **extra: str) -> dict[str, str]:
    """What a new user's shell has: no settings module, no test database of ours."""
    skip = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DAGSTREAM_JSON", "PYTHONPATH")
    environment = {k: v for k, v in os.environ.items() if k not in skip}
    environment["PYTHONPATH"] = str(project.parent / "checkout")
    environment.update(extra)
    return environment


def manage(project: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=env(project),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def runserver(project: Path, port: int) -> subprocess.Popen[str]:
    """``python manage.py runserver`` on ``port``, until :func:`stop`; up once it answers."""
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=project,
        env=env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_until("the server", lambda: answers(f"http://127.0.0.1:{port}/accounts/login/"))
    return server


def start_engine(project: Path) -> tuple[subprocess.Popen[str], str]:
    """``python engine.py`` (the README's); the process, and the run's id it printed."""
    engine = subprocess.Popen(
        [sys.executable, "engine.py"],
        cwd=project,
        env=env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert engine.stdout is not None and engine.stderr is not None
    said = engine.stdout.readline()  # "<dag_id> waits at its gate: /dags/<dag_id>/"
    found = re.fullmatch(r"(etl-[0-9a-f]{8}) waits at its gate: /dags/\1/\n", said)
    if found is None:
        engine.kill()
        pytest.fail(f"engine.py said {said!r}: {engine.communicate(timeout=DEADLINE)[1]}")
    return engine, found[1]


def stop(process: subprocess.Popen[str]) -> None:
    """End ``process`` if it still runs."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=DEADLINE)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
