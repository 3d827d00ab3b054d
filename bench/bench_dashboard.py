"""Dashboard at scale: a 5,000-node DAG's page, and what one node update costs.

Run: ``.venv/bin/python bench/bench_dashboard.py`` (throwaway SQLite file; no
network). Prints the server-side render time of the whole detail page (median
of several), its parts (snapshot, layout, graph SVG), and for one ``node_state``
event the render time, the message size and how many elements it swaps. The
target: the page in under a second, and an update that swaps one graph element.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = Path(tempfile.mkdtemp()) / "bench-dashboard.sqlite3"
os.environ.update(
    DATABASE_URL=f"sqlite:///{DB}",
    DJANGO_SETTINGS_MODULE="project.settings",
    DJANGO_ALLOWED_HOSTS="testserver",
)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from dagstream_app import layout, live, render, services, state  # noqa: E402

NODES = int(os.environ.get("BENCH_NODES", "5000"))
WIDTH = 100  # nodes per layer
RUNS = 5
PASSWORD = "bench-password"


def build() -> str:
    rng = random.Random(7)
    ids = [f"step-{i:05d}" for i in range(NODES)]
    edges = []
    for i in range(WIDTH, NODES):
        layer_start = (i // WIDTH - 1) * WIDTH
        for parent in rng.sample(range(layer_start, layer_start + WIDTH), 2):
            edges.append((ids[parent], ids[i]))
    nodes = [{"id": node_id, "label": f"Task {node_id[5:]}"} for node_id in ids]
    services.create_dag("big", name="bench-5000", nodes=nodes, edges=edges, budget=100.0)
    for node_id in ids[: NODES // 3]:
        services.reports("big").node_state(node_id, "completed")
    return ids[NODES // 3]


def timed(fn, runs: int = RUNS) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def prepare() -> tuple[User, str]:
    """A fresh database with a user who may do everything and the big DAG ("big"):
    the user and the next node to update."""
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password=PASSWORD)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="dagstream_app"))
    print(f"building a {NODES}-node DAG ...", flush=True)
    return user, build()


def main() -> bool:
    user, next_node = prepare()
    client = Client()
    client.force_login(user)
    client.get("/dags/big/")  # warm up templates and imports

    page_s, response = timed(lambda: client.get("/dags/big/"))
    page = response.content  # type: ignore[attr-defined]
    snap_s, snap = timed(lambda: state.snapshot("big"))
    ids = [n.id for n in snap.nodes]  # type: ignore[attr-defined]
    pairs = [(e.src, e.dst) for e in snap.edges]  # type: ignore[attr-defined]
    layout_s, _ = timed(lambda: layout.compute(ids, pairs))
    graph_s, _ = timed(lambda: render.graph_html("big", snap.nodes, snap.edges))  # type: ignore[attr-defined]

    services.reports("big").node_state(next_node, "running")
    seq, frame = state.event_frames("big", 0)[-1]

    def render_update() -> str:
        live.cache.clear()
        return live.events_html("big", [(seq, frame)], (True, True))

    update_s, update = timed(render_update, runs=20)
    cached_s, _ = timed(lambda: live.cached_events_html("big", [(seq, frame)], (True, True)), 20)
    message = str(update)
    graph_swaps = re.findall(r'hx-swap-oob="innerHTML:#ns-[^"]+"', message)
    page_nodes = page.count(b'class="node ')

    print()
    print(f"detail page, {NODES} nodes, {len(pairs)} edges (median of {RUNS})")
    print(f"  full page render ........ {page_s * 1000:8.1f} ms   {len(page) / 1e6:6.2f} MB")
    print(f"    snapshot read ......... {snap_s * 1000:8.1f} ms")
    print(f"    layout (networkx) ..... {layout_s * 1000:8.1f} ms")
    print(f"    graph SVG ............. {graph_s * 1000:8.1f} ms")
    print(f"  node elements on page ... {page_nodes:8d}")
    print("one node_state update (median of 20)")
    print(f"  render, cold ............ {update_s * 1000:8.2f} ms   {len(message):6d} bytes")
    print(f"  render, cached .......... {cached_s * 1000:8.3f} ms")
    print(f"  graph elements swapped .. {len(graph_swaps):8d}")
    print("ratios")
    print(f"  page / update bytes ..... {len(page) / len(message):8.0f} x")
    print(f"  page / update time ...... {page_s / update_s:8.0f} x")
    verdict = "PASS" if page_s < 1.0 and len(graph_swaps) == 1 else "FAIL"
    print(f"target (page < 1 s, one graph element per update): {verdict}")
    return verdict == "PASS"


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
