"""Protocol v1: every server event and client command, declared once.

Each message is a :mod:`msgspec` struct. The same declarations validate client
frames and engine inputs and export the JSON Schema (``manage.py
dagstream_schema``). Events are stored as (type, payload) and sent as one JSON
object: ``{"type", "dag_id", "seq", "ts", **payload}``. The views of a DAG's
state (:class:`DagSnapshot` and its nodes, edges and gates) are declared here
too: the ``snapshot`` reply sends them, and the dashboard renders them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import msgspec

from dagstream_app.errors import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHENTICATED,
    ErrorCode,
    InvalidDelta,
    InvalidJson,
    UnknownType,
)

PROTOCOL_VERSION = 1

DAG_ID_CHARS = r"[A-Za-z0-9_.-]{1,100}"  # a DAG id, unanchored (routes embed it)
DAG_ID_PATTERN = rf"^{DAG_ID_CHARS}$"
DAG_ID_RE = re.compile(DAG_ID_PATTERN)

NodeStatus = Literal["pending", "running", "waiting", "completed", "failed", "skipped", "cancelled"]
NODE_STATUSES: tuple[str, ...] = NodeStatus.__args__  # type: ignore[attr-defined]
ExecutionStatus = Literal["running", "paused", "cancelling", "cancelled", "completed", "failed"]
EXECUTION_STATUSES: tuple[str, ...] = ExecutionStatus.__args__  # type: ignore[attr-defined]
TERMINAL_STATUSES = frozenset({"cancelled", "completed", "failed"})
# A run in one of these expects its engine to report (or heartbeat).
LIVE_STATUSES = frozenset({"running", "paused", "cancelling"})
# A node in one of these has finished (its ``finished_at`` is set).
FINISHED_NODE_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})
Decision = Literal["approve", "reject", "modify"]
GateStatus = Literal["pending", "approved", "rejected", "modified"]
DECISION_TO_GATE_STATUS: dict[str, GateStatus] = {
    "approve": "approved",
    "reject": "rejected",
    "modify": "modified",
}
GATE_STATUS_TO_DECISION: dict[str, Decision] = {
    status: cast(Decision, decision) for decision, status in DECISION_TO_GATE_STATUS.items()
}

NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Label = Annotated[str, msgspec.Meta(max_length=200)]
# Ints are bounded too: ids are stored (CommandReceipt.command_id, 100 chars).
CommandId = (
    Annotated[str, msgspec.Meta(max_length=100)]
    | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
)
NonNegative = Annotated[float, msgspec.Meta(ge=0)]

CLOSE_CODES: dict[str, int] = {
    "unauthenticated": CLOSE_UNAUTHENTICATED,
    "forbidden": CLOSE_FORBIDDEN,
    "not_found": CLOSE_NOT_FOUND,
    "try_again_later": CLOSE_TRY_AGAIN_LATER,
}


class _Message(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, omit_defaults=True):
    pass


# ---------------------------------------------------------------- mutations


class _Mutation(msgspec.Struct, tag_field="op", forbid_unknown_fields=True, omit_defaults=True):
    pass


class EdgeView(msgspec.Struct, frozen=True):
    """One edge, ``{"from": ..., "to": ...}`` on the wire."""

    src: str = msgspec.field(name="from")
    dst: str = msgspec.field(name="to")


class NodeSpec(msgspec.Struct, forbid_unknown_fields=True):
    id: NodeId
    label: Label = ""


class AddNode(_Mutation, tag="add_node"):
    node: NodeSpec


class RemoveNode(_Mutation, tag="remove_node"):
    node_id: NodeId
    # The edges that went with the node. Engines omit it; the server fills it
    # in, so history can restore them. Events recorded before it did lack it.
    edges: list[EdgeView] | None = None


class AddEdge(_Mutation, tag="add_edge"):
    src: NodeId = msgspec.field(name="from")
    dst: NodeId = msgspec.field(name="to")


class RemoveEdge(_Mutation, tag="remove_edge"):
    src: NodeId = msgspec.field(name="from")
    dst: NodeId = msgspec.field(name="to")


Mutation = AddNode | RemoveNode | AddEdge | RemoveEdge
MUTATION_OPS: tuple[str, ...] = tuple(str(m.__struct_config__.tag) for m in Mutation.__args__)

# ------------------------------------------------------------ event payloads
# Payloads without the envelope (dag_id, seq, ts), which services add.


class NodeState(_Message, tag="node_state"):
    node_id: NodeId
    status: NodeStatus
    output: Any = None
    metrics: dict[str, Any] | None = None


class EdgeActive(_Message, tag="edge_active"):
    src: NodeId = msgspec.field(name="from")
    dst: NodeId = msgspec.field(name="to")


class DagMutated(_Message, tag="dag_mutated"):
    mutation: Mutation


class CostUpdate(_Message, tag="cost_update"):
    spent: NonNegative
    budget: NonNegative | None
    remaining: float | None


class ExecutionComplete(_Message, tag="execution_complete"):
    results: Any


class HumanGateWaiting(_Message, tag="human_gate_waiting"):
    node_id: NodeId
    presentation: dict[str, Any]


class GateDecided(_Message, tag="gate_decided"):
    node_id: NodeId
    decision: Decision
    feedback: str
    decided_by: str


class ExecutionState(_Message, tag="execution_state"):
    state: ExecutionStatus


class ErrorEvent(_Message, tag="error"):
    message: str
    node_id: NodeId | None = None


EventPayload = (
    NodeState
    | EdgeActive
    | DagMutated
    | CostUpdate
    | ExecutionComplete
    | HumanGateWaiting
    | GateDecided
    | ExecutionState
    | ErrorEvent
)
EventType = Literal[
    "node_state",
    "edge_active",
    "dag_mutated",
    "cost_update",
    "execution_complete",
    "human_gate_waiting",
    "gate_decided",
    "execution_state",
    "error",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class Envelope(msgspec.Struct):
    """Fields every DAG event carries besides its payload."""

    dag_id: str
    seq: Annotated[int, msgspec.Meta(ge=1)]
    ts: str


# ----------------------------------------------------------- client commands


class HumanDecision(_Message, tag="human_decision"):
    node_id: NodeId
    decision: Decision
    feedback: str | None = None
    id: CommandId | None = None


class PauseExecution(_Message, tag="pause_execution"):
    id: CommandId | None = None


class ResumeExecution(_Message, tag="resume_execution"):
    id: CommandId | None = None


class CancelExecution(_Message, tag="cancel_execution"):
    id: CommandId | None = None


class Resume(_Message, tag="resume"):
    last_seq: Annotated[int, msgspec.Meta(ge=0)]
    id: CommandId | None = None


ClientCommand = HumanDecision | PauseExecution | ResumeExecution | CancelExecution | Resume
CLIENT_TYPES = frozenset(
    {"human_decision", "pause_execution", "resume_execution", "cancel_execution", "resume"}
)
CONTROL_ACTIONS: dict[str, str] = {
    "pause_execution": "pause",
    "resume_execution": "resume",
    "cancel_execution": "cancel",
}

# ------------------------------------------------------------- state views
# Declared once: state reads them, replay folds events into them, render
# shows them, and the snapshot reply sends them as they are. Every field is
# required and always sent (null when unknown).


class NodeView(msgspec.Struct):
    id: str
    label: str
    status: NodeStatus
    output: Any
    metrics: dict[str, Any]
    started_at: str | None
    finished_at: str | None


class GateView(msgspec.Struct):
    node_id: str
    presentation: dict[str, Any]
    status: GateStatus
    decision: Decision | None  # None while pending
    feedback: str
    decided_by: str
    decided_at: str | None


class DagSnapshot(msgspec.Struct):
    """The whole state of one DAG after event ``last_seq``."""

    dag_id: str
    name: str
    status: ExecutionStatus
    budget: float | None
    spent: float
    remaining: float | None
    results: Any
    last_seq: int
    created_at: str
    finished_at: str | None
    nodes: list[NodeView]
    edges: list[EdgeView]
    gates: list[GateView]
    # The engine's last report or heartbeat, and whether the run is live with
    # an engine silent past ENGINE_STALE_SECONDS ("engine not responding").
    engine_seen_at: str | None = None
    engine_stale: bool = False


class GanttBar(msgspec.Struct, frozen=True):
    """One node's time: from running (or its gate opening) to its end; None: still going."""

    node_id: str
    label: str
    status: NodeStatus
    start: str
    end: str | None
    gate_opened: str | None = None
    gate_decided: str | None = None
    gate_status: GateStatus | None = None


class GanttView(msgspec.Struct, frozen=True):
    """Where a run's time went: a bar per node that ran, its pauses, in run time."""

    status: ExecutionStatus
    start: str  # the run's creation
    end: str | None  # its end; None while it goes on
    bars: list[GanttBar]
    more: int  # nodes that ran and are not in ``bars`` (the first GANTT_ROWS are)
    pauses: list[tuple[str, str | None]]  # (paused, resumed or None)


class EngineHealth(msgspec.Struct, frozen=True):
    """What the dashboard says about a run's engine."""

    status: ExecutionStatus
    seen_at: str | None  # the engine's last report or heartbeat
    stale: bool  # live, and silent past ENGINE_STALE_SECONDS: "engine not responding"
    # Paused, yet node events arrived after the pause: "paused — engine still reporting".
    reporting_while_paused: bool = False


# ------------------------------------------------- replies (no seq, one client)


class Ack(_Message, tag="ack"):
    id: CommandId | None = None


class ErrorReply(_Message, tag="error"):
    code: ErrorCode
    message: str
    id: CommandId | None = None
    decision: dict[str, Any] | None = None


class Snapshot(_Message, tag="snapshot"):
    dag: DagSnapshot
    seq: int


class Keepalive(_Message, tag="keepalive"):
    """Sent after ``KEEPALIVE_SECONDS`` of silence: clients that miss it reconnect."""


# ------------------------------------------------------------------ codecs

_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> str:
    """Encode any message (struct or builtins) as compact JSON text."""
    return _encoder.encode(obj).decode()


def _safe_id(raw: dict[str, Any]) -> CommandId | None:
    value = raw.get("id")
    if isinstance(value, bool):
        return None
    if (isinstance(value, int) and -(2**63) <= value <= 2**63 - 1) or (
        isinstance(value, str) and len(value) <= 100 and "\x00" not in value
    ):
        return value
    return None


def json_problem(value: Any) -> str | None:
    """What makes ``value`` (JSON builtins) unfit to store, or None.

    JSON has no NaN or infinity (msgspec would write them as null), and
    PostgreSQL's text and jsonb cannot hold a NUL character, so dagstream
    refuses both on every database rather than store them on one.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is int or kind is bool or item is None:
            continue
        if kind is str or isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000), which dagstream does not store"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"holds {item!r}, which JSON cannot represent"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _SEQUENCES):
            stack.extend(item)
    return None


_SEQUENCES = (list, tuple)


def parse_command(text: str) -> ClientCommand:
    """Decode and validate one client frame, or raise a ``DagstreamError``."""
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"Frame is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's answer to deep nesting
        raise InvalidJson("Frame nests too deeply.") from None
    if not isinstance(raw, dict):
        raise InvalidDelta("A message must be a JSON object.")
    command_id = _safe_id(raw)
    problem = json_problem(raw)
    if problem is not None:
        raise InvalidDelta(f"The message {problem}.", command_id)
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise InvalidDelta("A message needs a string 'type'.", command_id)
    if kind not in CLIENT_TYPES:
        known = ", ".join(sorted(CLIENT_TYPES))
        raise UnknownType(f"Unknown message type {kind!r}; expected one of: {known}.", command_id)
    try:
        return msgspec.convert(raw, ClientCommand)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise InvalidDelta(str(exc), command_id) from None


_PAYLOAD_TYPES: dict[Any, type[Any]] = {
    cls.__struct_config__.tag: cls for cls in EventPayload.__args__
}


def validate_payload(payload: dict[str, Any]) -> EventPayload:
    """Validate an engine-supplied event payload (with its ``type``)."""
    # Straight to the tagged struct: twenty times faster than through the union.
    kind = _PAYLOAD_TYPES.get(payload.get("type"))
    return msgspec.convert(payload, kind or EventPayload)  # type: ignore[no-any-return]


def payload_to_builtins(payload: EventPayload) -> dict[str, Any]:
    """The stored form of a payload: JSON builtins without ``type``."""
    data: dict[str, Any] = msgspec.to_builtins(payload)
    data.pop("type", None)
    return data


def event_frame(event_type: str, dag_id: str, seq: int, ts: str, payload: dict[str, Any]) -> str:
    """The JSON text of one event as sent to clients."""
    return encode({"type": event_type, "dag_id": dag_id, "seq": seq, "ts": ts, **payload})


_FRAME_HEAD = '{"type":"'


def frame_type(frame: str) -> str:
    """The ``type`` of an event frame this module encoded (it always comes first)."""
    assert frame.startswith(_FRAME_HEAD)
    return frame[len(_FRAME_HEAD) : frame.index('"', len(_FRAME_HEAD))]


def frame_from_payload(event_type: str, dag_id: str, seq: int, ts: str, payload: str) -> str:
    """:func:`event_frame` from a payload already encoded (a JSON object's text).

    DAG ids and timestamps need no JSON escaping: their alphabets are safe.
    """
    head = f'{{"type":"{event_type}","dag_id":"{dag_id}","seq":{seq},"ts":"{ts}"'
    return head + "}" if payload == "{}" else head + "," + payload[1:]


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of every protocol message, grouped by direction."""
    events = list(EventPayload.__args__)
    commands = list(ClientCommand.__args__)
    replies = [Ack, ErrorReply, Snapshot, Keepalive]
    (schemas, components) = msgspec.json.schema_components(
        [*events, *commands, *replies, Envelope], ref_template="#/$defs/{name}"
    )
    # Each event's definition gets the envelope fields itself: with allOf, its
    # additionalProperties=false would reject dag_id/seq/ts, i.e. every real frame.
    envelope = components["Envelope"]
    event_refs = schemas[: len(events)]
    for ref in event_refs:
        component = components[ref["$ref"].rsplit("/", 1)[-1]]
        component["properties"] = {**envelope["properties"], **component["properties"]}
        component["required"] = [*component["required"], *envelope["required"]]
    rest = schemas[len(events) :]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"dagstream protocol v{PROTOCOL_VERSION}",
        "$defs": components,
        "properties": {
            "server_event": {"oneOf": event_refs},
            "client_command": {"oneOf": rest[: len(commands)]},
            "server_reply": {"oneOf": rest[len(commands) : len(commands) + len(replies)]},
        },
    }


def format_ts(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds, as events carry it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_non_negative(value: object) -> bool:
    """True for a finite number ≥ 0 (not a bool, not NaN): a cost, a budget."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value < float("inf")  # also refuses NaN
    )
