"""LangGraph benchmark: the same graphs with plain ``graph.ainvoke`` and with
``dagstream_app.langgraph.stream_graph``, in one run, and the ratio.

Run: ``.venv/bin/python bench/bench_langgraph.py`` (``make bench`` runs it too). It
uses a throwaway SQLite file (WAL, as the example project sets it up) and the
in-memory channel layer: the engine's side of the cost, reports written and
published, with nobody watching.

- a chain of 200 trivial nodes: 200 supersteps;
- a 100-way ``Send`` fan-out of trivial nodes and a join (100 nodes added at run time).

Each is timed ``BENCH_REPEAT`` times (default 5), alternating plain and streamed runs;
the medians are printed with their ratio (the target is at most 1.25). Beside them, the
floor: the rows one streamed run wrote (its events, nodes and edges) inserted again by a
bare ``sqlite3`` ``executemany`` in one transaction, and the ratio a streamer would reach
if writing those rows were all it cost and nothing overlapped. Compare the ratios, not
the absolute numbers: the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import operator
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_ingest import _setup_django

REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
STEPS = 200
WAYS = 100


class State(TypedDict, total=False):
    n: int
    items: Annotated[list[int], operator.add]


def _chain() -> Any:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)
    previous = START
    for i in range(STEPS):
        graph.add_node(f"s{i}", lambda s: {"n": s.get("n", 0) + 1})
        graph.add_edge(previous, f"s{i}")
        previous = f"s{i}"
    graph.add_edge(previous, END)
    return graph.compile()


def _fan_out() -> Any:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    graph = StateGraph(State)
    graph.add_node("plan", lambda s: {"n": WAYS})
    graph.add_node("work", lambda s: {"items": [s["n"]]})
    graph.add_node("join", lambda s: {"n": len(s["items"])})
    graph.add_edge(START, "plan")
    graph.add_conditional_edges(
        "plan", lambda s: [Send("work", {"n": i}) for i in range(s["n"])], ["work"]
    )
    graph.add_edge("work", "join")
    graph.add_edge("join", END)
    return graph.compile()


async def _timed(graph: Any, streamed: bool, number: int) -> float:
    from dagstream_app.langgraph import stream_graph

    config = {"recursion_limit": STEPS + 10}
    start = time.perf_counter()
    if streamed:
        await stream_graph(graph, {"n": 0}, config=config, dag_id=f"bench-lg-{number}")
    else:
        await graph.ainvoke({"n": 0}, config)
    return time.perf_counter() - start


def _floor(dag_id: str) -> float:
    """Seconds a bare ``executemany`` takes to write again the rows ``dag_id`` has."""
    import sqlite3

    from django.db import connection

    from dagstream_app.models import Edge, Event, Node

    raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    copies = []
    for model in (Event, Node, Edge):
        table = model._meta.db_table
        cursor = raw.execute(f'SELECT * FROM "{table}" WHERE dag_id = ?', (dag_id,))
        every = [c[0] for c in cursor.description]
        columns = [c for c in every if c != "id"]
        found = [dict(zip(every, row, strict=True)) for row in cursor]
        rows = [tuple(f"{dag_id}-again" if c == "dag_id" else r[c] for c in columns) for r in found]
        names, marks = ", ".join(f'"{c}"' for c in columns), ", ".join("?" * len(columns))
        copies.append((f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows))
    start = time.perf_counter()
    raw.execute("BEGIN IMMEDIATE")
    for sql, rows in copies:
        raw.executemany(sql, rows)
    raw.execute("COMMIT")
    elapsed = time.perf_counter() - start
    raw.close()
    return elapsed


async def _compare(name: str, graph: Any, counter: list[int]) -> None:
    plain: list[float] = []
    streamed: list[float] = []
    await _timed(graph, False, 0)  # warm up
    for _ in range(REPEAT):
        plain.append(await _timed(graph, False, 0))
        counter[0] += 1
        streamed.append(await _timed(graph, True, counter[0]))
    a, b = statistics.median(plain), statistics.median(streamed)
    print(f"{name:<34} plain {a * 1000:8.1f} ms   stream_graph {b * 1000:8.1f} ms   x{b / a:.2f}")
    from asgiref.sync import sync_to_async

    from dagstream_app.models import Event

    dag_id = f"bench-lg-{counter[0]}"
    rows = await sync_to_async(Event.objects.filter(dag_id=dag_id).count)()
    floor = await sync_to_async(_floor)(dag_id)
    print(
        f"{'':<34} floor: its {rows} events with its nodes and edges by bare executemany "
        f"{floor * 1000:.1f} ms, x{(a + floor) / a:.2f}"
    )


async def main() -> None:
    counter = [0]
    await _compare(f"chain of {STEPS} supersteps", _chain(), counter)
    await _compare(f"{WAYS}-way Send fan-out", _fan_out(), counter)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        _setup_django(f"sqlite:///{folder}/bench.sqlite3")
        print(f"LangGraph, medians of {REPEAT} runs each (SQLite, in-memory layer):")
        asyncio.run(main())
