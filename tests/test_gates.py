"""Human gates end to end: first decision wins under concurrency, timeouts, reattach, refusals.

Decisions travel the real road: WebSocket clients -> daphne (one process on the
in-memory layer, or two on Redis) -> services -> database, with the engine's
``DagStream.gate()`` awaiting in this process.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group, Permission, User
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from websockets.asyncio.client import ClientConnection

from dagstream_app import services, tokens
from dagstream_app.engine import DagStream
from dagstream_app.models import Dag, Event, Gate
from tests.servers import Server, configured_server
from tests.wsclient import open_ws, recv, recv_messages, reply_to, send

pytestmark = pytest.mark.django_db(transaction=True)

CONCURRENT = 50
DECISIONS = ("approve", "reject", "modify")
_names = itertools.count(1)


def _user(*perms: str, groups: tuple[str, ...] = ()) -> User:
    """A user with dagstream permissions (no password hashing: the tests use tokens)."""
    user = User.objects.create(username=f"person{next(_names)}")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return User.objects.get(pk=user.pk)


def _token(*perms: str, groups: tuple[str, ...] = ()) -> tuple[User, str]:
    user = _user(*perms, groups=groups)
    return user, tokens.create_api_token(user, "tests")[1]


async def _operator(*perms: str) -> tuple[User, str]:
    return await database_sync_to_async(_token)(*(perms or ("view_dag", "decide_gate")))


async def _events_until(ws: ClientConnection, last_seq: int) -> list[Any]:
    events: list[Any] = []
    while not events or events[-1]["seq"] < last_seq:
        events += [m for m in await recv_messages(ws) if m["type"] != "snapshot" and "seq" in m]
    return events


async def _wait_for_gate(ws: ClientConnection, node_id: str) -> dict[str, Any]:
    """Read a viewer's stream until the gate at ``node_id`` is announced."""
    while True:
        message = await recv(ws)
        if message["type"] == "human_gate_waiting" and message["node_id"] == node_id:
            return message
        if message["type"] == "snapshot":
            for gate in message["dag"]["gates"]:
                if gate["node_id"] == node_id:
                    return gate


def _gate_events(dag_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in Event.objects.filter(dag_id=dag_id, type="gate_decided")]


# ------------------------------------------------------- first decision wins


async def _race(servers: list[Server], dag_id: str) -> None:
    """CONCURRENT people decide one gate at once, spread over ``servers``."""
    stream = await DagStream.create(dag_id, name="race", nodes=["build", "review"])
    _, watcher_token = await _operator("view_dag")
    watcher = await open_ws(servers[0], dag_id, token=watcher_token)
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "Ship it?", "diff": "+1 -1"}))
    await _wait_for_gate(watcher, "review")

    people = [await _operator() for _ in range(CONCURRENT)]
    sockets = await asyncio.gather(
        *(
            open_ws(servers[i % len(servers)], dag_id, token=token)
            for i, (_, token) in enumerate(people)
        )
    )
    for snap in await asyncio.gather(*(recv(ws) for ws in sockets)):
        assert snap["type"] == "snapshot"
        assert [g["status"] for g in snap["dag"]["gates"]] == ["pending"]
    sent = [
        {
            "type": "human_decision",
            "id": f"d{i}",
            "node_id": "review",
            "decision": DECISIONS[i % 3],
            "feedback": f"from person {i}",
        }
        for i in range(CONCURRENT)
    ]
    await asyncio.gather(*(send(ws, message) for ws, message in zip(sockets, sent, strict=True)))
    outcomes = await asyncio.gather(
        *(reply_to(ws, message["id"]) for ws, message in zip(sockets, sent, strict=True))
    )

    replies = [reply for reply, _ in outcomes]
    acks = [i for i, reply in enumerate(replies) if reply["type"] == "ack"]
    assert len(acks) == 1, replies
    winner = acks[0]
    gate = await database_sync_to_async(Gate.objects.get)(dag_id=dag_id, node_id="review")
    assert gate.decided_by == people[winner][0].username
    assert (gate.decision, gate.feedback) == (sent[winner]["decision"], sent[winner]["feedback"])
    conflicts = [reply for i, reply in enumerate(replies) if i != winner]
    assert [reply["code"] for reply in conflicts] == ["conflict"] * (CONCURRENT - 1)
    for reply in conflicts:
        assert reply["decision"]["decision"] == gate.decision
        assert reply["decision"]["decided_by"] == gate.decided_by
        assert reply["decision"]["feedback"] == gate.feedback

    decision = await asyncio.wait_for(waiting, 15)
    assert (decision.decision, decision.decided_by, decision.feedback) == (
        gate.decision,
        gate.decided_by,
        gate.feedback,
    )
    assert len(await database_sync_to_async(_gate_events)(dag_id)) == 1

    # Every viewer, on either server, sees exactly one gate_decided up to the end of the run.
    last = await stream.complete({"shipped": True})
    for ws, (_, before) in zip([*sockets], outcomes, strict=True):
        seen = before + await _events_until(ws, last)
        decided = [e for e in seen if e["type"] == "gate_decided"]
        assert len(decided) == 1
        assert decided[0]["decided_by"] == gate.decided_by
        assert [e["seq"] for e in seen] == sorted({e["seq"] for e in seen})  # in order, once
    watched = await _events_until(watcher, last)
    assert [e["type"] for e in watched].count("gate_decided") == 1
    for ws in [*sockets, watcher]:
        await ws.close()
    await stream.close()


async def test_fifty_concurrent_decisions_one_wins(server: Server) -> None:
    await _race([server], "race-memory")


@pytest.mark.redis
async def test_fifty_concurrent_decisions_over_two_servers_and_redis(
    redis_servers: list[Server],
) -> None:
    await _race(redis_servers, "race-redis")


def test_concurrent_service_calls_one_wins_in_the_database() -> None:
    """50 threads, each with its own database connection, race the conditional update."""
    services.create_dag("race-threads", nodes=["review"])
    services.open_gate("race-threads", "review", {"title": "?"})
    people = [_user("view_dag", "decide_gate") for _ in range(CONCURRENT)]
    barrier = threading.Barrier(CONCURRENT)
    results: list[Any] = [None] * CONCURRENT

    def decide(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = services.decide_gate(
                "race-threads", "review", DECISIONS[i % 3], feedback=f"f{i}", actor=people[i]
            )
        except services.Conflict as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [r for r in results if isinstance(r, Gate)]
    losers = [r for r in results if isinstance(r, services.Conflict)]
    assert (len(winners), len(losers)) == (1, CONCURRENT - 1)
    assert {r.decision["decided_by"] for r in losers} == {winners[0].decided_by}  # type: ignore[index]
    assert len(_gate_events("race-threads")) == 1


# ------------------------------------------------------------------ timeouts


async def test_timeout_records_the_default_as_a_system_decision(server: Server) -> None:
    stream = await DagStream.create("timeout-1", nodes=["review"])
    _, token = await _operator()
    ws = await open_ws(server, "timeout-1", token=token)
    assert (await recv(ws))["type"] == "snapshot"
    decision = await asyncio.wait_for(
        stream.gate("review", {"title": "?"}, timeout=0.2, default="approve"), 10
    )
    assert (decision.decision, decision.decided_by, decision.feedback) == ("approve", "", "")
    assert await database_sync_to_async(_gate_events)("timeout-1") == [
        {"node_id": "review", "decision": "approve", "feedback": "", "decided_by": ""}
    ]
    # Viewers see it; a late person gets a conflict naming the system's decision.
    seen = await _events_until(ws, 4)
    assert [e["type"] for e in seen] == ["node_state", "human_gate_waiting", "gate_decided"]
    assert (seen[0]["node_id"], seen[0]["status"]) == ("review", "waiting")
    assert seen[-1]["decided_by"] == ""
    await send(ws, {"type": "human_decision", "id": 1, "node_id": "review", "decision": "reject"})
    reply, _ = await reply_to(ws, 1)
    assert reply["code"] == "conflict"
    assert (reply["decision"]["decision"], reply["decision"]["decided_by"]) == ("approve", "")
    await ws.close()
    await stream.close()


async def test_a_person_deciding_before_the_timeout_wins_over_the_default(server: Server) -> None:
    stream = await DagStream.create("timeout-2", nodes=["review"])
    user, token = await _operator()
    ws = await open_ws(server, "timeout-2", token=token)
    waiting = asyncio.ensure_future(
        stream.gate("review", {"title": "?"}, timeout=60, default="reject")
    )
    await _wait_for_gate(ws, "review")
    await send(
        ws, {"type": "human_decision", "id": "a", "node_id": "review", "decision": "approve"}
    )
    assert (await reply_to(ws, "a"))[0]["type"] == "ack"
    decision = await asyncio.wait_for(waiting, 10)
    assert (decision.decision, decision.decided_by) == ("approve", user.username)
    assert len(await database_sync_to_async(_gate_events)("timeout-2")) == 1
    await ws.close()
    await stream.close()


async def test_deadline_passed_while_detached_is_applied_on_reattach() -> None:
    await DagStream.create("timeout-3", nodes=["review"])
    # The engine opened the gate with a deadline, then died before it passed.
    await database_sync_to_async(services.open_gate)(
        "timeout-3",
        "review",
        {"title": "?"},
        timeout_at=timezone.now() - timedelta(seconds=1),
        default="reject",
    )
    stream = await DagStream.open("timeout-3")
    decision = await asyncio.wait_for(
        stream.gate("review", {"title": "?"}, timeout=5, default="reject"), 10
    )
    assert (decision.decision, decision.decided_by) == ("reject", "")
    assert len(await database_sync_to_async(_gate_events)("timeout-3")) == 1
    await stream.close()


async def test_gate_timeout_needs_a_default() -> None:
    stream = await DagStream.create("timeout-4", nodes=["review"])
    with pytest.raises(ValueError, match="go together"):
        await stream.gate("review", {}, timeout=1)
    with pytest.raises(services.InvalidDelta):
        await database_sync_to_async(services.open_gate)("timeout-4", "review", {}, default="maybe")
    await stream.close()


# ----------------------------------------------------------------- reattach


async def test_decision_while_engine_detached_is_returned_on_reattach(server: Server) -> None:
    stream = await DagStream.create("detach-1", nodes=["review"])
    user, token = await _operator()
    ws = await open_ws(server, "detach-1", token=token)
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "Deploy?"}))
    await _wait_for_gate(ws, "review")
    waiting.cancel()  # the engine process goes away
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await stream.close()

    await send(
        ws,
        {
            "type": "human_decision",
            "id": 9,
            "node_id": "review",
            "decision": "modify",
            "feedback": "deploy to staging first",
        },
    )
    reply, _ = await reply_to(ws, 9)
    assert reply == {"type": "ack", "id": 9}

    again = await DagStream.open("detach-1")
    decision = await asyncio.wait_for(again.gate("review", {"title": "Deploy?"}), 5)
    assert (decision.decision, decision.feedback, decision.decided_by) == (
        "modify",
        "deploy to staging first",
        user.username,
    )
    # Reattaching opened nothing new and decided nothing twice.
    assert await database_sync_to_async(Gate.objects.filter(dag_id="detach-1").count)() == 1
    assert len(await database_sync_to_async(_gate_events)("detach-1")) == 1
    await again.close()
    await ws.close()


# ---------------------------------------------- validation, repeats, refusals


async def _connected(server: Server, dag_id: str, token: str) -> ClientConnection:
    ws = await open_ws(server, dag_id, token=token)
    assert (await recv(ws))["type"] == "snapshot"
    return ws


async def _state(dag_id: str) -> tuple[str, int, str]:
    def read() -> tuple[str, int, str]:
        dag = Dag.objects.get(pk=dag_id)
        return dag.status, dag.last_seq, Gate.objects.get(dag=dag, node_id="review").status

    return await database_sync_to_async(read)()


@pytest.fixture
def gated(db: Any) -> Iterator[str]:
    services.create_dag("gated", name="deploys", nodes=["review"])
    services.open_gate("gated", "review", {"title": "?"})
    yield "gated"


async def test_repeat_with_the_same_id_is_acked_and_applied_once(
    server: Server, gated: str
) -> None:
    _, token = await _operator()
    ws = await _connected(server, gated, token)
    decide = {"type": "human_decision", "id": "x1", "node_id": "review", "decision": "approve"}
    await send(ws, decide)
    first, events = await reply_to(ws, "x1")
    await send(ws, decide)
    second, more = await reply_to(ws, "x1")
    assert first == second == {"type": "ack", "id": "x1"}
    await send(ws, {**decide, "id": "x2", "decision": "reject"})
    third, _ = await reply_to(ws, "x2")
    assert third["code"] == "conflict" and third["decision"]["decision"] == "approve"
    assert len(await database_sync_to_async(_gate_events)(gated)) == 1
    assert [e["type"] for e in events + more].count("gate_decided") <= 1
    assert await _state(gated) == ("running", 4, "approved")
    await ws.close()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"decision": "modify"}, "invalid_message"),
        ({"decision": "modify", "feedback": "   "}, "invalid_message"),
        ({"decision": "approve", "feedback": "x" * 4_001}, "invalid_message"),
        ({"decision": "approve", "node_id": "elsewhere"}, "not_found"),
    ],
    ids=["modify-without-feedback", "modify-blank-feedback", "feedback-too-long", "no-gate"],
)
async def test_invalid_decisions_change_nothing(
    server: Server, gated: str, message: dict[str, Any], code: str
) -> None:
    _, token = await _operator()
    ws = await _connected(server, gated, token)
    await send(ws, {"type": "human_decision", "id": 5, "node_id": "review", **message})
    reply, _ = await reply_to(ws, 5)
    assert (reply["type"], reply["code"]) == ("error", code)
    assert await _state(gated) == ("running", 3, "pending")
    await ws.close()


async def test_gates_of_a_finished_dag_are_closed(server: Server, gated: str) -> None:
    await database_sync_to_async(services.reports(gated).fail)("engine crashed")
    _, token = await _operator()
    ws = await _connected(server, gated, token)
    await send(ws, {"type": "human_decision", "id": 1, "node_id": "review", "decision": "approve"})
    reply, _ = await reply_to(ws, 1)
    assert reply["code"] == "conflict" and reply["message"] == services.GATE_CLOSED
    assert "decision" not in reply  # nobody decided it: no winner to name
    # the gate's gate_closed, then the failure's error and the terminal execution_state
    assert await _state(gated) == ("failed", 6, "closed")
    await ws.close()


async def test_decision_without_decide_gate_is_forbidden_and_changes_nothing(
    server: Server, gated: str
) -> None:
    _, token = await _operator("view_dag", "control_dag")
    ws = await _connected(server, gated, token)
    await send(ws, {"type": "human_decision", "id": 1, "node_id": "review", "decision": "approve"})
    reply, _ = await reply_to(ws, 1)
    assert reply["code"] == "forbidden"
    assert await _state(gated) == ("running", 3, "pending")
    # A refused id is not "used": the same id from a permitted user is a fresh command.
    _, allowed = await _operator()
    other = await _connected(server, gated, allowed)
    await send(
        other, {"type": "human_decision", "id": 1, "node_id": "review", "decision": "reject"}
    )
    assert (await reply_to(other, 1))[0] == {"type": "ack", "id": 1}
    await ws.close()
    await other.close()


# ------------------------------------------------- per-DAG permission hook


@pytest.fixture(scope="session")
def hook_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, PERMISSION_HOOK="tests.hooks.owners_only") as srv:
        yield srv


async def test_permission_hook_limits_decisions_and_control_to_owners(
    hook_server: Server, gated: str
) -> None:
    _, outsider = await database_sync_to_async(_token)("view_dag", "decide_gate", "control_dag")
    _, owner = await database_sync_to_async(_token)(
        "view_dag", "decide_gate", "control_dag", groups=("deploys-owners",)
    )
    ws = await _connected(hook_server, gated, outsider)
    for i, message in enumerate(
        [
            {"type": "human_decision", "node_id": "review", "decision": "approve"},
            {"type": "pause_execution"},
            {"type": "cancel_execution"},
        ]
    ):
        await send(ws, {**message, "id": i})
        reply, _ = await reply_to(ws, i)
        assert reply["code"] == "forbidden"
    assert await _state(gated) == ("running", 3, "pending")
    mine = await _connected(hook_server, gated, owner)
    await send(
        mine, {"type": "human_decision", "id": "ok", "node_id": "review", "decision": "approve"}
    )
    assert (await reply_to(mine, "ok"))[0]["type"] == "ack"
    assert await _state(gated) == ("running", 4, "approved")
    await ws.close()
    await mine.close()


async def test_gate_past_its_deadline_on_a_finished_dag_raises_instead_of_spinning() -> None:
    await DagStream.create("timeout-5", nodes=["review"])
    await database_sync_to_async(services.open_gate)(
        "timeout-5",
        "review",
        {"title": "?"},
        timeout_at=timezone.now() - timedelta(seconds=1),
        default="approve",
    )
    await database_sync_to_async(services.reports("timeout-5").fail)("engine crashed")
    stream = await DagStream.open("timeout-5")
    with pytest.raises(services.Conflict, match="was closed undecided"):
        await asyncio.wait_for(stream.gate("review", {}, timeout=1, default="approve"), 5)
    assert await _state("timeout-5") == ("failed", 6, "closed")  # no default recorded
    await stream.close()


@override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.hide_secret_dags"})
def test_hook_is_not_asked_about_an_unknown_dag() -> None:
    """Django's permission, then ``not_found``: the hook only ever sees a real DAG."""
    person = _user("view_dag", "decide_gate", "control_dag")
    with pytest.raises(services.NotFound):
        services.decide_gate("no-such-dag", "review", "approve", actor=person)
    with pytest.raises(services.NotFound):
        services.control("no-such-dag", "pause", actor=person)
    with pytest.raises(services.Forbidden):
        services.decide_gate("no-such-dag", "review", "approve", actor=_user("view_dag"))
