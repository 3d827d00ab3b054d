"""Protocol v1: client frames parse or get their error code; the JSON Schema fits real frames."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import msgspec
import pytest
from django.core.management import call_command

from dagstream_app import protocol, services, state
from dagstream_app.errors import DagstreamError
from dagstream_app.protocol import parse_command

# ------------------------------------------------------------ client commands


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            {"type": "human_decision", "node_id": "review", "decision": "approve"},
            protocol.HumanDecision(node_id="review", decision="approve"),
        ),
        (
            {
                "type": "human_decision",
                "node_id": "review",
                "decision": "modify",
                "feedback": "shorter",
                "id": "c-1",
            },
            protocol.HumanDecision(
                node_id="review", decision="modify", feedback="shorter", id="c-1"
            ),
        ),
        (
            {"type": "human_decision", "node_id": "n", "decision": "reject", "id": 7},
            protocol.HumanDecision(node_id="n", decision="reject", id=7),
        ),
        ({"type": "pause_execution"}, protocol.PauseExecution()),
        ({"type": "pause_execution", "id": 1}, protocol.PauseExecution(id=1)),
        ({"type": "resume_execution", "id": "r"}, protocol.ResumeExecution(id="r")),
        ({"type": "cancel_execution"}, protocol.CancelExecution()),
        ({"type": "resume", "last_seq": 0}, protocol.Resume(last_seq=0)),
        ({"type": "resume", "last_seq": 42, "id": "x"}, protocol.Resume(last_seq=42, id="x")),
    ],
)
def test_every_client_command_parses(frame: dict[str, Any], expected: Any) -> None:
    assert parse_command(json.dumps(frame)) == expected


def test_client_types_are_exactly_the_parsed_commands() -> None:
    tags = {c.__struct_config__.tag for c in protocol.ClientCommand.__args__}
    assert tags == protocol.CLIENT_TYPES
    assert set(protocol.CONTROL_ACTIONS) == {
        "pause_execution",
        "resume_execution",
        "cancel_execution",
    }


def _refusal(text: str) -> DagstreamError:
    with pytest.raises(DagstreamError) as info:
        parse_command(text)
    return info.value


@pytest.mark.parametrize("text", ["", "{", "not json", '{"type": "resume",}', "{'a': 1}", "NaN"])
def test_invalid_json(text: str) -> None:
    error = _refusal(text)
    assert error.code == "invalid_json"
    assert error.command_id is None
    assert "JSON" in error.message


@pytest.mark.parametrize("text", ["[]", '[{"type": "pause_execution"}]', '"pause"', "3", "null"])
def test_non_object_is_invalid_message(text: str) -> None:
    error = _refusal(text)
    assert (error.code, error.message) == ("invalid_message", "A message must be a JSON object.")


@pytest.mark.parametrize(
    "frame", [{}, {"id": 5}, {"type": None, "id": 5}, {"type": 3, "id": 5}, {"type": [], "id": 5}]
)
def test_missing_or_non_string_type_is_invalid_message(frame: dict[str, Any]) -> None:
    error = _refusal(json.dumps(frame))
    assert error.code == "invalid_message"
    assert "type" in error.message
    assert error.command_id == frame.get("id")


@pytest.mark.parametrize(
    "kind", ["node_state", "snapshot", "ack", "error", "Pause_Execution", "pause", ""]
)
def test_unknown_type(kind: str) -> None:
    error = _refusal(json.dumps({"type": kind, "id": "u1"}))
    assert error.code == "unknown_type"
    assert error.command_id == "u1"
    assert repr(kind) in error.message
    for known in protocol.CLIENT_TYPES:
        assert known in error.message


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        # missing fields
        ({"type": "human_decision", "decision": "approve"}, "node_id"),
        ({"type": "human_decision", "node_id": "n"}, "decision"),
        ({"type": "resume"}, "last_seq"),
        # wrong field types
        ({"type": "human_decision", "node_id": 5, "decision": "approve"}, "$.node_id"),
        ({"type": "human_decision", "node_id": "", "decision": "approve"}, "$.node_id"),
        (
            {"type": "human_decision", "node_id": "n", "decision": "approve", "feedback": 1},
            "$.feedback",
        ),
        ({"type": "resume", "last_seq": "3"}, "$.last_seq"),
        ({"type": "resume", "last_seq": 1.5}, "$.last_seq"),
        ({"type": "resume", "last_seq": True}, "$.last_seq"),
        # bad decision
        ({"type": "human_decision", "node_id": "n", "decision": "yes"}, "$.decision"),
        ({"type": "human_decision", "node_id": "n", "decision": "Approve"}, "$.decision"),
        # negative last_seq
        ({"type": "resume", "last_seq": -1}, "$.last_seq"),
        # extra fields
        ({"type": "pause_execution", "force": True}, "force"),
        ({"type": "resume", "last_seq": 1, "seq": 1}, "seq"),
        ({"type": "human_decision", "node_id": "n", "decision": "approve", "by": "me"}, "by"),
    ],
)
def test_bad_fields_are_invalid_message(frame: dict[str, Any], where: str) -> None:
    error = _refusal(json.dumps({**frame, "id": "cmd-9"}))
    assert error.code == "invalid_message"
    assert where in error.message
    assert error.command_id == "cmd-9"  # recoverable, so echoed


@pytest.mark.parametrize(
    "bad_id",
    [1.5, True, None, [], {"a": 1}, "x" * 101, 2**63, -(2**63) - 1, int("9" * 150)],
)
def test_unusable_id_is_refused_and_not_echoed(bad_id: Any) -> None:
    text = json.dumps({"type": "pause_execution", "id": bad_id})
    if bad_id is None:
        assert parse_command(text) == protocol.PauseExecution()
        return
    error = _refusal(text)
    assert error.code == "invalid_message"
    assert error.command_id is None


@pytest.mark.parametrize("good_id", ["x" * 100, "", 0, -1, 2**63 - 1, -(2**63)])
def test_ids_at_the_limits_are_accepted(good_id: Any) -> None:
    command = parse_command(json.dumps({"type": "cancel_execution", "id": good_id}))
    assert command == protocol.CancelExecution(id=good_id)


def test_id_is_echoed_even_when_the_rest_of_the_frame_is_wrong() -> None:
    error = _refusal(json.dumps({"type": "human_decision", "id": 12}))
    assert (error.code, error.command_id) == ("invalid_message", 12)


# -------------------------------------------------------------- engine payloads


def test_validate_payload_checks_engine_input() -> None:
    payload = protocol.validate_payload({"type": "node_state", "node_id": "a", "status": "running"})
    assert payload == protocol.NodeState(node_id="a", status="running")
    for bad in (
        {"type": "node_state", "node_id": "a", "status": "done"},
        {"type": "node_state", "node_id": "", "status": "running"},
        {"type": "edge_active", "src": "a", "dst": "b"},  # wire names are from/to
        {"type": "cost_update", "spent": -1, "budget": None, "remaining": None},
        {"type": "dag_mutated", "mutation": {"op": "rename_node", "node_id": "a"}},
        {"type": "nope"},
    ):
        with pytest.raises(msgspec.ValidationError):
            protocol.validate_payload(bad)


def test_payload_to_builtins_uses_wire_names_and_omits_unset_optionals() -> None:
    assert protocol.payload_to_builtins(protocol.EdgeActive(src="a", dst="b")) == {
        "from": "a",
        "to": "b",
    }
    assert protocol.payload_to_builtins(protocol.NodeState(node_id="a", status="running")) == {
        "node_id": "a",
        "status": "running",
    }
    assert protocol.payload_to_builtins(protocol.ErrorEvent(message="boom")) == {"message": "boom"}


def test_remove_node_carries_the_edges_the_server_records() -> None:
    # Engines omit ``edges``: the stored event then looks as it always did.
    bare = protocol.validate_payload(
        {"type": "dag_mutated", "mutation": {"op": "remove_node", "node_id": "b"}}
    )
    assert protocol.payload_to_builtins(bare) == {"mutation": {"op": "remove_node", "node_id": "b"}}
    recorded = {
        "op": "remove_node",
        "node_id": "b",
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}],
    }
    full = protocol.validate_payload({"type": "dag_mutated", "mutation": recorded})
    assert protocol.payload_to_builtins(full) == {"mutation": recorded}
    with pytest.raises(msgspec.ValidationError):
        protocol.validate_payload(
            {"type": "dag_mutated", "mutation": {**recorded, "edges": [{"from": "a"}]}}
        )


def test_event_frame_is_envelope_plus_payload() -> None:
    frame = protocol.event_frame(
        "edge_active", "d1", 3, "2026-01-01T00:00:00.000Z", {"from": "a", "to": "b"}
    )
    assert json.loads(frame) == {
        "type": "edge_active",
        "dag_id": "d1",
        "seq": 3,
        "ts": "2026-01-01T00:00:00.000Z",
        "from": "a",
        "to": "b",
    }


def test_replies_encode_without_seq() -> None:
    assert json.loads(protocol.encode(protocol.Ack(id="a1"))) == {"type": "ack", "id": "a1"}
    assert json.loads(protocol.encode(protocol.Ack())) == {"type": "ack"}
    error = protocol.ErrorReply(code="conflict", message="taken", id=3, decision={"x": 1})
    assert json.loads(protocol.encode(error)) == {
        "type": "error",
        "code": "conflict",
        "message": "taken",
        "id": 3,
        "decision": {"x": 1},
    }


# ------------------------------------------------------------------ JSON Schema
# A small validator for the keywords msgspec emits; it refuses any other keyword,
# so a schema change it does not understand fails loudly instead of passing.

_ANNOTATIONS = {"title", "description", "default", "discriminator", "$schema", "$defs"}
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _type_ok(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$") -> list[str]:
    found: list[str] = []
    for key, rule in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$ref":
            assert rule.startswith("#/$defs/"), rule
            found += _errors(value, root["$defs"][rule.removeprefix("#/$defs/")], root, at)
        elif key == "allOf":
            for sub in rule:
                found += _errors(value, sub, root, at)
        elif key in ("anyOf", "oneOf"):
            matches = sum(not _errors(value, sub, root, at) for sub in rule)
            if (key == "anyOf" and not matches) or (key == "oneOf" and matches != 1):
                found.append(f"{at}: {matches} of {key} match")
        elif key == "type":
            if not _type_ok(value, rule):
                found.append(f"{at}: not {rule}")
        elif key == "enum":
            if value not in rule:
                found.append(f"{at}: {value!r} not in {rule}")
        elif key == "const":
            if value != rule:
                found.append(f"{at}: {value!r} != {rule!r}")
        elif key in ("minimum", "maximum"):
            if _type_ok(value, "number") and (value < rule if key == "minimum" else value > rule):
                found.append(f"{at}: {key} {rule}")
        elif key in ("minLength", "maxLength"):
            if isinstance(value, str) and (
                len(value) < rule if key == "minLength" else len(value) > rule
            ):
                found.append(f"{at}: {key} {rule}")
        elif key == "required":
            if isinstance(value, dict):
                found += [f"{at}: missing {name}" for name in rule if name not in value]
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value:
                        found += _errors(value[name], sub, root, f"{at}.{name}")
        elif key == "additionalProperties":
            if isinstance(value, dict) and rule is False:
                extra = set(value) - set(schema.get("properties", {}))
                found += [f"{at}: unexpected {name}" for name in sorted(extra)]
            elif isinstance(rule, dict) and isinstance(value, dict):
                for name in set(value) - set(schema.get("properties", {})):
                    found += _errors(value[name], rule, root, f"{at}.{name}")
        elif key == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    found += _errors(item, rule, root, f"{at}[{i}]")
        else:
            raise AssertionError(f"the test validator does not know {key!r}")
    return found


def _check(frame: dict[str, Any], direction: str) -> list[str]:
    schema = protocol.json_schema()
    return _errors(frame, schema["properties"][direction], schema)


def _exported_schema() -> dict[str, Any]:
    out = StringIO()
    call_command("dagstream_schema", stdout=out)
    schema: dict[str, Any] = json.loads(out.getvalue())
    return schema


def test_schema_command_prints_json_with_every_message() -> None:
    schema = _exported_schema()
    assert schema == json.loads(json.dumps(protocol.json_schema()))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def tags(direction: str) -> set[str]:
        found = set()
        for option in schema["properties"][direction]["oneOf"]:
            definition = schema["$defs"][option["$ref"].removeprefix("#/$defs/")]
            found.update(definition["properties"]["type"]["enum"])
        return found

    assert tags("server_event") == set(protocol.EVENT_TYPES)
    assert tags("client_command") == set(protocol.CLIENT_TYPES)
    assert tags("server_reply") == {"ack", "error", "snapshot", "keepalive"}


def test_schema_requires_the_envelope_on_every_event() -> None:
    schema = protocol.json_schema()
    for option in schema["properties"]["server_event"]["oneOf"]:
        definition = schema["$defs"][option["$ref"].removeprefix("#/$defs/")]
        assert {"type", "dag_id", "seq", "ts"} <= set(definition["required"])


@pytest.mark.django_db
def test_schema_validates_real_event_frames(make_user: Any) -> None:
    user = make_user("view_dag", "decide_gate", "control_dag")
    services.create_dag("s-1", nodes=[{"id": "a", "label": "A"}, "b"], edges=[("a", "b")], budget=2)
    services.reports("s-1").node_state("a", "running")
    services.reports("s-1").node_state("a", "completed", output={"rows": 3}, metrics={"ms": 12})
    services.reports("s-1").edge_active("a", "b")
    services.reports("s-1").mutate({"op": "add_node", "node": {"id": "c", "label": "C"}})
    services.reports("s-1").mutate({"op": "add_edge", "from": "b", "to": "c"})
    services.reports("s-1").mutate({"op": "remove_edge", "from": "b", "to": "c"})
    services.reports("s-1").mutate({"op": "remove_node", "node_id": "c"})
    services.reports("s-1").cost(spent=0.5)
    services.reports("s-1").error("flaky", node_id="b")
    services.reports("s-1").error("no node")
    services.open_gate("s-1", "b", {"title": "Ship?"})
    services.decide_gate("s-1", "b", "approve", actor=user)
    services.open_gate("s-1", "a", {"title": "Two say yes"}, quorum=2)
    services.decide_gate("s-1", "a", "approve", actor=user)  # one vote of two; closes with the run
    services.control("s-1", "pause", actor=user)
    services.control("s-1", "resume", actor=user)
    services.open_gate("s-1", "a", {"title": "Never answered"})  # closes with the run
    services.reports("s-1").complete({"rows": 3})
    frames = [json.loads(text) for _, text in state.event_frames("s-1", 0)]
    assert {f["type"] for f in frames} == set(protocol.EVENT_TYPES)
    for frame in frames:
        assert _check(frame, "server_event") == [], frame


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "node_state", "node_id": "a", "status": "running"},  # no envelope
        {
            "type": "node_state",
            "dag_id": "d",
            "seq": 0,
            "ts": "t",
            "node_id": "a",
            "status": "running",
        },
        {"type": "node_state", "dag_id": "d", "seq": 1, "ts": "t", "node_id": "a", "status": "ok"},
        {"type": "edge_active", "dag_id": "d", "seq": 1, "ts": "t", "src": "a", "dst": "b"},
        {"type": "snapshot", "dag_id": "d", "seq": 1, "ts": "t", "dag": {}},
    ],
)
def test_schema_rejects_malformed_events(frame: dict[str, Any]) -> None:
    assert _check(frame, "server_event")


def test_schema_validates_commands_and_replies() -> None:
    for command in (
        {"type": "human_decision", "node_id": "n", "decision": "modify", "feedback": "f", "id": 1},
        {"type": "pause_execution", "id": "p"},
        {"type": "resume_execution"},
        {"type": "cancel_execution"},
        {"type": "resume", "last_seq": 0},
    ):
        assert _check(command, "client_command") == [], command
    for bad in (
        {"type": "resume", "last_seq": -1},
        {"type": "human_decision", "node_id": "n", "decision": "maybe"},
        {"type": "pause_execution", "extra": 1},
    ):
        assert _check(bad, "client_command"), bad
    for reply in (
        json.loads(protocol.encode(protocol.Ack(id=4))),
        json.loads(protocol.encode(protocol.ErrorReply(code="too_large", message="m"))),
        json.loads(protocol.encode(protocol.Keepalive())),
    ):
        assert _check(reply, "server_reply") == [], reply
    assert protocol.encode(protocol.Keepalive()) == '{"type":"keepalive"}'
    assert _check({"type": "keepalive", "seq": 3}, "server_reply")


@pytest.mark.django_db
def test_schema_describes_real_snapshots(make_user: Any) -> None:
    user = make_user("view_dag", "decide_gate")
    services.create_dag("s-1", nodes=[{"id": "a", "label": "A"}, "b"], edges=[("a", "b")], budget=2)
    services.reports("s-1").node_state("a", "completed", output={"rows": 3}, metrics={"ms": 12})
    services.open_gate("s-1", "b", {"title": "Ship?"})
    services.open_gate("s-1", "a", {"title": "Sure?"})
    services.decide_gate("s-1", "a", "modify", feedback="smaller", actor=user)
    snap = state.snapshot("s-1")
    assert snap is not None
    reply = json.loads(protocol.encode(protocol.Snapshot(dag=snap, seq=snap.last_seq)))
    assert _check(reply, "server_reply") == []

    def without(*path: Any) -> dict[str, Any]:
        broken: dict[str, Any] = json.loads(json.dumps(reply))
        holder: Any = broken
        for key in path[:-1]:
            holder = holder[key]
        del holder[path[-1]]
        return broken

    # Every field is required: a client may rely on each being there.
    for path in (
        ("dag", "last_seq"),
        ("dag", "nodes", 0, "finished_at"),
        ("dag", "gates", 1, "decision"),
    ):
        assert _check(without(*path), "server_reply"), path
    wrong = json.loads(json.dumps(reply))
    wrong["dag"]["nodes"][1]["status"] = "done"
    assert _check(wrong, "server_reply")


def test_deep_nesting_and_nul_characters_are_coded_refusals() -> None:
    with pytest.raises(DagstreamError) as deep:
        protocol.parse_command("[" * 1000 + "]" * 1000)
    assert deep.value.code == "invalid_json"
    with pytest.raises(DagstreamError) as nul:
        protocol.parse_command('{"type": "pause_execution", "id": "x\\u0000"}')
    assert nul.value.code == "invalid_message" and nul.value.command_id is None
    assert protocol.json_problem({"a": [1.5, "ok", {"b": float("nan")}]}) is not None
    assert protocol.json_problem({"a": [1.5, "ok", {"b": None}]}) is None
