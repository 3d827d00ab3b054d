"""The run list's live rows (``/ws/dags/?ids=a,b``): re-rendered, throttled, per connection."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from dagstream_app import broadcast, live, protocol, render
from dagstream_app.consumers.listing import ListConsumer
from dagstream_app.layer_messages import DagChangedMessage, DagDeletedMessage
from dagstream_app.permissions import visible_ids
from dagstream_app.read_pool import read

__all__ = ["DagIndexConsumer"]


class DagIndexConsumer(ListConsumer):
    """Live rows of the run list (``/ws/dags/?ids=a,b``), throttled per connection.

    Rows of the DAGs named in ``ids`` (the ones on the page) are re-rendered at
    most every ``THROTTLE`` seconds; a new run elsewhere raises a notice instead.
    Only runs the user may view count: each flush asks the permission rule.
    Changes come from the layer and, for engines it does not reach, from the
    hub's database tick.
    """

    PERMISSION = "view"
    THROTTLE = 0.5
    ids: frozenset[str] = frozenset()
    new_count = 0

    async def connect(self) -> None:
        if not await self.admit():
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        raw = query.get("ids", [""])[0]
        self.ids = frozenset(i for i in raw.split(",")[:200] if protocol.DAG_ID_RE.match(i))
        self.pending: dict[str, int] = {}
        self.new_runs: set[str] = set()
        self.seen_new: set[str] = set()
        self.rendered: dict[str, int] = {}  # the seq each row was last rendered at
        await self.subscribe(broadcast.INDEX_GROUP)
        self.ready = True

    async def dagstream_dag_changed(self, message: DagChangedMessage) -> None:
        if not self.ready:
            return
        dag_id: str = message["dag_id"]
        if dag_id in self.ids:
            if message["seq"] <= self.rendered.get(dag_id, 0):
                return  # the tick's copy of a change already shown
            self.pending[dag_id] = max(message["seq"], self.pending.get(dag_id, 0))
        elif message["seq"] <= 1 and dag_id not in self.seen_new:
            self.new_runs.add(dag_id)
        else:
            return
        if self.flush_task is None:
            self.flush_task = asyncio.ensure_future(self._flush_rows())

    async def dagstream_dag_deleted(self, message: DagDeletedMessage) -> None:
        dag_id: str = message["dag_id"]
        if self.ready and dag_id in self.ids:
            self.pending.pop(dag_id, None)
            await self.send(text_data=render.row_deleted_html(dag_id))

    async def _flush_rows(self) -> None:
        await asyncio.sleep(self.THROTTLE)  # the throttle window, not synchronisation
        self.flush_task = None
        pending, self.pending = self.pending, {}
        new, self.new_runs = self.new_runs, set()
        seen = await read(visible_ids)(self.user, {*pending, *new})
        counted = new & seen
        self.seen_new |= counted  # the layer and the tick both report a new run
        self.new_count += len(counted)
        rows = {dag_id: seq for dag_id, seq in pending.items() if dag_id in seen}
        self.rendered.update(rows)
        language = render.language_of(self.scope)
        html = await read(live.index_message)(rows, self.new_count, language)
        if html and self.ready:
            await self.send(text_data=html)
