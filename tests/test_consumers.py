"""The JSON consumer through real daphne: refusals, snapshot, resume, errors, commands."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from websockets.exceptions import InvalidStatus

from dagstream_app import services
from dagstream_app.models import Dag, Gate
from tests.conftest import Server
from tests.wsclient import close_code, open_ws, recv, send

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


async def test_foreign_origin_is_refused_at_handshake(server: Server, dag: Dag, viewer: str) -> None:
    with pytest.raises(InvalidStatus) as exc:
        await open_ws(server, dag.dag_id, token=viewer, origin="http://evil.example")
    assert exc.value.response.status_code == 403


async def test_missing_origin_is_refused_at_handshake(server: Server, dag: Dag, viewer: str) -> None:
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

