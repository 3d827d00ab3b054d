"""The dashboard's HTML stream and the run list's stream."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from dagstream_app import live, render, services
from dagstream_app.models import Dag
from tests.servers import Server
from tests.wsclient import TIMEOUT, close_code, open_ws

pytestmark = pytest.mark.django_db(transaction=True)

NODES = [{"id": "extract", "label": "Extract"}, {"id": "load", "label": "Load"}]
SEQ = re.compile(r'id="ds-seq" data-seq="(\d+)"')
ENTRY = re.compile(r'<li id="ev-(\d+)"')


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Users are made per test; PBKDF2 would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dag(db: Any) -> Dag:
    live.cache.clear()
    return services.create_dag("etl-1", name="etl", nodes=NODES, edges=[("extract", "load")])


@pytest.fixture
def viewer(make_user, make_token) -> str:
    return make_token(make_user("view_dag"))


async def html_ws(server: Server, dag_id: str, token: str | None, query: str = "") -> Any:
    return await open_ws(server, dag_id, token=token, path=f"/ws/dags/{dag_id}/html/", query=query)


async def recv_text(ws: Any) -> str:
    return str(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def test_without_view_permission_is_closed_4003(
    server: Server, dag: Dag, make_user, make_token
) -> None:
    token = await sync_to_async(make_token)(await sync_to_async(make_user)())
    assert await close_code(await html_ws(server, dag.dag_id, token)) == 4003


async def test_anonymous_and_unknown_are_closed(server: Server, dag: Dag, viewer: str) -> None:
    assert await close_code(await html_ws(server, dag.dag_id, None)) == 4001
    assert await close_code(await html_ws(server, "nope", viewer)) == 4004


async def test_without_last_seq_every_region_is_rerendered(
    server: Server, dag: Dag, viewer: str
) -> None:
    ws = await html_ws(server, dag.dag_id, viewer)
    html = await recv_text(ws)
    assert 'id="graph" hx-swap-oob="true"' in html
    assert 'id="timeline-card"' in html and SEQ.search(html).group(1) == "1"  # type: ignore[union-attr]
    await ws.close()


async def test_resume_sends_exactly_the_missed_events_then_live(
    server: Server, dag: Dag, viewer: str
) -> None:
    for status in ("running", "completed"):
        await sync_to_async(services.reports(dag.dag_id).node_state)("extract", status)
    ws = await html_ws(server, dag.dag_id, viewer, query="last_seq=1")
    html = await recv_text(ws)
    assert ENTRY.findall(html) == ["2", "3"]
    assert SEQ.findall(html) == ["3"]
    assert 'data-status="completed"' in html
    # Written by this process: the server notices on its idle re-check.
    await sync_to_async(services.reports(dag.dag_id).edge_active)("extract", "load")
    html = await recv_text(ws)
    assert ENTRY.findall(html) == ["4"] and SEQ.findall(html) == ["4"]
    await ws.close()


async def test_resume_at_current_seq_sends_nothing(server: Server, dag: Dag, viewer: str) -> None:
    ws = await html_ws(server, dag.dag_id, viewer, query="last_seq=1")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), 1.5)
    await ws.close()


# --------------------------------------------------- in process, live pushes


def communicator(path: str, token: str) -> WebsocketCommunicator:
    from project.asgi import application

    return WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"origin", b"http://127.0.0.1"),
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    )


async def test_live_events_arrive_in_order_with_one_marker_each(dag: Dag, viewer: str) -> None:
    comm = communicator(f"/ws/dags/{dag.dag_id}/html/?last_seq=1", viewer)
    connected, _ = await comm.connect()
    assert connected
    await sync_to_async(services.reports(dag.dag_id).node_state)("extract", "running")
    await sync_to_async(services.reports(dag.dag_id).cost)(spent=1.0)
    # Two events may come as two frames or, conflated, as one; either way each
    # frame carries one seq marker, that of its newest entry.
    entries: list[str] = []
    frames: list[str] = []
    while "3" not in entries:
        frame = await comm.receive_from(timeout=TIMEOUT)
        frames.append(frame)
        entries += ENTRY.findall(frame)
        assert SEQ.findall(frame) == [ENTRY.findall(frame)[-1]]
    assert entries == ["2", "3"] and 'id="cost"' in frames[-1]
    await comm.disconnect()


async def test_list_rows_update_live_and_new_runs_raise_a_notice(dag: Dag, viewer: str) -> None:
    comm = communicator(f"/ws/dags/?ids={dag.dag_id}", viewer)
    connected, _ = await comm.connect()
    assert connected
    await sync_to_async(services.reports(dag.dag_id).node_state)("extract", "completed")
    await sync_to_async(services.reports(dag.dag_id).node_state)("load", "running")
    html = await comm.receive_from(timeout=TIMEOUT)
    # Throttled: both changes arrive as one row.
    assert html.count("<tr ") == 1 and 'hx-swap-oob="true"' in html and "1 / 2" in html
    await sync_to_async(services.create_dag)("other-run", name="other")
    html = await comm.receive_from(timeout=TIMEOUT)
    assert 'id="ds-list-notice"' in html and "1 new run started" in html
    assert "<tr " not in html
    await comm.disconnect()


async def test_list_socket_refuses_without_view(dag: Dag, make_user, make_token) -> None:
    token = await sync_to_async(make_token)(await sync_to_async(make_user)())
    comm = communicator("/ws/dags/", token)
    await comm.connect()
    assert (await comm.receive_output(timeout=TIMEOUT))["code"] == 4003
    await comm.disconnect()


async def test_list_socket_shows_only_what_the_hook_lets_the_user_see(
    dag: Dag, viewer: str, settings: Any
) -> None:
    settings.DAGSTREAM = {"PERMISSION_HOOK": "tests.hooks.hide_secret_dags"}
    await sync_to_async(services.create_dag)("covert", name="secret", nodes=["n"])
    # A hook that refuses to answer about "no DAG" no longer closes the list socket.
    comm = communicator(f"/ws/dags/?ids={dag.dag_id},covert", viewer)
    connected, _ = await comm.connect()
    assert connected
    await sync_to_async(services.reports("covert").node_state)("n", "running")
    await sync_to_async(services.create_dag)("covert-2", name="secret")
    await sync_to_async(services.reports(dag.dag_id).node_state)("extract", "running")
    html = await comm.receive_from(timeout=TIMEOUT)
    assert html.count("<tr ") == 1 and "etl-1" in html
    assert "covert" not in html and "ds-list-notice" not in html
    await sync_to_async(services.create_dag)("public-run", name="public")
    html = await comm.receive_from(timeout=TIMEOUT)
    assert "1 new run started" in html
    await comm.disconnect()


async def test_a_deleted_run_leaves_the_list(dag: Dag, viewer: str) -> None:
    comm = communicator(f"/ws/dags/?ids={dag.dag_id}", viewer)
    connected, _ = await comm.connect()
    assert connected
    await sync_to_async(services.reports(dag.dag_id).complete)()
    assert "Completed" in await comm.receive_from(timeout=TIMEOUT)
    await sync_to_async(services.delete_dag)(dag.dag_id)
    html = await comm.receive_from(timeout=TIMEOUT)
    assert html == f'<tr id="{render.dom_id("run", dag.dag_id)}" hx-swap-oob="delete"></tr>'
    await comm.disconnect()
