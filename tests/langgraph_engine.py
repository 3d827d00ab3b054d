"""A LangGraph engine in its own process, for the restart test:
``python -m tests.langgraph_engine start|resume DAG_ID CHECKPOINTS``.

The graph is draft -> review (an ``interrupt``) -> publish, compiled with a database
checkpointer: a SQLite file when CHECKPOINTS is a path, PostgreSQL when it is a
``postgresql://`` URL. ``start`` runs it with ``stream_graph`` (it stops at the review
gate, where the test kills it); ``resume`` picks it up with ``resume_graph`` and prints
the final state as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402

from dagstream_app.langgraph import resume_graph, stream_graph  # noqa: E402
from tests.langgraph_graphs import review_graph  # noqa: E402


@asynccontextmanager
async def saver(where: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The checkpointer that outlives this process: PostgreSQL's or a SQLite file."""
    if where.startswith("postgresql://"):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(where) as pg:
            await pg.setup()
            yield pg
    else:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(where) as lite:
            yield lite


async def main(mode: str, dag_id: str, where: str) -> None:
    async with saver(where) as checkpoints:
        compiled = review_graph().compile(checkpointer=checkpoints)
        if mode == "start":
            await stream_graph(compiled, {"topic": "t"}, dag_id=dag_id)
            raise SystemExit("the run ended without stopping at its gate")
        _, output = await resume_graph(compiled, dag_id)
        print(json.dumps(output), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
