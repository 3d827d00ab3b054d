"""The JSON consumer through real daphne: refusals, snapshot, resume, errors, commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dagstream_app import services
from dagstream_app.errors import CLOSE_TOO_MANY_FRAMES
from dagstream_app.models import Dag, Gate
from tests.servers import Server, configured_server
from tests.wsclient import close_code, open_ws, recv, send, until_closed

pytestmark = pytest.mark.django_db(transaction=True)

NODES = [{"id": "extract", "label": "Extract"}, {"id": "load", "label": "Load"}]


@pytest.fixture
def dag(db: Any) -> Dag:
    return services.create_dag("etl-1", name="etl", nodes=NODES, edges=[("extract", "load")])


@pytest.fixture
def viewer(make_user, make_token) -> str:
    return make_token(make_user("view_dag"))


@pytest.fixture
def operator(make_user, make_token) -> str:
    return make_token(make_user("view_dag", "decide_gate", "control_dag"))


# ---------------------------------------------------------------- refusals


async def test_anonymous_is_closed_4001(server: Server, dag: Dag) -> None:
    ws = await open_ws(server, dag.dag_id)
    assert await close_code(ws) == 4001


async def test_bad_token_is_closed_4001(server: Server, dag: Dag) -> None:
    ws = await open_ws(server, dag.dag_id, token="dgs_not-a-real-token")
    assert await close_code(ws) == 4001


async def test_without_view_permission_is_closed_4003(
    server: Server, dag: Dag, make_user, make_token
) -> None:
    token = await sync_to_async(make_token)(await sync_to_async(make_user)())
    ws = await open_ws(server, dag.dag_id, token=token)
    assert await close_code(ws) == 4003


async def test_unknown_dag_is_closed_4004(server: Server, dag: Dag, viewer: str) -> None:
    ws = await open_ws(server, "no-such-dag", token=viewer)
    assert await close_code(ws) == 4004


async def test_viewers_of_a_deleted_run_are_closed_4004(
    server: Server, dag: Dag, viewer: str
) -> None:
    await sync_to_async(services.reports(dag.dag_id).complete)()
    ws = await open_ws(server, dag.dag_id, token=viewer)
    assert (await recv(ws))["type"] == "snapshot"
    # Deleted by another process: the server's idle check finds the run gone.
    await sync_to_async(services.delete_dag)(dag.dag_id)
    assert await close_code(ws) == 4004


async def test_viewers_hear_of_a_deletion_through_the_layer(dag: Dag, viewer: str) -> None:
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    await sync_to_async(services.reports(dag.dag_id).complete)()
    comm = WebsocketCommunicator(
        application,
        f"/ws/dags/{dag.dag_id}/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"authorization", f"Bearer {viewer}".encode())],
    )
    connected, _ = await comm.connect()
    assert connected
    assert json.loads(await comm.receive_from())["type"] == "snapshot"
    await sync_to_async(services.delete_dag)(dag.dag_id)
    assert (await comm.receive_output(timeout=5))["code"] == 4004
    await comm.disconnect()


async def test_foreign_origin_is_refused_at_handshake(
    server: Server, dag: Dag, viewer: str
) -> None:
    with pytest.raises(InvalidStatus) as exc:
        await open_ws(server, dag.dag_id, token=viewer, origin="http://evil.example")
    assert exc.value.response.status_code == 403


async def test_missing_origin_is_refused_at_handshake(
    server: Server, dag: Dag, viewer: str
) -> None:
    with pytest.raises(InvalidStatus) as exc:
        await open_ws(server, dag.dag_id, token=viewer, origin=None)
    assert exc.value.response.status_code == 403


# --------------------------------------------------------- snapshot, resume


async def test_snapshot_comes_first(server: Server, dag: Dag, viewer: str) -> None:
    ws = await open_ws(server, dag.dag_id, token=viewer)
    snap = await recv(ws)
    assert snap["type"] == "snapshot"
    assert snap["seq"] == 1
    assert "seq" in snap and snap["dag"]["last_seq"] == 1
    assert [n["id"] for n in snap["dag"]["nodes"]] == ["extract", "load"]
    assert snap["dag"]["edges"] == [{"from": "extract", "to": "load"}]
    await ws.close()


async def _events(dag_id: str, count: int) -> None:
    """Append ``count`` node_state events from this process (committed, not pushed)."""
    for i in range(count):
        await sync_to_async(services.reports(dag_id).node_state)(
            "extract", "running" if i % 2 == 0 else "completed"
        )


async def test_resume_within_window_replays_exactly_the_missed_events(
    server: Server, dag: Dag, operator: str
) -> None:
    await _events(dag.dag_id, 10)  # seqs 2..11
    ws = await open_ws(server, dag.dag_id, token=operator, query="last_seq=5")
    replayed = [await recv(ws) for _ in range(6)]
    assert [m["seq"] for m in replayed] == [6, 7, 8, 9, 10, 11]
    assert all(m["type"] == "node_state" and m["dag_id"] == dag.dag_id for m in replayed)
    # The next thing is live: a command's event follows the replay, nothing in between.
    await send(ws, {"type": "pause_execution", "id": "p1"})
    later = [await recv(ws), await recv(ws)]
    assert {m["type"] for m in later} == {"ack", "execution_state"}
    assert next(m for m in later if m["type"] == "execution_state")["seq"] == 12
    await ws.close()


async def test_resume_at_current_seq_sends_nothing_to_replay(
    server: Server, dag: Dag, operator: str
) -> None:
    ws = await open_ws(server, dag.dag_id, token=operator, query="last_seq=1")
    await send(ws, {"type": "pause_execution", "id": 1})
    first = [await recv(ws), await recv(ws)]
    assert sorted(m["type"] for m in first) == ["ack", "execution_state"]
    await ws.close()


async def test_resume_beyond_window_gets_a_snapshot(
    server_small_window: Server, dag: Dag, viewer: str
) -> None:
    await _events(dag.dag_id, 10)  # last seq 11; window 5
    ws = await open_ws(server_small_window, dag.dag_id, token=viewer, query="last_seq=3")
    snap = await recv(ws)
    assert snap["type"] == "snapshot" and snap["seq"] == 11
    await ws.close()


async def test_resume_of_events_no_longer_retained_gets_a_snapshot(
    server: Server, dag: Dag, viewer: str
) -> None:
    await _events(dag.dag_id, 4)
    await sync_to_async(lambda: dag.events.filter(seq__lte=3).delete())()  # pruned
    ws = await open_ws(server, dag.dag_id, token=viewer, query="last_seq=2")
    snap = await recv(ws)
    assert snap["type"] == "snapshot" and snap["seq"] == 5
    await ws.close()


async def test_resume_from_the_future_gets_a_snapshot(
    server: Server, dag: Dag, viewer: str
) -> None:
    ws = await open_ws(server, dag.dag_id, token=viewer, query="last_seq=999")
    snap = await recv(ws)
    assert snap["type"] == "snapshot" and snap["seq"] == 1
    await ws.close()


async def test_resume_message_replays_mid_connection(server: Server, dag: Dag, viewer: str) -> None:
    await _events(dag.dag_id, 3)
    ws = await open_ws(server, dag.dag_id, token=viewer)
    assert (await recv(ws))["seq"] == 4  # snapshot
    await send(ws, {"type": "resume", "last_seq": 1, "id": "r"})
    got = [await recv(ws) for _ in range(4)]
    assert [m.get("seq") for m in got] == [2, 3, 4, None]
    assert got[-1] == {"type": "ack", "id": "r"}
    await ws.close()


async def test_batch_mode_sends_arrays_in_order(server: Server, dag: Dag, viewer: str) -> None:
    await _events(dag.dag_id, 30)
    ws = await open_ws(server, dag.dag_id, token=viewer, query="last_seq=1&batch=1")
    batch = await recv(ws)
    assert isinstance(batch, list)
    assert [m["seq"] for m in batch] == list(range(2, 32))
    await ws.close()


# --------------------------------------------------- bad frames, error codes


async def _reply_to(server: Server, dag: Dag, token: str, frame: str | bytes) -> dict[str, Any]:
    ws = await open_ws(server, dag.dag_id, token=token)
    seq = (await recv(ws))["seq"]  # snapshot
    await ws.send(frame)
    reply = await recv(ws)
    # The socket stays open and usable after any bad frame.
    await send(ws, {"type": "resume", "last_seq": seq, "id": "still-open"})
    assert await recv(ws) == {"type": "ack", "id": "still-open"}
    await ws.close()
    assert "seq" not in reply
    return reply


async def _unchanged(dag: Dag) -> None:
    fresh = await sync_to_async(Dag.objects.get)(pk=dag.pk)
    assert (fresh.status, fresh.last_seq) == ("running", 1)


async def test_invalid_json_is_answered_invalid_json(
    server: Server, dag: Dag, operator: str
) -> None:
    reply = await _reply_to(server, dag, operator, "{not json")
    assert reply["type"] == "error" and reply["code"] == "invalid_json"
    await _unchanged(dag)


async def test_binary_frame_is_answered_invalid_message(
    server: Server, dag: Dag, operator: str
) -> None:
    reply = await _reply_to(server, dag, operator, b'{"type": "pause_execution"}')
    assert reply["code"] == "invalid_message"
    await _unchanged(dag)


async def test_unknown_type_is_answered_unknown_type(
    server: Server, dag: Dag, operator: str
) -> None:
    reply = await _reply_to(server, dag, operator, json.dumps({"type": "explode", "id": 7}))
    assert (reply["code"], reply["id"]) == ("unknown_type", 7)
    await _unchanged(dag)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "human_decision", "node_id": "load", "decision": "maybe"},
        {"type": "human_decision", "decision": "approve"},
        {"type": "pause_execution", "extra": True},
        {"type": "resume", "last_seq": -1},
        ["not", "an", "object"],
    ],
    ids=["bad-decision", "missing-field", "unknown-field", "negative-seq", "array"],
)
async def test_wrong_fields_are_answered_invalid_message(
    server: Server, dag: Dag, operator: str, frame: Any
) -> None:
    reply = await _reply_to(server, dag, operator, json.dumps(frame))
    assert reply["code"] == "invalid_message"
    assert reply["message"]
    await _unchanged(dag)


async def test_deeply_nested_json_is_answered_and_the_socket_stays_open(
    server: Server, dag: Dag, operator: str
) -> None:
    ws = await open_ws(server, dag.dag_id, token=operator)
    await recv(ws)  # snapshot
    await ws.send("[" * 1000 + "]" * 1000)  # msgspec raises RecursionError on this
    assert (await recv(ws))["code"] == "invalid_json"
    await send(ws, {"type": "pause_execution", "id": "after"})
    assert await recv(ws) == {"type": "ack", "id": "after"}  # still open, still working
    await ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "pause_execution", "id": "a\u0000b"},
        {"type": "human_decision", "node_id": "lo\u0000ad", "decision": "approve", "id": 1},
        {
            "type": "human_decision",
            "node_id": "load",
            "decision": "modify",
            "feedback": "x\u0000",
            "id": 2,
        },
    ],
    ids=["id", "node-id", "feedback"],
)
async def test_nul_characters_are_refused_and_change_nothing(
    server: Server, dag: Dag, operator: str, frame: dict[str, Any]
) -> None:
    await sync_to_async(services.open_gate)(dag.dag_id, "load", {"title": "Load?"})
    text = json.dumps(frame)  # the NUL travels as the JSON escape \\u0000
    reply = await _reply_to(server, dag, operator, text)
    assert reply["code"] == "invalid_message" and "NUL" in reply["message"]
    fresh = await sync_to_async(Dag.objects.get)(pk=dag.pk)
    assert (fresh.status, fresh.last_seq) == ("running", 3)  # the gate's two events, no more
    gate = await sync_to_async(Gate.objects.get)(dag=dag, node_id="load")
    assert gate.status == "pending"


async def test_oversized_frame_is_answered_too_large(
    server: Server, dag: Dag, operator: str
) -> None:
    frame = json.dumps({"type": "pause_execution", "id": "x", "pad": "a" * 70_000})
    reply = await _reply_to(server, dag, operator, frame)
    assert reply["code"] == "too_large"
    await _unchanged(dag)


async def test_a_flood_is_answered_rate_limited_once_then_closed_4008(
    server: Server, dag: Dag, operator: str
) -> None:
    ws = await open_ws(server, dag.dag_id, token=operator)
    await recv(ws)  # snapshot
    for i in range(200):  # cheap frames: refused before any database work
        await send(ws, {"type": "explode", "id": i})
    replies, code = await until_closed(ws)
    codes = [r["code"] for r in replies]
    # Burst 40 (and what refills meanwhile) read and answered, in order ...
    assert 40 <= codes.count("unknown_type") < 60
    answered = [r["id"] for r in replies if r["code"] == "unknown_type"]
    assert answered == list(range(len(answered)))
    # ... then one rate_limited for the rest, dropped unread, and the flooder is closed.
    assert codes[len(answered) :] == ["rate_limited"]
    assert code == CLOSE_TOO_MANY_FRAMES
    await _unchanged(dag)


async def test_decision_without_permission_is_forbidden(
    server: Server, dag: Dag, viewer: str
) -> None:
    await sync_to_async(services.open_gate)(dag.dag_id, "load", {"title": "Load?"})
    reply = await _reply_to(
        server,
        dag,
        viewer,
        json.dumps({"type": "human_decision", "node_id": "load", "decision": "approve", "id": "d"}),
    )
    assert (reply["code"], reply["id"]) == ("forbidden", "d")
    gate = await sync_to_async(Gate.objects.get)(dag=dag, node_id="load")
    assert gate.status == "pending"


async def test_control_without_permission_is_forbidden(
    server: Server, dag: Dag, make_user, make_token
) -> None:
    token = await sync_to_async(make_token)(
        await sync_to_async(make_user)("view_dag", "decide_gate")
    )
    reply = await _reply_to(server, dag, token, json.dumps({"type": "cancel_execution"}))
    assert reply["code"] == "forbidden"
    await _unchanged(dag)


async def test_decision_on_missing_gate_is_not_found(
    server: Server, dag: Dag, operator: str
) -> None:
    reply = await _reply_to(
        server,
        dag,
        operator,
        json.dumps({"type": "human_decision", "node_id": "nope", "decision": "approve"}),
    )
    assert reply["code"] == "not_found"
    await _unchanged(dag)


async def test_resume_of_running_dag_is_conflict(server: Server, dag: Dag, operator: str) -> None:
    reply = await _reply_to(
        server, dag, operator, json.dumps({"type": "resume_execution", "id": 3})
    )
    assert (reply["code"], reply["id"]) == ("conflict", 3)
    await _unchanged(dag)


# ------------------------------------------------------------ acks, privacy


async def test_ack_echoes_id_and_replies_reach_only_the_sender(
    server: Server, dag: Dag, operator: str, viewer: str
) -> None:
    sender = await open_ws(server, dag.dag_id, token=operator)
    other = await open_ws(server, dag.dag_id, token=viewer)
    await recv(sender)
    await recv(other)
    await sender.send("garbage")
    assert (await recv(sender))["code"] == "invalid_json"
    await send(sender, {"type": "pause_execution", "id": "abc"})
    got = [await recv(sender), await recv(sender)]
    assert {"type": "ack", "id": "abc"} in got
    # The other client's next message is the event itself: no error, no ack.
    event = await recv(other)
    assert (event["type"], event["state"], event["seq"]) == ("execution_state", "paused", 2)
    await sender.close()
    await other.close()


async def test_lost_last_event_is_found_by_the_idle_check(
    server: Server, dag: Dag, viewer: str
) -> None:
    ws = await open_ws(server, dag.dag_id, token=viewer)
    assert (await recv(ws))["type"] == "snapshot"
    # Written by this process: the server's in-memory layer never hears of it.
    await sync_to_async(services.reports(dag.dag_id).node_state)("extract", "running")
    event = await recv(ws, timeout=10)
    assert (event["seq"], event["node_id"], event["status"]) == (2, "extract", "running")
    await ws.close()


async def test_bearer_and_session_both_authenticate(server: Server, dag: Dag, make_user) -> None:
    from django.test import Client

    user = await sync_to_async(make_user)("view_dag", username="sess", password="pw-for-tests")
    client = Client()
    assert await sync_to_async(client.login)(username="sess", password="pw-for-tests")
    cookie = client.cookies["sessionid"].value
    from websockets.asyncio.client import connect

    async with connect(
        f"{server.ws}/ws/dags/{dag.dag_id}/",
        origin=server.http,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={cookie}"},
    ) as ws:
        assert (await recv(ws))["type"] == "snapshot"
    assert user.is_authenticated


@pytest.fixture(scope="session")
def server_small_window(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, REPLAY_WINDOW=5) as srv:
        yield srv


def test_override_settings_is_respected_by_config() -> None:
    from dagstream_app.conf import config

    with override_settings(DAGSTREAM={"REPLAY_WINDOW": 3}):
        assert config().replay_window == 3
    assert config().replay_window == 10_000


@pytest.fixture(scope="session")
def server_small_lag(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, MAX_LAG=5) as srv:
        yield srv


async def test_client_too_far_behind_is_closed_4013_then_resumes(
    server_small_lag: Server, dag: Dag, viewer: str
) -> None:
    ws = await open_ws(server_small_lag, dag.dag_id, token=viewer)
    assert (await recv(ws))["seq"] == 1
    # Ten events the server was not told about: its idle check finds it 10 behind.
    await _events(dag.dag_id, 10)
    assert await close_code(ws) == 4013
    # 4013 means "try again later". Still too far behind to replay, the client
    # resumes from a snapshot rather than being closed again.
    ws = await open_ws(server_small_lag, dag.dag_id, token=viewer, query="last_seq=1")
    snap = await recv(ws)
    assert (snap["type"], snap["seq"]) == ("snapshot", 11)
    # A client within reach replays instead.
    await _events(dag.dag_id, 3)
    near = await open_ws(server_small_lag, dag.dag_id, token=viewer, query="last_seq=11&batch=1")
    assert [m["seq"] for m in await recv(near)] == [12, 13, 14]
    await ws.close()
    await near.close()


@pytest.fixture(scope="session")
def server_with_hook(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(
        django_db_blocker, PERMISSION_HOOK="tests.hooks.hide_secret_dags"
    ) as srv:
        yield srv


async def test_permission_hook_decides_per_dag(
    server_with_hook: Server, dag: Dag, viewer: str
) -> None:
    await sync_to_async(services.create_dag)("hidden", name="secret")
    ws = await open_ws(server_with_hook, dag.dag_id, token=viewer)
    assert (await recv(ws))["type"] == "snapshot"  # the hook is asked about this DAG
    await ws.close()
    ws = await open_ws(server_with_hook, "hidden", token=viewer)
    assert await close_code(ws) == 4003


@pytest.fixture(scope="session")
def server_small_budget(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, REPLAY_BUDGET_PER_MINUTE=100) as srv:
        yield srv


async def test_repeated_resumes_cost_the_client_not_the_server(
    server_small_budget: Server, dag: Dag, viewer: str
) -> None:
    await _events(dag.dag_id, 60)
    ws = await open_ws(server_small_budget, dag.dag_id, token=viewer, query="batch=1")
    assert (await recv(ws))["seq"] == 61  # the first stream is always sent
    await send(ws, {"type": "resume", "last_seq": 1, "id": "again"})
    replayed = await recv(ws)
    assert [m["seq"] for m in replayed] == list(range(2, 62))
    assert await recv(ws) == {"type": "ack", "id": "again"}
    # 60 more events of replay within the minute: past the budget of 100.
    await send(ws, {"type": "resume", "last_seq": 1, "id": "greedy"})
    reply = await recv(ws)
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "rate_limited", "greedy")
    await send(ws, {"type": "pause_execution", "id": "still-open"})
    assert (await recv(ws))["type"] in ("ack", "error")  # answered: the socket lives on
    await ws.close()


@pytest.fixture(scope="session")
def server_chatty(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with configured_server(django_db_blocker, KEEPALIVE_SECONDS=0.5) as srv:
        yield srv


async def test_a_quiet_stream_gets_keepalives(server_chatty: Server, dag: Dag, viewer: str) -> None:
    ws = await open_ws(server_chatty, dag.dag_id, token=viewer)
    assert (await recv(ws))["type"] == "snapshot"
    assert await recv(ws, timeout=10) == {"type": "keepalive"}
    assert await recv(ws, timeout=10) == {"type": "keepalive"}
    await ws.close()
    page = await open_ws(
        server_chatty, dag.dag_id, token=viewer, path=f"/ws/dags/{dag.dag_id}/html/"
    )
    await asyncio.wait_for(page.recv(), 10)  # the page's regions
    assert 'id="ds-keepalive"' in str(await asyncio.wait_for(page.recv(), 10))
    await page.close()


async def test_a_frame_over_daphnes_own_limit_closes_with_1009(
    server: Server, dag: Dag, viewer: str
) -> None:
    """As docs/protocol.md says: daphne refuses it with 1009 ("message too big"), the
    code the standard names, not a drop without a close frame (1006)."""
    ws = await open_ws(server, dag.dag_id, token=viewer)
    assert (await recv(ws))["type"] == "snapshot"
    with contextlib.suppress(ConnectionClosed):  # dropped while the frame is still going out
        await ws.send("x" * (2 * 1024 * 1024))
    assert await close_code(ws) == 1009


async def test_work_shared_by_viewers_survives_one_of_them_leaving() -> None:
    from dagstream_app.consumers import shared_result

    message: dict[str, Any] = {"type": "dagstream.events", "events": []}
    release = asyncio.Event()
    runs = 0

    async def render() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "html"

    leaving = asyncio.ensure_future(shared_result(message, "k", render))
    staying = asyncio.ensure_future(shared_result(message, "k", render))
    await asyncio.sleep(0)  # both are waiting on the one render
    leaving.cancel()
    release.set()
    assert await staying == "html"
    assert runs == 1


def test_sockets_of_one_credential_come_due_together_and_users_spread_out(
    monkeypatch: Any, settings: Any
) -> None:
    from dagstream_app import consumers
    from dagstream_app.auth import CREDENTIAL
    from dagstream_app.consumers import base

    settings.DAGSTREAM = {"REVALIDATE_SECONDS": 5.0}
    now = [1000.0]
    monkeypatch.setattr(base.time, "monotonic", lambda: now[0])

    def due_tick(token: str, connected: float) -> float:
        """The first tick (once a second) at which a socket that connected then comes due."""
        consumer = consumers.DagJsonConsumer()
        consumer.scope = {CREDENTIAL: ("token", token), "user": None}
        consumer.checked = connected
        for tick in range(1001, 1012):
            now[0] = float(tick)
            if consumer.recheck_due():
                return now[0]
        raise AssertionError("never due")

    # Two tabs of one token, connected 0.6 s apart: re-read on the same tick, together.
    assert due_tick("t-1", 1000.1) == due_tick("t-1", 1000.7)
    # Within the period after connecting, whoever it is.
    ticks = [due_tick(f"t-{i}", 1000.5) for i in range(40)]
    assert all(1000.5 < tick <= 1000.5 + 5 + 1 for tick in ticks)
    assert len(set(ticks)) >= 3  # many users who connected together: spread out


async def test_a_socket_found_gone_by_a_send_still_disconnects_and_stops_the_flush(
    make_user: Any, settings: Any
) -> None:
    """The run list's throttled flush stops with its socket, however the socket went."""
    from autobahn.exception import Disconnected

    from dagstream_app.consumers import DagIndexConsumer

    settings.DAGSTREAM = {"KEEPALIVE_SECONDS": 0}  # every tick sends a keep-alive
    user = await sync_to_async(make_user)("view_dag")
    client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await client.put({"type": "websocket.connect"})

    async def server_send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            raise Disconnected("Attempt to send on a closed protocol")  # as daphne's does

    consumer = DagIndexConsumer()
    scope = {"type": "websocket", "path": "/ws/dags/", "query_string": b"ids=r-1", "user": user}
    running = asyncio.ensure_future(consumer(scope, client.get, server_send))
    async with asyncio.timeout(10):
        while not consumer.ready:
            await asyncio.sleep(0.01)
    consumer.inbox.put({"type": "dagstream.dag_changed", "dag_id": "r-1", "seq": 2})
    consumer.inbox.put({"type": "dagstream.tick"})  # its keep-alive finds the socket gone
    await asyncio.wait_for(running, 10)  # the consumer ends without websocket.disconnect
    flush = consumer.flush_task
    assert flush is not None
    await asyncio.sleep(0)
    assert flush.cancelled() and not consumer.ready
