"""Execution control through real daphne: the state machine, repeats by id, refusals.

States: running, paused, cancelling, cancelled, completed, failed. People pause
(from running), resume (from paused) and cancel (from running or paused);
everything else is a ``conflict`` that changes nothing. The engine hears each
accepted command once through ``commands()``.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from websockets.asyncio.client import ClientConnection

from dagstream_app import services, tokens
from dagstream_app.engine import DagStream
from dagstream_app.models import Dag, Event
from tests.servers import Server
from tests.wsclient import open_ws, recv, recv_messages, reply_to, send

pytestmark = pytest.mark.django_db(transaction=True)

STATES = ("running", "paused", "cancelling", "cancelled", "completed", "failed")
COMMANDS = {"pause": "pause_execution", "resume": "resume_execution", "cancel": "cancel_execution"}
ACCEPTED = {
    ("pause", "running"): "paused",
    ("resume", "paused"): "running",
    ("cancel", "running"): "cancelling",
    ("cancel", "paused"): "cancelling",
}
_names = itertools.count(1)


def _token(*perms: str) -> tuple[User, str]:
    user = User.objects.create(username=f"controller{next(_names)}")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    user = User.objects.get(pk=user.pk)
    return user, tokens.create_api_token(user, "tests")[1]


def _dag_in(dag_id: str, status: str) -> None:
    """Create a DAG and drive it into ``status`` the way engines and people do."""
    services.create_dag(dag_id, nodes=["a"])
    setup, _ = _token("control_dag")
    match status:
        case "paused":
            services.control(dag_id, "pause", actor=setup)
        case "cancelling":
            services.control(dag_id, "cancel", actor=setup)
        case "cancelled":
            services.control(dag_id, "cancel", actor=setup)
            services.reports(dag_id).set_state("cancelled")
        case "completed":
            services.reports(dag_id).complete({"ok": True})
        case "failed":
            services.reports(dag_id).fail("boom")
    assert Dag.objects.get(pk=dag_id).status == status


def _status(dag_id: str) -> tuple[str, int]:
    dag = Dag.objects.get(pk=dag_id)
    return dag.status, dag.last_seq


async def _next_event(ws: ClientConnection, events: list[Any]) -> dict[str, Any]:
    while not events:
        events += [m for m in await recv_messages(ws) if "seq" in m and m["type"] != "snapshot"]
    return events.pop(0)  # type: ignore[no-any-return]


# ------------------------------------------------------------- state machine


@pytest.mark.parametrize("status", STATES)
@pytest.mark.parametrize("action", list(COMMANDS))
async def test_state_machine(server: Server, action: str, status: str) -> None:
    dag_id = f"sm-{action}-{status}"
    await database_sync_to_async(_dag_in)(dag_id, status)
    _, token = await database_sync_to_async(_token)("view_dag", "control_dag")
    before = await database_sync_to_async(_status)(dag_id)
    ws = await open_ws(server, dag_id, token=token)
    snap = await recv(ws)
    assert snap["dag"]["status"] == status

    await send(ws, {"type": COMMANDS[action], "id": f"{action}-1"})
    reply, events = await reply_to(ws, f"{action}-1")
    target = ACCEPTED.get((action, status))
    if target is None:
        assert (reply["type"], reply["code"]) == ("error", "conflict")
        assert f"Cannot {action} a DAG that is {status}" in reply["message"]
        assert await database_sync_to_async(_status)(dag_id) == before
        assert not events
    else:
        assert reply == {"type": "ack", "id": f"{action}-1"}
        event = await _next_event(ws, events)
        assert (event["type"], event["state"], event["seq"]) == (
            "execution_state",
            target,
            before[1] + 1,
        )
        assert await database_sync_to_async(_status)(dag_id) == (target, before[1] + 1)
    await ws.close()


def test_engine_side_transitions() -> None:
    """The engine's own transitions: pause / resume itself, confirm a cancel."""
    engine_moves = {
        ("paused", "running"),
        ("running", "paused"),
        ("cancelled", "running"),
        ("cancelled", "paused"),
        ("cancelled", "cancelling"),
    }
    for i, (target, status) in enumerate(
        itertools.product(("paused", "running", "cancelled"), STATES)
    ):
        dag_id = f"engine-{i}"
        _dag_in(dag_id, status)
        before = _status(dag_id)
        if (target, status) in engine_moves:
            services.reports(dag_id).set_state(target)
            assert _status(dag_id) == (target, before[1] + 1)
        else:
            with pytest.raises(services.Conflict):
                services.reports(dag_id).set_state(target)
            assert _status(dag_id) == before
    with pytest.raises(services.InvalidDelta):
        services.reports("engine-0").set_state("completed")


# ------------------------------------------------- engine hears each once


async def test_commands_reach_the_engine_once_and_repeats_apply_once(server: Server) -> None:
    stream = await DagStream.create("ctl-1", nodes=["a"])
    _, token = await database_sync_to_async(_token)("view_dag", "control_dag")
    ws = await open_ws(server, "ctl-1", token=token)
    assert (await recv(ws))["type"] == "snapshot"
    received: list[str] = []

    async def engine() -> None:
        async for command in stream.commands():
            received.append(command.type)
            if command.type == "cancel":
                await stream.set_state("cancelled")

    running = asyncio.ensure_future(engine())
    # p1 repeated right away, and again after the DAG moved on: acked, never re-applied.
    for command_id, action in [
        ("p1", "pause"),
        ("p1", "pause"),
        ("r1", "resume"),
        ("p1", "pause"),
        ("r1", "resume"),
        ("c1", "cancel"),
        ("c1", "cancel"),
    ]:
        await send(ws, {"type": COMMANDS[action], "id": command_id})
        reply, _ = await reply_to(ws, command_id)
        assert reply == {"type": "ack", "id": command_id}
    await asyncio.wait_for(running, 15)  # commands() ends once the run is cancelled
    assert received == ["pause", "resume", "cancel"]

    def states() -> list[tuple[str, str]]:
        return [
            (e.payload["state"], e.command)
            for e in Event.objects.filter(dag_id="ctl-1", type="execution_state").order_by("seq")
        ]

    assert await database_sync_to_async(states)() == [
        ("running", ""),
        ("paused", "pause"),
        ("running", "resume"),
        ("cancelling", "cancel"),
        ("cancelled", ""),
    ]
    # Repeats after the end are still acknowledged and still change nothing.
    await send(ws, {"type": "pause_execution", "id": "p1"})
    assert (await reply_to(ws, "p1"))[0] == {"type": "ack", "id": "p1"}
    assert await database_sync_to_async(_status)("ctl-1") == ("cancelled", 5)
    await ws.close()
    await stream.close()


async def test_command_ids_are_per_user(server: Server) -> None:
    await database_sync_to_async(_dag_in)("ctl-2", "running")
    _, first = await database_sync_to_async(_token)("view_dag", "control_dag")
    _, second = await database_sync_to_async(_token)("view_dag", "control_dag")
    a = await open_ws(server, "ctl-2", token=first)
    b = await open_ws(server, "ctl-2", token=second)
    await recv(a)
    await recv(b)
    await send(a, {"type": "pause_execution", "id": 1})
    assert (await reply_to(a, 1))[0]["type"] == "ack"
    await send(b, {"type": "resume_execution", "id": 1})  # same id, another person: applied
    assert (await reply_to(b, 1))[0]["type"] == "ack"
    assert await database_sync_to_async(_status)("ctl-2") == ("running", 3)
    await a.close()
    await b.close()


async def test_a_conflicting_command_does_not_use_up_its_id(server: Server) -> None:
    await database_sync_to_async(_dag_in)("ctl-3", "running")
    _, token = await database_sync_to_async(_token)("view_dag", "control_dag")
    ws = await open_ws(server, "ctl-3", token=token)
    await recv(ws)
    await send(ws, {"type": "resume_execution", "id": "x"})
    assert (await reply_to(ws, "x"))[0]["code"] == "conflict"
    await send(ws, {"type": "pause_execution", "id": "x"})  # nothing was applied under "x"
    assert (await reply_to(ws, "x"))[0]["type"] == "ack"
    assert await database_sync_to_async(_status)("ctl-3") == ("paused", 2)
    await ws.close()


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("perms", [("view_dag",), ("view_dag", "decide_gate")])
async def test_control_without_control_dag_is_forbidden_and_changes_nothing(
    server: Server, perms: tuple[str, ...]
) -> None:
    await database_sync_to_async(_dag_in)("ctl-4", "paused")
    _, token = await database_sync_to_async(_token)(*perms)
    before = await database_sync_to_async(_status)("ctl-4")
    ws = await open_ws(server, "ctl-4", token=token)
    await recv(ws)
    for i, command in enumerate(COMMANDS.values()):
        await send(ws, {"type": command, "id": i})
        reply, events = await reply_to(ws, i)
        assert (reply["code"], events) == ("forbidden", [])
    assert await database_sync_to_async(_status)("ctl-4") == before
    await ws.close()
