"""An engine in its own process through database outages.

``python -m tests.outage_engine MODE DAG_ID COUNT`` creates the DAG (nodes ``n0``
… ``n9``), prints ``ready`` and waits for a line on stdin (go); then it prints
one JSON line of what happened.

Modes:
- ``blip``: COUNT reports (awaited, five at a time so that flushes batch them,
  and ``nowait`` ones between), then ``complete``, while ``commands()`` polls
  the database; prints the seqs the calls returned, the errors raised, and how
  ``commands()`` ended;
- ``deadline``: one report, timed (the database is blocked: it raises); then,
  after another line on stdin, one more report (the database is back).

The pool's wait for a connection is cut to 1 s here (20 s in the example
project), so that an attempt returns soon after the database refuses.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from django.db import connections  # noqa: E402

from dagstream_app.engine import DagStream  # noqa: E402

STATUSES = ("running", "completed")


def _shorten_pool_wait() -> None:
    pool = connections["default"].settings_dict.get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["timeout"] = 1.0


async def _go() -> None:
    await asyncio.to_thread(sys.stdin.readline)


async def blip(engine: DagStream, count: int) -> dict[str, Any]:
    async def listen() -> str:
        try:
            async for _ in engine.commands():
                pass
        except Exception as exc:  # noqa: BLE001 - reported to the test
            return f"raised {type(exc).__name__}: {exc}"
        return "ended"

    listener = asyncio.ensure_future(listen())
    seqs: list[int] = []
    raised: list[str] = []
    for start in range(0, count, 5):
        calls = []
        for i in range(start, min(start + 5, count)):
            if i % 7 == 3:
                engine.nowait.node_state(f"n{i % 10}", STATUSES[i % 2], metrics={"i": i})
            else:
                calls.append(engine.node_state(f"n{i % 10}", STATUSES[i % 2], metrics={"i": i}))
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                raised.append(f"{type(result).__name__}: {result}")
            else:
                seqs.append(result)
        await asyncio.sleep(0.01)  # an engine doing work between reports
    try:
        seqs.append(await engine.complete({"reports": count}))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        raised.append(f"{type(exc).__name__}: {exc}")
    commands = await asyncio.wait_for(listener, 60)
    return {"seqs": seqs, "raised": raised, "commands": commands}


async def deadline(engine: DagStream) -> dict[str, Any]:
    began = time.monotonic()
    try:
        await engine.node_state("n1", "running")
        outcome = "written"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        outcome = type(exc).__name__
    seconds = time.monotonic() - began
    print(json.dumps({"outcome": outcome, "seconds": seconds}), flush=True)
    await _go()
    return {"later": await engine.node_state("n1", "completed")}


async def main(mode: str, dag_id: str, count: int) -> None:
    _shorten_pool_wait()
    engine = await DagStream.create(dag_id, nodes=[f"n{i}" for i in range(10)])
    print("ready", flush=True)
    await _go()
    if mode == "blip":
        result = await blip(engine, count)
    elif mode == "deadline":
        result = await deadline(engine)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    await engine.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
