"""Protocol v1: every server event and client command, declared once.

Each message is a :mod:`msgspec` struct. The same declarations validate client
frames and engine inputs and export the JSON Schema (``manage.py
dagstream_schema``). Events are stored as (type, payload) and sent as one JSON
object: ``{"type", "dag_id", "seq", "ts", **payload}``. Each event type's
payload struct is declared in its home in :mod:`dagstream_app.events`; this
module validates payloads against, and exports the schema of, every type
registered there. The words messages are made of are
:mod:`dagstream_app.vocabulary`'s, the views of a DAG's state (which the
``snapshot`` reply sends) :mod:`dagstream_app.dagviews`'; both are exported
here too, with the event structs, as the protocol's names.
"""

from __future__ import annotations

import math
import sys
import typing
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from dagstream_app import events
from dagstream_app.dagviews import (
    DagSnapshot,
    EdgeView,
    EngineHealth,
    GanttBar,
    GanttView,
    GateView,
    NodeView,
)
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
from dagstream_app.events.cost_update import CostUpdate
from dagstream_app.events.dag_mutated import (
    MUTATION_OPS,
    AddEdge,
    AddNode,
    DagMutated,
    Mutation,
    NodeSpec,
    RemoveEdge,
    RemoveNode,
)
from dagstream_app.events.edge_active import EdgeActive
from dagstream_app.events.error import ErrorEvent
from dagstream_app.events.execution_complete import ExecutionComplete
from dagstream_app.events.execution_state import ExecutionState
from dagstream_app.events.gate_decided import GateDecided
from dagstream_app.events.human_gate_waiting import HumanGateWaiting
from dagstream_app.events.node_state import NodeState
from dagstream_app.vocabulary import (
    CLOSE_CODES,
    DAG_ID_CHARS,
    DAG_ID_PATTERN,
    DAG_ID_RE,
    DECISION_TO_GATE_STATUS,
    EXECUTION_STATUSES,
    FINISHED_NODE_STATUSES,
    GATE_STATUS_TO_DECISION,
    LIVE_STATUSES,
    NODE_STATUSES,
    TERMINAL_STATUSES,
    CommandId,
    Decision,
    EventPayload,
    ExecutionStatus,
    GateStatus,
    Label,
    Message,
    NodeId,
    NodeStatus,
    NonNegative,
)

__all__ = [
    "CLIENT_TYPES",
    "CLOSE_CODES",
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNAUTHENTICATED",
    "CONTROL_ACTIONS",
    "DAG_ID_CHARS",
    "DAG_ID_PATTERN",
    "DAG_ID_RE",
    "DECISION_TO_GATE_STATUS",
    "EVENT_TYPES",
    "EXECUTION_STATUSES",
    "FINISHED_NODE_STATUSES",
    "GATE_STATUS_TO_DECISION",
    "LIVE_STATUSES",
    "MUTATION_OPS",
    "NODE_STATUSES",
    "PROTOCOL_VERSION",
    "TERMINAL_STATUSES",
    "Ack",
    "AddEdge",
    "AddNode",
    "CancelExecution",
    "ClientCommand",
    "CommandId",
    "CostUpdate",
    "DagMutated",
    "DagSnapshot",
    "Decision",
    "EdgeActive",
    "EdgeView",
    "EngineHealth",
    "Envelope",
    "ErrorCode",
    "ErrorEvent",
    "ErrorReply",
    "EventPayload",
    "ExecutionComplete",
    "ExecutionState",
    "ExecutionStatus",
    "GanttBar",
    "GanttView",
    "GateDecided",
    "GateStatus",
    "GateView",
    "HumanDecision",
    "HumanGateWaiting",
    "Keepalive",
    "Label",
    "Message",
    "Mutation",
    "NodeId",
    "NodeSpec",
    "NodeState",
    "NodeStatus",
    "NodeView",
    "NonNegative",
    "PauseExecution",
    "RemoveEdge",
    "RemoveNode",
    "Resume",
    "ResumeExecution",
    "Snapshot",
    "encode",
    "event_frame",
    "format_ts",
    "frame_from_payload",
    "frame_type",
    "int_problem",
    "is_non_negative",
    "json_problem",
    "json_schema",
    "parse_command",
    "payload_to_builtins",
    "text_problem",
    "validate_payload",
]

PROTOCOL_VERSION = 1

# The event types of protocol v1 (a test may register more: see events.register).
EVENT_TYPES: tuple[str, ...] = tuple(kind.name for kind in events.BUILTIN)


class Envelope(msgspec.Struct):
    """Fields every DAG event carries besides its payload."""

    dag_id: str
    seq: Annotated[int, msgspec.Meta(ge=1)]
    ts: str


# ----------------------------------------------------------- client commands


class HumanDecision(Message, tag="human_decision"):
    node_id: NodeId
    decision: Decision
    feedback: str | None = None
    id: CommandId | None = None


class PauseExecution(Message, tag="pause_execution"):
    id: CommandId | None = None


class ResumeExecution(Message, tag="resume_execution"):
    id: CommandId | None = None


class CancelExecution(Message, tag="cancel_execution"):
    id: CommandId | None = None


class Resume(Message, tag="resume"):
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

# ------------------------------------------------- replies (no seq, one client)


class Ack(Message, tag="ack"):
    id: CommandId | None = None


class ErrorReply(Message, tag="error"):
    code: ErrorCode
    message: str
    id: CommandId | None = None
    decision: dict[str, Any] | None = None


class Snapshot(Message, tag="snapshot"):
    dag: DagSnapshot
    seq: int


class Keepalive(Message, tag="keepalive"):
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


# What a JSON number may be here: msgspec writes integers in this range (and a
# float's range); PostgreSQL's jsonb could hold more, but no client could read it.
JSON_INT_MIN = -(2**63)
JSON_INT_MAX = 2**64 - 1


def int_problem(value: int) -> str | None:
    """What makes the integer ``value`` unfit to store, or None."""
    if JSON_INT_MIN <= value <= JSON_INT_MAX:
        return None
    # bit_length, not str(): a 5,000-digit int cannot even be printed by default.
    return (
        f"holds an integer of {value.bit_length()} bits; integers are stored from -2**63 to 2**64-1"
    )


def text_problem(value: str) -> str | None:
    """What makes the text ``value`` unfit to store, or None (PostgreSQL holds no
    NUL character; a lone surrogate is not Unicode text and cannot be encoded)."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which dagstream does not store"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            return (
                f"contains a lone surrogate ({value[exc.start]!r}), which is not text "
                "dagstream can store"
            )
    return None


def json_problem(value: Any) -> str | None:
    """What makes ``value`` (JSON builtins) unfit to store, or None.

    JSON has no NaN or infinity (msgspec would write them as null); integers
    past 64 bits and lone surrogates cannot be encoded; PostgreSQL's text and
    jsonb cannot hold a NUL character. dagstream refuses all of them on every
    database rather than store them on one.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        # The common kinds first, by exact type: this runs for every engine value.
        if kind is str:
            if "\x00" in item or not item.isascii():
                problem = text_problem(item)
                if problem is not None:
                    return problem
        elif kind is int:
            if not JSON_INT_MIN <= item <= JSON_INT_MAX:
                return int_problem(item)
        elif kind is float:
            if not math.isfinite(item):
                return f"holds {item!r}, which JSON cannot represent"
        elif kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is bool or item is None:
            continue
        elif isinstance(item, _JSON_BASES):
            stack.append(_builtin(item))  # a subclass: checked as its base type
    return None


_JSON_BASES: tuple[type[Any], ...] = (str, int, float, dict, list, tuple)


def _builtin(item: Any) -> Any:
    """A subclass of a JSON type (an IntEnum, a str subclass...) as that type."""
    base: Any = next(base for base in _JSON_BASES if isinstance(item, base))
    return base(item)


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


def validate_payload(payload: dict[str, Any]) -> EventPayload:
    """Validate an engine-supplied event payload (with its ``type``)."""
    # Straight to the tagged struct: twenty times faster than through the union.
    kind = events.STRUCTS.get(payload.get("type"))  # type: ignore[arg-type]
    if kind is None:  # no such type: the union says what is expected
        union: Any = typing.Union[tuple(events.STRUCTS.values())]  # noqa: UP007
        return msgspec.convert(payload, union)  # type: ignore[no-any-return]
    return msgspec.convert(payload, kind)


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
    payloads = [kind.struct for kind in events.kinds()]
    commands = list(ClientCommand.__args__)
    replies = [Ack, ErrorReply, Snapshot, Keepalive]
    (schemas, components) = msgspec.json.schema_components(
        [*payloads, *commands, *replies, Envelope], ref_template="#/$defs/{name}"
    )
    # Each event's definition gets the envelope fields itself: with allOf, its
    # additionalProperties=false would reject dag_id/seq/ts, i.e. every real frame.
    envelope = components["Envelope"]
    event_refs = schemas[: len(payloads)]
    for ref in event_refs:
        component = components[ref["$ref"].rsplit("/", 1)[-1]]
        component["properties"] = {**envelope["properties"], **component["properties"]}
        component["required"] = [*component["required"], *envelope["required"]]
    rest = schemas[len(payloads) :]
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
    """True for a finite number ≥ 0 that a float holds (not a bool, not NaN): a
    cost, a budget. ``10**400`` is not one: it has no float."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value <= sys.float_info.max  # also refuses NaN and infinity
    )
