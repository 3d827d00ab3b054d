"""The engine API in-process: deltas, gates, commands, reattach."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from dagstream_app import services
from dagstream_app.engine import DagStream
from dagstream_app.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


async def test_gate_returns_the_decision_made_elsewhere(make_user: Any) -> None:
    user = await database_sync_to_async(make_user)("view_dag", "decide_gate")
    stream = await DagStream.create("g1", nodes=["review"])
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "Ship it?"}))
    while not await database_sync_to_async(
        Event.objects.filter(dag_id="g1", type="human_gate_waiting").exists
    )():
        await asyncio.sleep(0)  # let the gate open; the loop ends once the row exists
    await database_sync_to_async(services.decide_gate)(
        "g1", "review", "modify", feedback="shorter", actor=user
    )
    decision = await asyncio.wait_for(waiting, 10)
    assert (decision.decision, decision.feedback, decision.decided_by) == (
        "modify",
        "shorter",
        user.username,
    )
    await stream.close()


async def test_commands_arrive_once_in_order(make_user: Any) -> None:
    user = await database_sync_to_async(make_user)("view_dag", "control_dag")
    stream = await DagStream.create("c1", nodes=["a"])
    for action in ("pause", "resume", "cancel"):
        await database_sync_to_async(services.control)("c1", action, actor=user)
    seen = []
    async for command in stream.commands():
        seen.append(command.type)
        if command.type == "cancel":
            await stream.set_state("cancelled")
    assert seen == ["pause", "resume", "cancel"]
    await stream.close()
