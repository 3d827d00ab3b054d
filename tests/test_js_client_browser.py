"""The example React page (tests/js/example) in Chromium against real daphne, React 18 and 19.

The page is bundled with esbuild in the test, served from another origin (127.0.0.2)
by a small backend that asks daphne for tickets with a bearer token, and rendered in
strict mode. It shows live node states; a gate approved through the hook reaches the
engine; a server restart mid-run ends with every event applied exactly once.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from playwright.sync_api import Browser, Page, expect

from dagstream_app.engine import DagStream, GateDecision
from dagstream_app.models import Dag
from tests.browser import ServicesThread, page_errors, sync_chromium
from tests.jstools import node
from tests.servers import Server, start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("js_tools"),
]

WAIT = 20_000  # ms: events from this process reach daphne through its idle re-check
# Chromium's lines for attempts while the server is down on purpose.
OUTAGE_NOISE = re.compile(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|502")


class AppBackend(SimpleHTTPRequestHandler):
    """The React app's own server: its files, and ``POST /ticket/?dag=`` for tickets.

    It asks dagstream for a ticket with its bearer token, so the browser never holds
    the token (the flow docs/client.md recommends for apps on another origin).
    """

    server: AppServer

    def do_POST(self) -> None:
        url = urlparse(self.path)
        if url.path != "/ticket/":
            self.send_error(404)
            return
        dag_id = parse_qs(url.query).get("dag", [""])[0]
        request = urllib.request.Request(
            f"{self.server.dagstream}/dags/{dag_id}/ticket/",
            method="POST",
            headers={"Authorization": f"Bearer {self.server.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except OSError:  # dagstream is down: the client retries
            status, body = 502, b'{"code": "unavailable"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


class AppServer(ThreadingHTTPServer):
    dagstream = ""  # daphne's URL
    token = ""  # a dagstream API token, which only this backend holds

    @property
    def origin(self) -> str:
        return f"http://127.0.0.2:{self.server_address[1]}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module", params=["18", "19"], ids=lambda v: f"react{v}")
def page_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"react{request.param}")
    node("build-example.mjs", request.param, str(out))
    (out / "version").write_text(request.param)
    return out


@pytest.fixture
def app(page_dir: Path) -> Iterator[AppServer]:
    """The page's backend on 127.0.0.2: another origin than daphne's 127.0.0.1."""
    httpd = AppServer(("127.0.0.2", 0), partial(AppBackend, directory=str(page_dir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _start(app: AppServer, port: int = 0) -> Server:
    """daphne allowing tickets from the app's origin (on ``port``, 0: any)."""
    srv = start_server(port, DAGSTREAM_JSON=json.dumps({"ALLOWED_ORIGINS": [app.origin]}))
    app.dagstream = srv.http
    return srv


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], tuple[Page, list[str]]]]:
    contexts = []

    def make() -> tuple[Page, list[str]]:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        return page, page_errors(page)

    yield make
    for context in contexts:
        context.close()


def _engine_gate(dag_id: str, node_id: str, presentation: dict[str, Any]) -> GateDecision:
    """An engine (the engine API, on its own loop) waiting at a gate for a person."""

    async def wait() -> GateDecision:
        stream = await DagStream.open(dag_id)
        try:
            return await stream.gate(node_id, presentation)
        finally:
            await stream.close()
            await sync_to_async(connections.close_all)()  # the engine's, on asgiref's thread

    return asyncio.run(wait())


def _node(page: Page, node_id: str) -> Any:
    return page.locator(f'li[data-node="{node_id}"]')


def _seqs(page: Page) -> list[int]:
    seqs = page.locator("li[data-seq]").evaluate_all("items => items.map(e => e.dataset.seq)")
    return [int(s) for s in seqs]


def test_live_states_a_gate_and_a_restart_every_event_once(
    app: AppServer,
    page_dir: Path,
    new_page: Callable[[], tuple[Page, list[str]]],
    make_user: Any,
    make_token: Any,
) -> None:
    version = (page_dir / "version").read_text()
    user = make_user("view_dag", "decide_gate", "control_dag", username="rea")
    app.token = make_token(user)
    engine = ServicesThread()  # off the thread where Playwright runs its loop
    engine.create_dag(
        "react-1", name="react", nodes=[f"n{i}" for i in range(5)], edges=[("n0", "n1")]
    )
    report = partial(engine.reports("react-1").node_state)
    srv = _start(app)
    joined_at = Dag.objects.get(pk="react-1").last_seq
    try:
        page, errors = new_page()
        page.goto(f"{app.origin}/index.html?dag=react-1&server={srv.http}")
        expect(page.locator("html")).to_have_attribute("data-react", re.compile(rf"^{version}\."))
        status = page.get_by_role("status")
        expect(status).to_have_attribute("data-status", "open", timeout=WAIT)
        expect(page.get_by_role("heading", level=1)).to_have_text("react: running")
        assert page.evaluate("window.sockets") == 1  # strict mode's double mount: one socket

        # Live node states.
        report("n0", "running")
        report("n0", "completed", output={"rows": 3})
        engine.reports("react-1").edge_active("n0", "n1")
        report("n1", "running")
        expect(_node(page, "n0")).to_have_attribute("data-status", "completed", timeout=WAIT)
        expect(_node(page, "n1")).to_have_text("n1: running")

        # A gate, approved through the hook; the engine receives the decision.
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_engine_gate, "react-1", "n1", {"title": "Ship n1?"})
            gate = page.get_by_role("region", name="Gate n1")
            expect(gate.get_by_role("heading")).to_have_text("Ship n1?", timeout=WAIT)
            gate.get_by_role("button", name="Approve").click()
            decision = waiting.result(timeout=WAIT / 1000)
        assert (decision.decision, decision.decided_by) == ("approve", "rea")
        expect(gate).to_have_count(0)
        assert page.get_by_role("alert").count() == 0

        # The server restarts mid-run; the engine goes on meanwhile.
        port = srv.port
        srv.stop()
        expect(status).to_have_attribute("data-status", "reconnecting", timeout=WAIT)
        expect(status).to_contain_text("Disconnected")
        for i in range(2, 5):
            report(f"n{i}", "running")
            report(f"n{i}", "completed")
        engine.reports("react-1").cost(spent=1.5)
        srv = _start(app, port)
        expect(status).to_have_attribute("data-status", "open", timeout=30_000)
        report("n1", "completed")
        engine.reports("react-1").complete({"ok": True})
        expect(page.get_by_role("heading", level=1)).to_have_text("react: completed", timeout=WAIT)
        last = Dag.objects.get(pk="react-1").last_seq
        for i in range(5):
            expect(_node(page, f"n{i}")).to_have_attribute("data-status", "completed")
        # Every event after the first snapshot, once each, in order.
        assert _seqs(page) == list(range(joined_at + 1, last + 1))
        assert page.evaluate("window.sockets") >= 2  # it did reconnect
        noise = [e for e in errors if not OUTAGE_NOISE.search(e)]
        assert noise == [], "errors or warnings on the page"
    finally:
        srv.stop()
        engine.close()
