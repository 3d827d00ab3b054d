"""The engine API in-process: deltas, gates, commands, reattach."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from dagstream_app import broadcast, services
from dagstream_app.engine import DagStream

pytestmark = pytest.mark.django_db(transaction=True)


async def test_gate_returns_the_decision_made_elsewhere(make_user: Any) -> None:
    user = await database_sync_to_async(make_user)("view_dag", "decide_gate")
    stream = await DagStream.create("g1", nodes=["review"])
    subscription = await _subscribe("g1")
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "Ship it?"}))
    await _next_event(subscription, "human_gate_waiting")
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


async def test_reattached_engine_gets_the_pause_made_while_it_was_away(make_user: Any) -> None:
    user = await database_sync_to_async(make_user)("view_dag", "control_dag")
    first = await DagStream.create("away", nodes=["a"])
    await first.close()  # the engine goes away
    await database_sync_to_async(services.control)("away", "pause", actor=user)
    engine = await DagStream.open("away")
    assert [c.type for c in await engine.pending_commands()] == ["pause"]
    assert await engine.pending_commands() == []  # delivered once
    await engine.close()


async def test_gate_on_a_run_that_ends_meanwhile_raises_instead_of_waiting_forever() -> None:
    stream = await DagStream.create("ended", nodes=["review"])
    subscription = await _subscribe("ended")
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "Ship it?"}))
    await _next_event(subscription, "human_gate_waiting")
    await database_sync_to_async(services.fail)("ended", "the engine crashed elsewhere")
    with pytest.raises(services.Conflict, match="stays undecided"):
        await asyncio.wait_for(waiting, 10)
    await stream.close()


async def _subscribe(dag_id: str) -> tuple[Any, str, str]:
    """Join the DAG's group as a viewer would."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.group_name(dag_id), channel)
    return layer, channel, dag_id


async def _next_event(subscription: tuple[Any, str, str], kind: str) -> None:
    """Wait until an event of ``kind`` is published to the subscription, then leave."""
    layer, channel, dag_id = subscription
    try:
        while True:
            message = await asyncio.wait_for(layer.receive(channel), 10)
            if any(e["frame"].startswith(f'{{"type":"{kind}"') for e in message["events"]):
                return
    finally:
        await layer.group_discard(broadcast.group_name(dag_id), channel)
