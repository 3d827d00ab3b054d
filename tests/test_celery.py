"""Celery canvases on a real worker (prefork, concurrency 2) and the Redis broker, watched
through real daphne servers on Redis and `websockets` clients."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from typing import Any

import pytest
from celery import chain, chord, group

from dagstream_app import services
from dagstream_app.celery import launch
from dagstream_app.models import Dag, Edge, Node
from tests import celery_app as tasks
from tests.celery_worker import Worker
from tests.servers import Server
from tests.wsclient import TIMEOUT, open_ws, recv_messages

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
def watcher(make_user: Any, make_token: Any) -> str:
    return str(make_token(make_user("view_dag", "decide_gate", "control_dag")))


async def _collect(ws: Any, got: list[dict[str, Any]], until: Any) -> list[dict[str, Any]]:
    """Add the events that arrive to ``got`` until ``until(event)`` is true for the last."""
    while not got or not until(got[-1]):
        for message in await recv_messages(ws, timeout=60):
            if "seq" in message and message["type"] != "snapshot":
                got.append(message)
                if until(message):
                    break
    return got


async def _events(server: Server, token: str, dag_id: str, until: Any) -> list[dict[str, Any]]:
    """Every event of the DAG from seq 1, until ``until(event)`` is true for one."""
    ws = await open_ws(server, dag_id, token=token, query="last_seq=0")
    try:
        return await _collect(ws, [], until)
    finally:
        await ws.close()


def _ended(event: dict[str, Any]) -> bool:
    return event["type"] == "execution_state" and event["state"] in TERMINAL


def events_until_end(server: Server, token: str, dag_id: str) -> list[dict[str, Any]]:
    return asyncio.run(_events(server, token, dag_id, _ended))


def node_states(events: list[dict[str, Any]], node_id: str) -> list[str]:
    return [e["status"] for e in events if e["type"] == "node_state" and e["node_id"] == node_id]


def labels(dag_id: str) -> dict[str, str]:
    return dict(Node.objects.filter(dag_id=dag_id).values_list("label", "node_id"))


def test_a_nested_canvas_runs_to_completion_live(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    canvas = chain(
        tasks.add.s(1, 2),
        group(tasks.add.s(10), tasks.add.s(20)),
        tasks.total.s(),
        chord([tasks.add.s(1), tasks.add.s(2)], tasks.total.s()),
    )
    run = launch(canvas, name="nested")
    assert run.result.get(timeout=TIMEOUT) == 75
    events = events_until_end(redis_servers[0], watcher, run.dag_id)

    ids = labels(run.dag_id)
    assert sorted(ids) == ["add", "add #2", "add #3", "add #4", "add #5", "total", "total #2"]
    edges = {(a, b) for a, b in Edge.objects.filter(dag_id=run.dag_id).values_list("src", "dst")}
    name = {v: k for k, v in ids.items()}
    assert {(name[a], name[b]) for a, b in edges} == {
        ("add", "add #2"),
        ("add", "add #3"),
        ("add #2", "total"),
        ("add #3", "total"),
        ("total", "add #4"),
        ("total", "add #5"),
        ("add #4", "total #2"),
        ("add #5", "total #2"),
    }
    for node_id in ids.values():
        assert node_states(events, node_id) == ["running", "completed"]
    lit = {(e["from"], e["to"]) for e in events if e["type"] == "edge_active"}
    assert lit == edges
    assert events[-2] == {
        **events[-2],
        "type": "execution_complete",
        "results": {ids["total #2"]: 75},
    }
    assert events[-1]["state"] == "completed"
    done = Node.objects.get(dag_id=run.dag_id, node_id=ids["total"])
    assert done.output == 36
    assert {"runtime_s", "retries", "worker"} <= set(done.metrics)
    assert Dag.objects.get(pk=run.dag_id).name == "nested"
    assert Counter(e["seq"] for e in events) == Counter(range(1, events[-1]["seq"] + 1))


def _signal(name: str, timeout: float = 60) -> str:
    """Block until a task pushes to the Redis list ``name``; what it pushed."""
    got = tasks._redis().blpop([tasks.signal_key(name)], timeout=timeout)
    assert got is not None, f"no signal {name!r} within {timeout} s"
    return str(got[1].decode())


def _release(name: str) -> None:
    import redis

    redis.Redis.from_url(tasks.app.conf.broker_url).rpush(tasks.signal_key(name), "go")


def test_a_failing_link_fails_the_run_and_skips_what_came_after(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    canvas = group(
        chain(tasks.add.si(1, 1), tasks.fail.si("boom"), tasks.add.si(2, 2)),
        tasks.echo.si("side"),
    )
    run = launch(canvas)
    events = events_until_end(redis_servers[0], watcher, run.dag_id)
    ids = labels(run.dag_id)
    assert node_states(events, ids["add"]) == ["running", "completed"]
    assert node_states(events, ids["fail"]) == ["running", "failed"]
    assert node_states(events, ids["add #2"]) == ["skipped"]
    assert node_states(events, ids["echo"]) == ["running", "completed"]
    failed = Node.objects.get(dag_id=run.dag_id, node_id=ids["fail"])
    assert failed.output == {"error": "RuntimeError: boom"}
    errors = [e for e in events if e["type"] == "error"]
    assert [e["message"] for e in errors] == [
        "Task 'fail' failed: RuntimeError: boom",
        "The run failed: 'fail' failed: RuntimeError: boom",
    ]
    assert errors[0]["node_id"] == ids["fail"]
    assert events[-1]["state"] == "failed"


def test_a_retrying_task_shows_each_retry_then_completes(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    dag_id, result = launch(tasks.flaky.s(3))  # the DAG id and the AsyncResult, as a pair
    assert result.get(timeout=TIMEOUT) == "ok after 2 retries"
    events = events_until_end(redis_servers[0], watcher, dag_id)
    (node_id,) = labels(dag_id).values()
    states = [e for e in events if e["type"] == "node_state"]
    assert [e["status"] for e in states] == [
        "running",
        "waiting",
        "running",
        "waiting",
        "running",
        "completed",
    ]
    assert [e["metrics"]["retries"] for e in states if e["status"] == "waiting"] == [1, 2]
    assert states[1]["metrics"]["retry_reason"] == "ConnectionError: upstream not ready"
    assert states[-1]["metrics"]["retries"] == 2
    assert events[-1]["state"] == "completed"
    assert Node.objects.get(dag_id=dag_id, node_id=node_id).output == "ok after 2 retries"


def test_a_task_replacing_itself_adds_its_new_work_as_nodes(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    run = launch(chain(tasks.fan_out.s(2), tasks.total.s()))
    assert run.result.get(timeout=TIMEOUT) == 2
    events = events_until_end(redis_servers[0], watcher, run.dag_id)
    ids = labels(run.dag_id)
    assert sorted(ids) == ["accumulate", "add", "add #2", "fan_out", "total"]
    added = [e["mutation"] for e in events if e["type"] == "dag_mutated"]
    assert {m["node"]["label"] for m in added if m["op"] == "add_node"} == {
        "accumulate",
        "add",
        "add #2",
    }
    edges = {(m["from"], m["to"]) for m in added if m["op"] == "add_edge"}
    assert {
        (ids["fan_out"], ids["add"]),
        (ids["fan_out"], ids["add #2"]),
        (ids["add"], ids["accumulate"]),
        (ids["add #2"], ids["accumulate"]),
        (ids["accumulate"], ids["total"]),
    } <= edges
    replaced = Node.objects.get(dag_id=run.dag_id, node_id=ids["fan_out"])
    assert replaced.status == "completed"
    assert sorted(replaced.output["replaced_by"]) == sorted([ids["add"], ids["add #2"]])
    for label in ("add", "add #2", "accumulate", "total"):
        assert node_states(events, ids[label]) == ["running", "completed"]
    assert events[-1]["state"] == "completed"


async def _command(
    server: Server, token: str, dag_id: str, message: dict[str, Any], until: Any
) -> list[dict[str, Any]]:
    """Send one protocol command (acked), then collect events until ``until(event)``."""
    from tests.wsclient import reply_to, send

    ws = await open_ws(server, dag_id, token=token)
    try:
        command_id = message["type"]  # ids are scoped per user and DAG
        await send(ws, {**message, "id": command_id})
        reply, got = await reply_to(ws, command_id)
        assert reply["type"] == "ack", reply
        return await _collect(ws, got, until)
    finally:
        await ws.close()


def _wait_event(server: Server, token: str, dag_id: str, until: Any) -> list[dict[str, Any]]:
    return asyncio.run(_events(server, token, dag_id, until))


def test_cancel_from_the_protocol_terminates_running_tasks_and_revokes_the_rest(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    canvas = chord([tasks.wait_for.s("cancel-a"), tasks.wait_for.s("cancel-b")], tasks.total.s())
    logged = len(celery_worker.log), [len(server.log) for server in redis_servers]
    run = launch(canvas)
    _signal("cancel-a:started")
    _signal("cancel-b:started")
    events = asyncio.run(
        _command(redis_servers[1], watcher, run.dag_id, {"type": "cancel_execution"}, _ended)
    )
    states = [e["state"] for e in events if e["type"] == "execution_state"]
    assert states == ["cancelling", "cancelled"]
    ids = labels(run.dag_id)
    for label in ("wait_for", "wait_for #2", "total"):
        assert Node.objects.get(dag_id=run.dag_id, node_id=ids[label]).status == "cancelled"
    for label in ("wait_for", "wait_for #2"):  # terminated by the prefork pool, not finished
        result = tasks.app.AsyncResult(ids[label])
        result.get(timeout=TIMEOUT, propagate=False)
        assert result.state == "REVOKED"
    all_events = events_until_end(redis_servers[0], watcher, run.dag_id)
    assert "completed" not in {e.get("status") for e in all_events}
    assert node_states(all_events, ids["total"]) == ["cancelled"]
    # Celery fails the chord's body (after logging the chord) once its header is revoked;
    # a cancel is no error, so neither the worker nor a server logs the chord's error.
    run.result.get(timeout=TIMEOUT, propagate=False)
    assert run.result.state == "FAILURE"
    assert "ChordError" in repr(run.result.result)
    output = celery_worker.log[logged[0] :]
    output += [line for s, n in zip(redis_servers, logged[1], strict=True) for line in s.log[n:]]
    chord_errors = [line for line in output if "ChordError" in line or "Chord '" in line]
    assert not chord_errors, "".join(output)


@pytest.mark.parametrize(("decision", "feedback"), [("approve", ""), ("modify", "shorter, please")])
def test_a_gate_stops_the_chain_until_approved_over_the_protocol(
    celery_worker: Worker, redis_servers: list[Server], watcher: str, decision: str, feedback: str
) -> None:
    canvas = chain(
        tasks.echo.si("draft"),
        tasks_gate().si(title="Publish the draft?", body="It is 3 pages."),
        tasks.echo.s(),
    )
    run = launch(canvas)
    opened = _wait_event(
        redis_servers[0], watcher, run.dag_id, lambda e: e["type"] == "human_gate_waiting"
    )
    ids = labels(run.dag_id)
    gate_id = ids["Publish the draft?"]
    assert opened[-1]["node_id"] == gate_id
    assert opened[-1]["presentation"] == {"title": "Publish the draft?", "body": "It is 3 pages."}
    assert node_states(opened, ids["echo #2"]) == []  # the chain waits at the gate
    message: dict[str, Any] = {"type": "human_decision", "node_id": gate_id, "decision": decision}
    if feedback:
        message["feedback"] = feedback
    asyncio.run(_command(redis_servers[1], watcher, run.dag_id, message, _ended))
    user = Dag.objects.get(pk=run.dag_id).gates.get().decided_by
    expected = {"decision": decision, "feedback": feedback, "decided_by": user}
    assert run.result.get(timeout=TIMEOUT) == expected  # what the next task was given
    events = events_until_end(redis_servers[0], watcher, run.dag_id)
    assert node_states(events, gate_id) == ["waiting", "completed"]
    assert events[-1]["state"] == "completed"


def test_a_rejected_gate_fails_the_run_and_skips_the_rest(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    canvas = chain(
        tasks.echo.si("draft"),
        tasks_gate().si(title="Review", body="draft"),
        tasks.echo.s(),
        tasks.add.si(1, 1),
    )
    run = launch(canvas)
    _wait_event(redis_servers[0], watcher, run.dag_id, lambda e: e["type"] == "human_gate_waiting")
    ids = labels(run.dag_id)
    message = {
        "type": "human_decision",
        "node_id": ids["Review"],
        "decision": "reject",
        "feedback": "too long",
    }
    events = asyncio.run(_command(redis_servers[1], watcher, run.dag_id, message, _ended))
    user = Dag.objects.get(pk=run.dag_id).gates.get().decided_by
    assert events[-1]["state"] == "failed"
    assert node_states(events, ids["Review"]) == ["failed"]
    assert node_states(events, ids["echo #2"]) == ["skipped"]
    assert node_states(events, ids["add"]) == ["skipped"]
    assert [e["message"] for e in events if e["type"] == "error"] == [
        f"Task 'Review' failed: rejected by {user}: too long",
        f"The run failed: 'Review' failed: rejected by {user}: too long",
    ]
    result = tasks.app.AsyncResult(ids["Review"])
    assert result.get(timeout=TIMEOUT, propagate=False) is not None
    assert result.state == "FAILURE"


def test_a_gate_with_assignees_and_a_quorum_hands_on_every_vote(
    celery_worker: Worker, redis_servers: list[Server], make_user: Any, make_token: Any
) -> None:
    ann = make_user("view_dag", "decide_gate", username="ann")
    bob = make_user("view_dag", "decide_gate", username="bob")
    canvas = chain(
        tasks.echo.si("draft"),
        tasks_gate().si(title="Two say yes", assignees=["ann", "bob"], quorum=2),
        tasks.echo.s(),
    )
    run = launch(canvas)
    token = str(make_token(ann))
    opened = _wait_event(
        redis_servers[0], token, run.dag_id, lambda e: e["type"] == "human_gate_waiting"
    )
    assert (opened[-1]["assignees"], opened[-1]["quorum"]) == (["ann", "bob"], 2)
    assert opened[-1]["presentation"] == {"title": "Two say yes", "body": ""}
    gate_id = opened[-1]["node_id"]
    vote = {"type": "human_decision", "node_id": gate_id, "decision": "approve"}
    voted = asyncio.run(
        _command(redis_servers[1], token, run.dag_id, vote, lambda e: e["type"] == "gate_voted")
    )
    assert voted[-1]["approvals"] == 1
    services.decide_gate(run.dag_id, gate_id, "modify", feedback="one page", actor=bob)
    given = run.result.get(timeout=TIMEOUT)  # what the next task was given
    assert (given["decision"], given["feedback"], given["decided_by"]) == (
        "modify",
        "one page",
        "ann, bob",
    )
    assert [(v["voter"], v["decision"]) for v in given["votes"]] == [
        ("ann", "approve"),
        ("bob", "modify"),
    ]


def tasks_gate() -> Any:
    from dagstream_app.celery import gate

    return gate


def test_a_worker_killed_mid_task_shows_the_redelivered_task_once(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    run = launch(chain(tasks.killed_once.si(), tasks.add.si(1, 2)))
    pid = int(_signal("killed_once:started"))
    ids = labels(run.dag_id)
    _wait_event(
        redis_servers[0],
        watcher,
        run.dag_id,
        lambda e: e["type"] == "node_state" and e["node_id"] == ids["killed_once"],
    )
    os.kill(pid, signal.SIGKILL)  # the pool process running it dies; acks_late redelivers
    # The pool replaces the process and the broker hands the task out again: on a
    # loaded 2-core machine that alone once took longer than TIMEOUT.
    assert run.result.get(timeout=4 * TIMEOUT) == 3
    events = events_until_end(redis_servers[0], watcher, run.dag_id)
    assert sorted(ids) == ["add", "killed_once"]
    states = [e for e in events if e["type"] == "node_state" and e["node_id"] == ids["killed_once"]]
    assert [e["status"] for e in states] == ["running", "running", "completed"]
    assert states[1]["metrics"]["redelivered"] is True
    assert node_states(events, ids["add"]) == ["running", "completed"]
    assert events[-1]["state"] == "completed"


def test_a_task_delivered_again_after_it_finished_stays_finished(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    run = launch(chain(tasks.dies_after_success.si(), tasks.add.si(1, 2)))
    assert _signal("dies:again") == "1"  # Celery ran it a second time ...
    assert _signal("dies:continuation") == "none"  # ... and that run sent nothing on
    assert run.result.get(timeout=TIMEOUT) == 3
    events = events_until_end(redis_servers[0], watcher, run.dag_id)
    ids = labels(run.dag_id)
    assert node_states(events, ids["dies_after_success"]) == ["running", "completed"]
    assert node_states(events, ids["add"]) == ["running", "completed"]
    assert events[-1]["state"] == "completed"


def test_pause_holds_tasks_not_started_and_resume_starts_them(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    run = launch(chain(tasks.wait_for.si("pause-a"), tasks.add.si(1, 2)))
    _signal("pause-a:started")
    ids = labels(run.dag_id)

    def noted(event: dict[str, Any]) -> bool:
        return event["type"] == "node_state" and "note" in (event.get("metrics") or {})

    events = asyncio.run(
        _command(redis_servers[1], watcher, run.dag_id, {"type": "pause_execution"}, noted)
    )
    assert [e["state"] for e in events if e["type"] == "execution_state"] == ["paused"]
    # The running task cannot be paused: it says so, and runs on.
    assert events[-1]["node_id"] == ids["wait_for"]
    assert "Celery cannot pause a running task" in events[-1]["metrics"]["note"]
    _release("pause-a")

    seen: set[str] = set()

    def held_after_the_first_completed(event: dict[str, Any]) -> bool:
        if event["type"] == "node_state":
            if "held" in (event.get("metrics") or {}):
                seen.add("held")
            if event["node_id"] == ids["wait_for"] and event["status"] == "completed":
                seen.add("completed")
        return seen == {"held", "completed"}

    events = _wait_event(redis_servers[0], watcher, run.dag_id, held_after_the_first_completed)
    held = [e for e in events if "held" in (e.get("metrics") or {})]
    assert [(e["node_id"], e["status"]) for e in held] == [(ids["add"], "pending")]
    assert node_states(events, ids["add"]) == ["pending"]  # held, not started
    events = asyncio.run(
        _command(redis_servers[1], watcher, run.dag_id, {"type": "resume_execution"}, _ended)
    )
    assert node_states(events, ids["add"]) == ["running", "completed"]
    assert events[-1]["state"] == "completed"
    assert run.result.get(timeout=TIMEOUT) == 3


def test_report_cost_past_the_budget_pauses_at_a_budget_gate(
    celery_worker: Worker, redis_servers: list[Server], watcher: str
) -> None:
    canvas = chain(tasks.spend.si(0.6), tasks.spend.si(0.6), tasks.add.si(1, 1))
    run = launch(canvas, budget=1.0)
    opened = _wait_event(
        redis_servers[0], watcher, run.dag_id, lambda e: e["type"] == "human_gate_waiting"
    )
    assert [(e["spent"], e["budget"]) for e in opened if e["type"] == "cost_update"] == [
        (0.6, 1.0),
        (1.2, 1.0),
    ]
    assert [e["state"] for e in opened if e["type"] == "execution_state"] == ["running", "paused"]
    ids = labels(run.dag_id)
    added = [e["mutation"] for e in opened if e["type"] == "dag_mutated"]
    assert added == [  # the gate, after the task whose cost reached the budget
        {"op": "add_node", "node": {"id": "budget-1", "label": "Budget reached"}},
        {"op": "add_edge", "from": ids["spend #2"], "to": "budget-1"},
    ]
    gate = opened[-1]
    assert (gate["node_id"], gate["presentation"]["title"]) == (
        "budget-1",
        "Budget reached: continue?",
    )
    assert (gate["presentation"]["spent"], gate["presentation"]["step"]) == (1.2, 1.0)
    assert node_states(opened, ids["add"]) in ([], ["pending"])  # not started: paused
    message = {"type": "human_decision", "node_id": "budget-1", "decision": "approve"}
    events = asyncio.run(_command(redis_servers[1], watcher, run.dag_id, message, _ended))
    assert [e["budget"] for e in events if e["type"] == "cost_update"] == [2.0]
    assert node_states(events, ids["add"])[-2:] == ["running", "completed"]
    assert node_states(events, "budget-1")[-1] == "completed"
    assert events[-1]["state"] == "completed"
    assert run.result.get(timeout=TIMEOUT) == 2
