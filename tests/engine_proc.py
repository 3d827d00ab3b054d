"""An engine in its own process, for tests: ``python -m tests.engine_proc MODE DAG_ID COUNT``.

It prints ``ready``, waits for a line on stdin (go), does its work, prints ``done``.

Modes:
- ``writes``: COUNT synchronous ``services.reports(dag_id).node_state`` calls (seq allocation under
  concurrency);
- ``stream``: COUNT events through the async engine API;
- ``chaos``: COUNT events whose channel-layer messages are dropped, duplicated
  or swapped on purpose (consumers must still deliver each once, in order);
- ``storm``: COUNT events flat out through ``stream.nowait`` (an event storm);
- ``idle``: reattaches, reports node ``n0`` running, prints ``streaming`` and then
  reports nothing more, its stream open (heartbeats only) until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from dagstream_app import broadcast, services  # noqa: E402
from dagstream_app.engine import DagStream  # noqa: E402

STATUSES = ("running", "completed")


def node_for(i: int) -> str:
    return f"n{i % 10}"


def writes(dag_id: str, count: int) -> None:
    for i in range(count):
        services.reports(dag_id).node_state(node_for(i), STATUSES[i % 2])


async def stream(dag_id: str, count: int) -> None:
    engine = await DagStream.open(dag_id)
    for i in range(count):
        if i % 50 == 49:
            await engine.cost(spent=i / 100)
        else:
            await engine.node_state(node_for(i), STATUSES[i % 2], metrics={"i": i})
    await engine.close()


async def chaos(dag_id: str, count: int) -> None:
    real_publish = broadcast.publish
    held: list[Any] = []

    def unreliable(dag: str, messages: Any, *, wake_engine: bool) -> None:
        seq = messages[-1]["seq"]
        if seq % 7 == 0:
            return  # dropped
        if seq % 11 == 0:
            held.append(messages)  # delivered after the next one (reordered)
            return
        real_publish(dag, messages, wake_engine=wake_engine)
        while held:
            real_publish(dag, held.pop(), wake_engine=wake_engine)
        if seq % 5 == 0:
            real_publish(dag, messages, wake_engine=wake_engine)  # duplicated

    broadcast.publish = unreliable  # type: ignore[assignment]
    engine = await DagStream.open(dag_id)
    for i in range(count):
        await engine.node_state(node_for(i), STATUSES[i % 2])
    await engine.close()


async def storm(dag_id: str, count: int) -> None:
    from dagstream_app.engine import BufferFull

    engine = await DagStream.open(dag_id)
    for i in range(count):
        try:
            engine.nowait.node_state(node_for(i), STATUSES[i % 2], metrics={"i": i})
        except BufferFull:
            await engine.flush()
            engine.nowait.node_state(node_for(i), STATUSES[i % 2], metrics={"i": i})
        if i % 100 == 99:
            await asyncio.sleep(0)  # let the flusher run, as an engine doing work would
    await engine.close()


async def idle(dag_id: str) -> None:
    engine = await DagStream.open(dag_id)
    await engine.node_state("n0", "running")
    print("streaming", flush=True)
    await asyncio.Event().wait()  # until the process is killed


def main() -> None:
    mode, dag_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "writes":
        writes(dag_id, count)
    elif mode == "stream":
        asyncio.run(stream(dag_id, count))
    elif mode == "chaos":
        asyncio.run(chaos(dag_id, count))
    elif mode == "storm":
        asyncio.run(storm(dag_id, count))
    elif mode == "idle":
        asyncio.run(idle(dag_id))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("done", flush=True)


if __name__ == "__main__":
    main()
