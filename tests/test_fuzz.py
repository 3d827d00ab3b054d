"""Fuzzing client frames against a real daphne: every frame gets a coded reply, the
socket stays open, and nothing a frame says changes the run.

Hypothesis generates 10,000 frames (``FUZZ_EXAMPLES``) across every client message
type: well-formed commands with hostile field values (NUL characters, huge numbers,
wrong types, unknown fields), any JSON value, text that is not JSON, deep nesting and
binary frames. The user may do everything, so commands reach ``services``; the run
has ended and its gate is decided, so no frame may change it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from dagstream_app import protocol, services
from dagstream_app.models import CommandReceipt, Dag, Event, Gate, Node
from tests.servers import Server, configured_server
from tests.wsclient import TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10000"))
DAG_ID = "fuzzed"
NODES = ["extract", "review", "load"]
CODES = set(protocol.ErrorCode.__args__)  # type: ignore[attr-defined]
# Decisions, field names and ids a fuzzer would not find by chance.
WORDS = ["approve", "reject", "modify", "review", "extract", "id", "type", "last_seq"]


@pytest.fixture(scope="module")
def fuzz_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    """A server whose limits let every fuzzed frame through to the parser."""
    unlimited = {"RATE_LIMIT_PER_SECOND": 1e9, "RATE_LIMIT_BURST": 10**9}
    with configured_server(django_db_blocker, **unlimited, REPLAY_BUDGET_PER_MINUTE=10**9) as srv:
        yield srv


def _ended_run() -> None:
    services.create_dag(DAG_ID, name="fuzz", nodes=NODES, edges=[("extract", "review")])
    services.reports(DAG_ID).node_state("extract", "completed", output={"rows": 3})
    services.open_gate(DAG_ID, "review", {"title": "Ship it?"})
    services.decide_gate(DAG_ID, "review", "approve", actor=None)
    services.reports(DAG_ID).complete({"ok": True})


def _state() -> Any:
    """Everything a frame could change: the run, its nodes, gates, events and receipts."""
    return (
        list(Dag.objects.filter(pk=DAG_ID).values()),
        list(Node.objects.filter(dag_id=DAG_ID).order_by("node_id").values()),
        list(Gate.objects.filter(dag_id=DAG_ID).values()),
        Event.objects.filter(dag_id=DAG_ID).count(),
        CommandReceipt.objects.count(),
    )


# ------------------------------------------------------------------ frames

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(WORDS),
    st.just("\u0000"),
    st.text(alphabet="\u0000a\n\"\\'<>", max_size=10),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(WORDS)), inner, max_size=4),
    ),
    max_leaves=12,
)
# Each client type with each of its fields present, missing or replaced.
FIELDS: dict[str, list[str]] = {
    "human_decision": ["node_id", "decision", "feedback", "id"],
    "pause_execution": ["id"],
    "resume_execution": ["id"],
    "cancel_execution": ["id"],
    "resume": ["last_seq", "id"],
}
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "node_id": st.sampled_from(NODES) | st.text(min_size=1, max_size=300),
    "decision": st.sampled_from(["approve", "reject", "modify"]),
    "feedback": st.none() | st.text(max_size=50),
    "id": st.integers(min_value=-(2**64), max_value=2**64) | st.text(max_size=120) | st.none(),
    "last_seq": st.integers(min_value=-5, max_value=20) | st.integers(min_value=-(2**70)),
}


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(protocol.CLIENT_TYPES)))
    message: dict[str, Any] = {"type": kind}
    for name in FIELDS[kind]:
        choice = draw(st.sampled_from(["good", "good", "missing", "junk"]))
        if choice == "good":
            message[name] = draw(GOOD[name])
        elif choice == "junk":
            message[name] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        message[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    return message


def _text(message: Any) -> str:
    return json.dumps(message, ensure_ascii=False)


frames = st.one_of(
    commands().map(_text),
    commands().map(_text),
    commands().map(_text),
    json_values.map(_text),
    st.text(max_size=200),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.binary(max_size=100),
)


# ------------------------------------------------------------------- the test


def _reply(ws: ClientConnection) -> dict[str, Any]:
    """The reply to the frame just sent: the first ack or error (replayed events skipped)."""
    while True:
        data = json.loads(ws.recv(timeout=TIMEOUT))
        for message in data if isinstance(data, list) else [data]:
            if message["type"] in ("ack", "error"):
                return message  # type: ignore[no-any-return]
            assert "seq" in message or message["type"] in ("snapshot", "keepalive"), message


def test_no_frame_breaks_the_socket_or_changes_the_run(
    fuzz_server: Server, make_user: Any, make_token: Any
) -> None:
    _ended_run()
    token = make_token(make_user("view_dag", "decide_gate", "control_dag"))
    before = _state()
    kinds: Counter[str] = Counter()
    with connect(
        f"{fuzz_server.ws}/ws/dags/{DAG_ID}/",
        origin=fuzz_server.http,  # type: ignore[arg-type]
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=2**24,
        open_timeout=TIMEOUT,
        # Its pings draw from the random module in a thread of their own, which
        # Hypothesis would take for a strategy using random.
        ping_interval=None,
    ) as ws:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(frame=frames)
        def one_frame(frame: str | bytes) -> None:
            ws.send(frame)
            reply = _reply(ws)
            kind = "binary" if isinstance(frame, bytes) else _kind(frame)
            kinds[kind] += 1
            if reply["type"] == "error":
                assert reply["code"] in CODES, reply
                assert reply["code"] != "rate_limited", reply
                assert isinstance(reply["message"], str) and reply["message"]
            else:
                assert kind == "resume", (frame, reply)  # only a resume may succeed
            assert _state() == before, frame

        one_frame()
        ws.send(_text({"type": "resume", "last_seq": 0, "id": "still-open"}))
        assert _reply(ws) == {"type": "ack", "id": "still-open"}
    assert kinds.total() >= EXAMPLES
    assert all(kinds[kind] >= EXAMPLES // 50 for kind in protocol.CLIENT_TYPES), kinds


def _kind(frame: str) -> str:
    """The client type a frame claims, for counting coverage."""
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):
        return "not json"
    kind = message.get("type") if isinstance(message, dict) else None
    if isinstance(kind, str) and kind in protocol.CLIENT_TYPES:
        return kind
    return "other json"
