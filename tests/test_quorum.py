"""Assignees and quorum: who may vote on a gate, how votes decide it, and races between voters.

Votes travel the real road where it matters: WebSocket clients -> two daphne
processes on Redis -> services -> database, with the engine's ``DagStream.gate()``
awaiting in this process; the rules themselves are checked through services.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group, Permission, User

from dagstream_app import services, tokens
from dagstream_app.engine import DagStream
from dagstream_app.errors import Conflict, Forbidden, InvalidDelta
from dagstream_app.models import Event, Gate
from tests.servers import Server
from tests.wsclient import open_ws, recv, reply_to, send

pytestmark = pytest.mark.django_db(transaction=True)

_names = itertools.count(1)


def _user(name: str = "", *, groups: tuple[str, ...] = (), decide: bool = True) -> User:
    user = User.objects.create(username=name or f"voter{next(_names)}")
    perms = ("view_dag", "decide_gate") if decide else ("view_dag",)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="dagstream_app", codename__in=perms)
    )
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return User.objects.get(pk=user.pk)


def _run(dag_id: str, **gate: Any) -> None:
    services.create_dag(dag_id, nodes=["build", "review"], edges=[("build", "review")])
    services.open_gate(dag_id, "review", {"title": "Ship it?"}, **gate)


def _types(dag_id: str) -> list[str]:
    return list(Event.objects.filter(dag_id=dag_id).values_list("type", flat=True))


def _gate(dag_id: str) -> Gate:
    return Gate.objects.get(dag_id=dag_id, node_id="review")


# ------------------------------------------------------------------ quorum


def test_two_approvals_decide_and_the_decision_keeps_every_vote() -> None:
    alice, bob = _user("alice"), _user("bob")
    _run("q-1", quorum=2)
    gate = services.decide_gate("q-1", "review", "approve", feedback="looks fine", actor=alice)
    assert gate.status == "pending"
    assert [v["voter"] for v in gate.votes] == ["alice"]
    assert _types("q-1")[-1] == "gate_voted"
    gate = services.decide_gate("q-1", "review", "modify", feedback="bump the version", actor=bob)
    # A modify counts as an approval; its feedback is what the engine is told to change.
    assert (gate.status, gate.feedback, gate.decided_by) == (
        "modified",
        "bump the version",
        "alice, bob",
    )
    assert [(v["voter"], v["decision"], v["feedback"]) for v in gate.votes] == [
        ("alice", "approve", "looks fine"),
        ("bob", "modify", "bump the version"),
    ]
    assert _types("q-1")[-3:] == ["gate_voted", "gate_voted", "gate_decided"]
    voted = Event.objects.filter(dag_id="q-1", type="gate_voted").order_by("seq")
    assert [(e.payload["voter"], e.payload["approvals"], e.payload["quorum"]) for e in voted] == [
        ("alice", 1, 2),
        ("bob", 2, 2),
    ]


def test_one_reject_decides_reject_whatever_the_quorum() -> None:
    alice, bob = _user("alice"), _user("bob")
    _run("q-2", quorum=3)
    services.decide_gate("q-2", "review", "approve", actor=alice)
    gate = services.decide_gate("q-2", "review", "reject", feedback="tests fail", actor=bob)
    assert (gate.status, gate.feedback, gate.decided_by) == ("rejected", "tests fail", "bob")
    assert _types("q-2").count("gate_decided") == 1


def test_a_second_vote_by_the_same_person_is_refused_and_changes_nothing() -> None:
    alice = _user("alice")
    _run("q-3", quorum=2)
    services.decide_gate("q-3", "review", "approve", actor=alice)
    before = _types("q-3")
    with pytest.raises(Conflict, match="You already voted on this gate: approve"):
        services.decide_gate("q-3", "review", "approve", actor=alice)
    with pytest.raises(Conflict, match="already voted"):
        services.decide_gate("q-3", "review", "reject", actor=alice)  # no changing one's mind
    assert _types("q-3") == before
    assert (_gate("q-3").status, len(_gate("q-3").votes)) == ("pending", 1)


def test_a_vote_after_the_decision_is_refused_with_the_winner() -> None:
    alice, bob, carol = _user("alice"), _user("bob"), _user("carol")
    _run("q-4", quorum=2)
    services.decide_gate("q-4", "review", "approve", actor=alice)
    services.decide_gate("q-4", "review", "approve", actor=bob)
    with pytest.raises(Conflict) as refused:
        services.decide_gate("q-4", "review", "reject", actor=carol)
    assert refused.value.decision is not None
    assert refused.value.decision["decided_by"] == "alice, bob"
    assert len(_gate("q-4").votes) == 2


# --------------------------------------------------------------- assignees


def test_only_assignees_and_members_of_assigned_groups_may_decide() -> None:
    stranger = _user("mallory")
    alice = _user("alice")
    oncall = _user("olga", groups=("ops",))
    _run("a-1", assignees=["alice", "group:ops"], quorum=2)
    before = _types("a-1")
    with pytest.raises(Forbidden, match="This gate waits for alice, group:ops"):
        services.decide_gate("a-1", "review", "approve", actor=stranger)
    assert _types("a-1") == before
    assert _gate("a-1").votes == []
    services.decide_gate("a-1", "review", "approve", actor=oncall)
    gate = services.decide_gate("a-1", "review", "approve", actor=alice)
    assert (gate.status, gate.decided_by) == ("approved", "olga, alice")


def test_an_assignee_still_needs_the_decide_permission() -> None:
    viewer = _user("alice", decide=False)
    _run("a-2", assignees=["alice"])
    with pytest.raises(Forbidden):
        services.decide_gate("a-2", "review", "approve", actor=viewer)
    assert _gate("a-2").status == "pending"


def test_an_assigned_gate_without_quorum_is_decided_by_one_assignee() -> None:
    alice = _user("alice")
    _run("a-3", assignees=["alice"])
    gate = services.decide_gate("a-3", "review", "approve", actor=alice)
    assert (gate.status, gate.decided_by, gate.votes) == ("approved", "alice", [])


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"assignees": ["alice"], "quorum": 2}, "quorum 2 needs more people than the 1 assigned"),
        ({"quorum": 0}, "quorum"),
        ({"quorum": 101}, "quorum"),
        ({"assignees": "alice"}, "assignees is a list"),
        ({"assignees": [""]}, "assignees"),
    ],
)
def test_a_gate_that_could_never_be_decided_is_refused(gate: dict[str, Any], message: str) -> None:
    services.create_dag("a-4", nodes=["review"])
    with pytest.raises(InvalidDelta, match=message):
        services.open_gate("a-4", "review", {"title": "Ship it?"}, **gate)
    assert not Gate.objects.filter(dag_id="a-4").exists()


# ---------------------------------------------- two servers, racing voters


def _voter_token(name: str) -> str:
    return tokens.create_api_token(_user(name), "tests")[1]


async def _wait_for_gate(ws: Any) -> None:
    while True:
        message = await recv(ws)
        if message["type"] == "snapshot" and message["dag"]["gates"]:
            return
        if message["type"] == "human_gate_waiting":
            return


@pytest.mark.redis
async def test_voters_racing_over_two_servers_decide_a_quorum_gate_once(
    redis_servers: list[Server],
) -> None:
    dag_id = "quorum-race"
    quorum, voters = 3, 12
    stream = await DagStream.create(dag_id, name="race", nodes=["build", "review"])
    names = [f"racer{i}" for i in range(voters)]
    keys = [await database_sync_to_async(_voter_token)(name) for name in names]
    waiting = asyncio.ensure_future(
        stream.gate("review", {"title": "Ship it?"}, assignees=names, quorum=quorum)
    )
    sockets = [await open_ws(redis_servers[i % 2], dag_id, token=key) for i, key in enumerate(keys)]
    # The first voter also votes from the other server, at the same moment: a duplicate.
    twin = await open_ws(redis_servers[1], dag_id, token=keys[0])
    for ws in [*sockets, twin]:
        await _wait_for_gate(ws)
    sent = [
        (ws, {"type": "human_decision", "id": f"v{i}", "node_id": "review", "decision": "approve"})
        for i, ws in enumerate(sockets)
    ]
    sent.append((twin, {**sent[0][1], "id": "v0-twin"}))
    await asyncio.gather(*(send(ws, message) for ws, message in sent))
    replies = [
        reply for reply, _ in await asyncio.gather(*(reply_to(ws, m["id"]) for ws, m in sent))
    ]

    acks = [m["id"] for (_, m), reply in zip(sent, replies, strict=True) if reply["type"] == "ack"]
    assert len(acks) == quorum, replies
    assert {reply["code"] for reply in replies if reply["type"] == "error"} == {"conflict"}
    assert not {"v0", "v0-twin"} <= set(acks)  # one person, one vote

    decision = await asyncio.wait_for(waiting, 15)
    gate = await database_sync_to_async(_gate)(dag_id)
    assert decision.decision == "approve"
    assert len(decision.votes) == quorum
    assert len({vote.voter for vote in decision.votes}) == quorum
    assert decision.decided_by == gate.decided_by == ", ".join(v.voter for v in decision.votes)
    types = await database_sync_to_async(_types)(dag_id)
    assert types.count("gate_voted") == quorum
    assert types.count("gate_decided") == 1
    for ws in [*sockets, twin]:
        await ws.close()
    await stream.close()


async def test_the_engine_receives_one_decision_with_every_vote(server: Server) -> None:
    dag_id = "quorum-engine"
    stream = await DagStream.create(dag_id, name="votes", nodes=["build", "review"])
    keys = [await database_sync_to_async(_voter_token)(name) for name in ("ann", "ben")]
    waiting = asyncio.ensure_future(stream.gate("review", {"title": "Ship it?"}, quorum=2))
    ann = await open_ws(server, dag_id, token=keys[0])
    await _wait_for_gate(ann)
    await send(ann, {"type": "human_decision", "id": 1, "node_id": "review", "decision": "approve"})
    reply, _ = await reply_to(ann, 1)
    assert reply["type"] == "ack"
    # Half-decided: one vote recorded, the gate still pending for the engine.
    half = await database_sync_to_async(_gate)(dag_id)
    assert (half.status, [v["voter"] for v in half.votes]) == ("pending", ["ann"])
    ben = await open_ws(server, dag_id, token=keys[1])
    await _wait_for_gate(ben)
    modify = {"id": 2, "decision": "modify", "feedback": "rename the release"}
    await send(ben, {"type": "human_decision", "node_id": "review", **modify})
    reply, _ = await reply_to(ben, 2)
    assert reply["type"] == "ack"
    decision = await asyncio.wait_for(waiting, 15)
    assert (decision.decision, decision.feedback, decision.decided_by) == (
        "modify",
        "rename the release",
        "ann, ben",
    )
    assert [(v.voter, v.decision, v.feedback) for v in decision.votes] == [
        ("ann", "approve", ""),
        ("ben", "modify", "rename the release"),
    ]
    assert decision.as_output()["votes"] == [
        {"voter": "ann", "decision": "approve", "feedback": ""},
        {"voter": "ben", "decision": "modify", "feedback": "rename the release"},
    ]
    await ann.close()
    await ben.close()
    await stream.close()
