"""The engine API in-process: deltas, gates, commands, reattach."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from dagstream_app import broadcast, services, state
from dagstream_app.engine import BufferFull, DagStream
from dagstream_app.models import Event, Node

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
    await database_sync_to_async(services.reports("ended").fail)("the engine crashed elsewhere")
    with pytest.raises(services.Conflict, match="was closed undecided"):
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


# ------------------------------------------------------- batched reports


async def test_concurrent_reports_share_flushes_and_keep_their_order() -> None:
    stream = await DagStream.create("batch-1", nodes=[f"n{i}" for i in range(10)])
    calls = 0
    real_apply = services.apply

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_apply(*args, **kwargs)

    services.apply = counting  # type: ignore[assignment]
    try:
        seqs = await asyncio.gather(
            *(stream.node_state(f"n{i % 10}", "running", metrics={"i": i}) for i in range(200))
        )
    finally:
        services.apply = real_apply  # type: ignore[assignment]
    assert seqs == list(range(2, 202))  # in call order, each with its own seq
    assert calls < 20  # a handful of transactions, not 200
    rows = await database_sync_to_async(
        lambda: list(
            Event.objects.filter(dag_id="batch-1", seq__gt=1).values_list("payload", flat=True)
        )
    )()
    assert [row["metrics"]["i"] for row in rows] == list(range(200))
    await stream.close()


async def test_a_refused_report_raises_for_the_call_that_made_it_only() -> None:
    stream = await DagStream.create("batch-2", nodes=["a"])
    good = asyncio.ensure_future(stream.node_state("a", "running"))
    bad = asyncio.ensure_future(stream.node_state("ghost", "running"))
    also_good = asyncio.ensure_future(stream.node_state("a", "completed"))
    assert await good == 2
    with pytest.raises(services.InvalidDelta, match="Unknown node 'ghost'"):
        await bad
    assert await also_good == 3
    await stream.close()


async def test_nowait_reports_are_written_and_their_refusals_raised_later() -> None:
    stream = await DagStream.create("nowait-1", nodes=["a", "b"])
    assert stream.nowait.node_state("a", "running") is None
    stream.nowait.node_state("ghost", "running")  # refused when written
    stream.nowait.node_state("b", "running")  # the others still go in
    with pytest.raises(services.InvalidDelta, match="Unknown node 'ghost'"):
        await stream.flush()
    statuses = await database_sync_to_async(
        lambda: dict(Node.objects.filter(dag_id="nowait-1").values_list("node_id", "status"))
    )()
    assert statuses == {"a": "running", "b": "running"}
    # A refusal not yet raised comes out of the next call, or of close().
    stream.nowait.node_state("ghost", "completed")
    with pytest.raises(services.InvalidDelta):
        await stream.close()


async def test_a_flush_window_gathers_nowait_reports_and_awaited_ones_go_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = await DagStream.create("window-1", nodes=["a", "b"], edges=[("a", "b")])
    stream.flush_window = 600.0  # nothing but a hurry can end it within the test
    flushes: list[int] = []
    apply = services.apply
    monkeypatch.setattr(
        services,
        "apply",
        lambda dag_id, deltas, **kw: flushes.append(len(deltas)) or apply(dag_id, deltas, **kw),
    )
    await stream.node_state("a", "running")  # a flush starts: the window with it
    stream.nowait.edge_active("a", "b")
    stream.nowait.node_state("b", "running")
    for _ in range(5):
        await asyncio.sleep(0)  # the flusher runs, and waits out its window
    assert flushes == [1]
    seq = await asyncio.wait_for(stream.node_state("b", "completed"), 10)  # hurries it
    assert flushes == [1, 3]  # one transaction
    types = await database_sync_to_async(
        lambda: list(Event.objects.filter(dag_id="window-1", seq__gt=seq - 3).values_list("type"))
    )()
    assert types == [("edge_active",), ("node_state",), ("node_state",)]  # in order
    stream.nowait.node_state("a", "completed")
    await asyncio.wait_for(stream.close(), 10)  # close() (flush()) hurries it too
    assert flushes == [1, 3, 1]


async def test_nowait_past_the_buffer_is_refused_until_the_database_catches_up(
    settings: Any,
) -> None:
    settings.DAGSTREAM = {"ENGINE_BUFFER": 5}
    stream = await DagStream.create("nowait-2", nodes=["a"])
    for _ in range(5):
        stream.nowait.node_state("a", "running")
    with pytest.raises(BufferFull, match="5 reports"):
        stream.nowait.node_state("a", "running")
    await stream.flush()
    stream.nowait.node_state("a", "completed")  # room again
    await stream.close()


async def test_a_flush_brings_back_the_commands_written_meanwhile(make_user: Any) -> None:
    user = await database_sync_to_async(make_user)("view_dag", "control_dag")
    stream = await DagStream.create("learn-1", nodes=["a"])
    await stream.node_state("a", "running")
    await database_sync_to_async(services.control)("learn-1", "pause", actor=user)
    await stream.node_state("a", "completed")  # this flush sees the DAG moved on
    stream.nowait.node_state("a", "completed")  # reports queued: no database read
    reads = 0
    real = state.commands_after

    def counting(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return real(*args)

    state.commands_after = counting  # type: ignore[assignment]
    try:
        assert [c.type for c in await stream.pending_commands()] == ["pause"]
    finally:
        state.commands_after = real  # type: ignore[assignment]
    assert reads == 0
    assert await stream.pending_commands() == []
    await stream.close()


def test_sync_nowait_blocks_for_room_and_raises_refusals_later(settings: Any) -> None:
    from dagstream_app.engine import SyncDagStream

    settings.DAGSTREAM = {"ENGINE_BUFFER": 3}
    stream = SyncDagStream.create("sync-nowait", nodes=["a"])
    for _ in range(50):  # far past the buffer: each call waits for room instead
        stream.nowait.node_state("a", "running", metrics={"n": 1})
    stream.nowait.node_state("ghost", "running")
    with pytest.raises(services.InvalidDelta, match="ghost"):
        stream.flush()
    stream.nowait.node_state("a", "completed")
    stream.close()
    rows = Event.objects.filter(dag_id="sync-nowait", type="node_state").count()
    assert rows == 51


def test_closing_one_sync_stream_leaves_the_shared_loop_to_the_others() -> None:
    # Celery's worker process runs every run's stream on one loop thread.
    from dagstream_app.engine import LoopThread, SyncDagStream

    shared = LoopThread()
    try:
        first = SyncDagStream(shared.run(DagStream.create("shared-1", nodes=["a"])), shared)
        second = SyncDagStream.create("shared-2", nodes=["b"], loop=shared)
        first.node_state("a", "completed")
        first.close()
        assert shared.thread.is_alive()
        assert second.node_state("b", "running") > 0
        second.nowait.node_state("b", "completed")
        second.close()
        assert shared.thread.is_alive()
        assert Node.objects.get(dag_id="shared-2", node_id="b").status == "completed"
    finally:
        shared.stop()
    own = SyncDagStream.open("shared-2")  # a loop of its own: closing stops it
    own.close()
    assert not own._loop.thread.is_alive()


def test_every_handle_reports_through_the_one_definition() -> None:
    # The reports are written once (services.reports); each kind of handle only
    # says what submit() does, and overrides none of them.
    from dagstream_app.engine import DagStream, Deltas, Reporter, SyncDagStream
    from dagstream_app.services import DirectReports, Reports, RunReports

    every = [n for n in vars(Reports) if not n.startswith("_") and callable(vars(Reports)[n])]
    run = [n for n in vars(RunReports) if not n.startswith("_") and callable(vars(RunReports)[n])]
    assert {"node_state", "edge_active", "mutate", "cost", "error"} <= set(every)
    assert {"complete", "fail", "set_state"} <= set(run)
    for handle in (DagStream, SyncDagStream, Deltas, DirectReports):
        for name in every + run:
            owner = next(c for c in handle.__mro__ if name in vars(c))
            assert owner in (Reports, RunReports), f"{handle.__name__}.{name}"
    for name in every:
        assert next(c for c in Reporter.__mro__ if name in vars(c)) is Reports
