"""The dashboard at 1,000 to 50,000 nodes: flat layers, and one fan-out (issue 18.3, 18.6).

Run: ``.venv/bin/python bench/bench_dashboard.py`` (throwaway SQLite file; no network).
Add ``--browser`` for the time to usable in Chromium (one daphne on loopback,
Debian's Chromium through Playwright; see ``bench_graph_browser.py``). ``BENCH_SIZES``
(default ``1000,5000,20000,50000``) picks the sizes, ``BENCH_SHAPES`` (default
``fan-out,layers``) the shapes (the target is the fan-out's).

Two shapes of run, each at every size, a third of its nodes done, its events in the log
as an engine reports them:

- **layers**: 100 nodes a layer, each with two parents in the layer before (no fan-out);
- **fan-out**: ``split`` -> N ``chunk-*`` tasks -> ``join`` (a Celery group, a map).

For each: the detail page's bytes and server time (median of a few warm loads, and the
first load, which works the grouping out), the history page's (at the latest event, and
its bytes and server time at an event a third of the way, the first load of it apart:
it works out the fan-out's checkpoints up to that event), the bytes
of one live ``node_state`` update, and (``--browser``) the time until the page is usable: loaded,
laid out, zoom and pan attached. Every figure stands beside the 1,000-node figure of
the same shape in the same run (the ratio). The target (issue 18.3): the 50,000-task
fan-out's page at most 1.5 MB and within 3x the 1,000-task page's server time and
time to usable; its history page, at the latest event and at the earlier one, bounded the
same way.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = Path(tempfile.mkdtemp()) / "bench-dashboard.sqlite3"
os.environ.update(
    DATABASE_URL=f"sqlite:///{DB}",
    DJANGO_SETTINGS_MODULE="project.settings",
    DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from dagstream_app import live, state  # noqa: E402
from dagstream_app.engine import DagStream  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,5000,20000,50000").split(",")]
SHAPES = tuple(os.environ.get("BENCH_SHAPES", "fan-out,layers").split(","))
WIDTH = 100  # nodes per layer
RUNS = 3
PASSWORD = "bench-password"
PAGE_LIMIT = 1_500_000
BROWSER_TIMEOUT = 120_000  # ms; a page not usable by then has no figure
SHOT = "fan-out-50000"  # its screenshot: docs/img/fan-out-50000.png


def shape(kind: str, n: int) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    """The nodes and edges of one run of ``kind`` with ``n`` nodes."""
    if kind == "fan-out":
        chunks = [f"chunk-{i:05d}" for i in range(n - 2)]
        ids = ["split", *chunks, "join"]
        edges = [("split", c) for c in chunks] + [(c, "join") for c in chunks]
    else:
        rng = random.Random(7)
        ids = [f"step-{i:05d}" for i in range(n)]
        edges = []
        for i in range(WIDTH, n):
            layer = (i // WIDTH - 1) * WIDTH
            edges += [(ids[p], ids[i]) for p in rng.sample(range(layer, layer + WIDTH), 2)]
    return [{"id": i, "label": f"Task {i}"} for i in ids], edges


async def build(dag_id: str, kind: str, n: int) -> str:
    """The run, with a third of its nodes reported done (as an engine does): the next node."""
    nodes, edges = shape(kind, n)
    stream = await DagStream.create(dag_id, name=f"{kind}-{n}", nodes=nodes, edges=edges)
    ids = [node["id"] for node in nodes]
    for i, node_id in enumerate(ids[: n // 3]):
        stream.nowait.node_state(node_id, "running")
        # A few fail (every 997th), as real fan-outs' tasks do.
        stream.nowait.node_state(node_id, "failed" if i % 997 == 996 else "completed")
        if i % 2_000 == 1_999:  # within the engine's buffer (ENGINE_BUFFER)
            await stream.flush()
    await stream.flush()
    await stream.close()
    return ids[n // 3]


def timed(fn, runs: int = RUNS) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def measure(client: Client, dag_id: str, next_node: str) -> dict[str, float]:
    """The server-side figures of one run."""
    live.cache.clear()
    start = time.perf_counter()
    client.get(f"/dags/{dag_id}/")
    first = time.perf_counter() - start
    page_s, page = timed(lambda: client.get(f"/dags/{dag_id}/").content)
    history_s, history = timed(lambda: client.get(f"/dags/{dag_id}/history/").content)
    # History at an earlier event (a third of the way).
    earlier = f"/dags/{dag_id}/history/?seq={state.dag(dag_id).last_seq // 3}"  # type: ignore[union-attr]
    start = time.perf_counter()
    client.get(earlier)  # the first: works out the members' checkpoints up to the event
    earlier_first = time.perf_counter() - start
    earlier_s, earlier_page = timed(lambda: client.get(earlier).content)
    asyncio.run(_report(dag_id, next_node))
    seq, frame = state.event_frames(dag_id, 0)[-1]
    live.cache.clear()
    live.message_cache.clear()
    update = live.events_html(dag_id, [(seq, frame)], (True, True))
    return {
        "page bytes": len(page),  # type: ignore[arg-type]
        "page s": page_s,
        "first load s": first,
        "history bytes": len(history),  # type: ignore[arg-type]
        "history s": history_s,
        "earlier history bytes": len(earlier_page),  # type: ignore[arg-type]
        "earlier history s": earlier_s,
        "earlier first s": earlier_first,
        "update bytes": len(update.encode()),
    }


async def _report(dag_id: str, node_id: str) -> None:
    stream = await DagStream.open(dag_id)
    await stream.node_state(node_id, "running")
    await stream.close()


def sign_in(page: Any, http: str, user: User) -> None:
    """Sign ``user`` in on a Playwright ``page`` of the server at ``http``."""
    page.goto(f"{http}/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dags/")


def browser_usable(user: User, dag_ids: list[str]) -> dict[str, float]:
    """Seconds from navigation to the graph laid out with zoom attached, per run (median)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_options
    from tests.servers import start_server

    next_frame = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    server = start_server()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    usable: dict[str, float] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(**chromium_options())
            context = browser.new_context(viewport={"width": 1440, "height": 960})
            sign_in(context.new_page(), server.http, user)
            failed: set[str] = set()
            for dag_id in dag_ids:
                kind = dag_id.rsplit("-", 1)[0]
                if kind in failed:  # a smaller run of this shape was not usable in time
                    usable[dag_id] = math.nan
                    continue
                page = context.new_page()  # none left loading from a run that timed out
                samples = []
                for _ in range(RUNS):
                    start = time.perf_counter()
                    try:
                        page.goto(f"{server.http}/dags/{dag_id}/", wait_until="commit")
                        page.wait_for_selector("#graph[data-zoom]", timeout=BROWSER_TIMEOUT)
                        page.evaluate(next_frame)
                    except PlaywrightError:  # too big to load in time: no figure
                        samples.append(math.nan)
                        failed.add(kind)
                        break
                    samples.append(time.perf_counter() - start)
                usable[dag_id] = statistics.median(samples)
                if dag_id == SHOT:
                    # The run with its group opened: members listed, failures first.
                    page.locator(".graph .node.group").first.click()
                    page.locator("#node-panel .node-row").first.wait_for()
                    page.screenshot(path=str(ROOT / "docs/img" / f"{SHOT}.png"))
                page.close()
            browser.close()
    finally:
        server.stop()
    return usable


def make_user() -> User:
    """A fresh database, and a user who may do everything."""
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password=PASSWORD)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="dagstream_app"))
    return user


# bench_graph_browser.py's run: BENCH_NODES in layers, as "big".
NODES = int(os.environ.get("BENCH_NODES", "5000"))


def prepare() -> tuple[User, str]:
    """A fresh database, the user, and the layered run "big": the user and its next node."""
    user = make_user()
    print(f"building a {NODES}-node DAG ...", flush=True)
    return user, asyncio.run(build("big", "layers", NODES))


def main() -> bool:
    user = make_user()
    client = Client()
    client.force_login(user)
    # Templates, imports and caches warmed first: the first run measured is no slower for it.
    asyncio.run(build("warm-up", "fan-out", 100))
    for url in ("/dags/warm-up/", "/dags/warm-up/history/") * 3:
        client.get(url)
    results: dict[tuple[str, int], dict[str, float]] = {}
    for kind in SHAPES:
        for n in SIZES:
            dag_id = f"{kind}-{n}"
            print(f"building {dag_id} ...", flush=True)
            next_node = asyncio.run(build(dag_id, kind, n))
            results[(kind, n)] = measure(client, dag_id, next_node)
    if "--browser" in sys.argv:
        usable = browser_usable(user, [f"{k}-{n}" for k in SHAPES for n in SIZES])
        for (kind, n), figures in results.items():
            figures["usable s"] = usable[f"{kind}-{n}"]
    return report(results)


def report(results: dict[tuple[str, int], dict[str, float]]) -> bool:
    """The table, each figure beside its 1,000-node (smallest size) figure: the ratio."""
    columns = list(next(iter(results.values())))
    print()
    for kind in SHAPES:
        base = results[(kind, SIZES[0])]
        print(f"{kind}: each figure (x its {SIZES[0]:,}-node figure)")
        print("  nodes   " + "".join(f"{c:>24}" for c in columns))
        for n in SIZES:
            row = results[(kind, n)]
            cells = []
            for c in columns:
                value = f"{row[c] / 1e3:,.0f} kB" if "bytes" in c else f"{row[c] * 1e3:,.0f} ms"
                ratio = f"({row[c] / base[c]:.1f}x)"
                cells.append(("timed out" if math.isnan(row[c]) else f"{value} {ratio}").rjust(24))
            print(f"  {n:>6,} " + "".join(cells))
    big = results[("fan-out", SIZES[-1])]
    small = results[("fan-out", SIZES[0])]
    ok = (
        big["page bytes"] <= PAGE_LIMIT
        and big["history bytes"] <= PAGE_LIMIT
        and big["page s"] <= 3 * small["page s"]
        and big["history s"] <= 3 * small["history s"]
        and big["earlier history bytes"] <= PAGE_LIMIT
        and big["earlier history s"] <= 3 * small["earlier history s"]
        and ("usable s" not in big or big["usable s"] <= 3 * small["usable s"])
    )
    verdict = "PASS" if ok else "FAIL"
    print(
        f"target (the {SIZES[-1]:,}-task fan-out: page, history and earlier history <= 1.5 MB,"
        f" their server times and time to usable <= 3x the {SIZES[0]:,}-task one's): {verdict}"
    )
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
