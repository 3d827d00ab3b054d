"""docs/client.md's Vite app, as a new user makes it, in Chromium against a fresh Django
project: a Vite + React + TypeScript dev server proxying to ``runserver``, a person
who signs in through the proxy, a live run of the README's engine, its gate approved;
and before the proxy is set up, a status that says nobody answers and where the fix is.

The project is the README's (tests/freshproject.py: its edits, ``migrate``, its
``dagstream_grant``). The app is what ``npm create vite -- --template react-ts`` makes
(its ``index.html`` and ``package.json``, written here) with the doc's three files as
they stand (``src/Run.tsx``, ``src/main.tsx``, ``vite.config.ts``; only the port of
Django's address changes), inside tests/js so that node finds Vite, React and the
client there, installed from the committed lock file (the ``js_tools`` fixture).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import page_errors, sync_chromium
from tests.freshproject import (
    DEADLINE,
    adopt,
    answers,
    free_port,
    manage,
    runserver,
    start_engine,
    start_project,
    stop,
    wait_until,
)
from tests.jstools import JS
from tests.servers import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("js_tools")]

WAIT = DEADLINE * 1000  # ms
DOC = ROOT / "docs" / "client.md"
# What create-vite's react-ts template writes (its icon file and styles left out).
INDEX_HTML = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" href="data:," />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>runs</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.tsx"></script>
  </body>
</html>
"""
PACKAGE_JSON = '{"name": "runs", "private": true, "version": "0.0.0", "type": "module"}\n'
DOC_DJANGO = "http://127.0.0.1:8000"  # where the doc's vite.config.ts says Django is


def _block(lang: str, marker: str) -> str:
    blocks = re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(), re.S | re.M)
    [found] = [b for b in blocks if marker in b]
    return str(found)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_chromium() as chromium:
        yield chromium


@pytest.fixture
def django(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The README's fresh project, its user grace made, served by runserver."""
    project = start_project(tmp_path)
    adopt(project, engine=True)
    manage(project, "migrate", "-v", "0")
    manage(project, "dagstream_grant", "grace", "--create", stdin="pw-for-vite-app\n")
    port = free_port()
    server = runserver(project, port)
    yield project, port
    stop(server)


@contextmanager
def _vite(config: str) -> Iterator[str]:
    """The doc's app with ``config`` as its vite.config.ts, on Vite's dev server; its
    address."""
    app = JS / "build" / f"vite-app-{uuid.uuid4().hex[:8]}"
    (app / "src").mkdir(parents=True)
    try:
        (app / "index.html").write_text(INDEX_HTML)
        (app / "package.json").write_text(PACKAGE_JSON)
        (app / "src" / "Run.tsx").write_text(_block("tsx", "export function Run("))
        (app / "src" / "main.tsx").write_text(_block("tsx", "createRoot("))
        (app / "vite.config.ts").write_text(config)
        port = free_port()
        dev = ["node", str(JS / "node_modules" / "vite" / "bin" / "vite.js")]  # npm run dev
        where = ["--host", "127.0.0.1", "--port", str(port), "--strictPort"]
        vite = subprocess.Popen(
            [*dev, *where],
            cwd=app,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until("Vite's dev server", lambda: vite.poll() is not None or answers(base))
            assert vite.poll() is None, vite.communicate(timeout=DEADLINE)[1]
            yield base
        finally:
            stop(vite)
    finally:
        shutil.rmtree(app, ignore_errors=True)


@pytest.fixture
def vite_app(django: tuple[Path, int]) -> Iterator[str]:
    """The doc's Vite app, its proxy to the fresh project's runserver."""
    _, django_port = django
    config = _block("ts", "defineConfig(")
    assert DOC_DJANGO in config
    with _vite(config.replace(DOC_DJANGO, f"http://127.0.0.1:{django_port}")) as base:
        yield base


def test_the_docs_vite_app_shows_a_live_run_and_approves_its_gate(
    browser: Browser, django: tuple[Path, int], vite_app: str
) -> None:
    project, _ = django
    engine, dag_id = start_engine(project)
    context = browser.new_context()
    try:
        page = context.new_page()
        errors = page_errors(page)
        # Not signed in: the status says so, and where the fix is.
        page.goto(f"{vite_app}/?dag={dag_id}")
        status = page.get_by_role("status")
        expect(status).to_have_attribute("data-status", "closed", timeout=WAIT)
        expect(status).to_have_text(
            "Closed (4001): Not signed in: sign in to this site first "
            "(see docs/client.md#authentication)."
        )
        # She signs in on Django's page, through the proxy, and comes back to the run.
        page.goto(f"{vite_app}/accounts/login/?next=/%3Fdag%3D{dag_id}")
        page.locator("input[name=username]").fill("grace")
        page.locator("input[name=password]").fill("pw-for-vite-app")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{vite_app}/?dag={dag_id}", timeout=WAIT)
        expect(status).to_have_attribute("data-status", "open", timeout=WAIT)
        expect(status).to_have_text("Live")
        expect(page.get_by_role("heading", level=1)).to_have_text("etl: running")
        expect(page.locator('li[data-node="extract"]')).to_have_attribute(
            "data-status", "completed"
        )
        cancel = page.get_by_role("button", name="Cancel")
        expect(cancel).to_be_enabled()

        gate = page.get_by_role("region", name="Gate load")
        expect(gate.get_by_role("heading")).to_have_text("Load 1,200 rows?", timeout=WAIT)
        gate.get_by_role("button", name="Approve").click()
        out, err = engine.communicate(timeout=DEADLINE)
        assert engine.returncode == 0, err
        assert "decided: approve by grace" in out

        # Live to the end; an ended run cannot be cancelled.
        expect(page.get_by_role("heading", level=1)).to_have_text("etl: completed", timeout=WAIT)
        expect(page.locator('li[data-node="load"]')).to_have_attribute("data-status", "completed")
        expect(gate).to_have_count(0)
        expect(cancel).to_be_disabled()
        assert page.get_by_role("alert").count() == 0
        assert errors == [], "errors or warnings on the page"
    finally:
        context.close()
        stop(engine)


def test_without_the_proxy_the_status_says_nobody_answers_and_where_the_fix_is(
    browser: Browser,
) -> None:
    """The app before its vite.config.ts is edited (create-vite's own): its socket goes to
    Vite, which never answers a handshake it does not know. Not "Connecting…" for ever."""
    template = (
        'import { defineConfig } from "vite";\n'
        'import react from "@vitejs/plugin-react";\n\n'
        "export default defineConfig({\n  plugins: [react()],\n});\n"
    )
    with _vite(template) as base:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{base}/?dag=etl-42")
            status = page.get_by_role("status")
            expect(status).to_have_text("Connecting…")
            expect(status).to_have_attribute("data-status", "reconnecting", timeout=WAIT)
            # Between tries it reads "Disconnected (1006): <why>. Retrying in N s", while
            # it tries again "Reconnecting… (<why>)": the retry may come first on a slow run.
            why = (
                f"No answer from ws://127.0.0.1:{base.rsplit(':', 1)[1]}/ws/dags/etl-42/ in "
                "10 s: is dagstream served there? A dev server must proxy /ws/ to Django "
                "(see docs/client.md#authentication)."
            )
            expect(status).to_have_text(
                re.compile(
                    rf"^(Disconnected \(1006\): {re.escape(why)} Retrying in \d+ s"
                    rf"|Reconnecting… \({re.escape(why)}\))"
                ),
                timeout=WAIT,
            )
        finally:
            context.close()
