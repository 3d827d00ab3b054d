"""What an engine delta is, and its shape checked before the database is touched.

A :class:`Delta` is one engine report (a kind and its arguments). :func:`prepare`
turns it into its validated payload struct, or refuses it with
:class:`~dagstream_app.errors.InvalidDelta` naming what is wrong (and, for a field
that takes one of a fixed set, the valid values), so a refused delta needs no
savepoint and changes nothing. Checks against the DAG's stored state (known
nodes and edges, its status) happen later, in the flush, under the row lock.

What an engine puts in one event is bounded (``MAX_VALUE_BYTES``): an output,
metrics, a presentation or results whose JSON is longer is stored as the stand-in
:func:`bounded_json` makes (its size and a preview), and a longer error message
is cut (:func:`bounded_text`). One event then never costs a viewer more than
about that, and never makes a client that reads look like one that does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from dagstream_app import protocol
from dagstream_app.bounds import bounded_json, bounded_text
from dagstream_app.conf import config
from dagstream_app.errors import InvalidDelta
from dagstream_app.vocabulary import GROUP_PREFIX

__all__ = [
    "ENGINE_TRANSITIONS",
    "Delta",
    "DeltaKind",
    "bounded_json",
    "bounded_text",
    "prepare",
    "refuse_nul",
]

DeltaKind = Literal[
    "node_state",
    "edge_active",
    "mutate",
    "cost",
    "error",
    "complete",
    "fail",
    "set_state",
    "open_gate",
]

# Engine-initiated transitions (no command is sent back to the engine): the
# target state, and the states it may come from.
ENGINE_TRANSITIONS: dict[str, frozenset[str]] = {
    "paused": frozenset({"running"}),
    "running": frozenset({"paused"}),
    "cancelled": frozenset({"running", "paused", "cancelling"}),
}


@dataclass(frozen=True, slots=True)
class Delta:
    """One engine report, as :func:`~dagstream_app.services.apply` takes it: a kind
    and its arguments (those of the service function of the same name)."""

    kind: DeltaKind
    args: Mapping[str, Any] = field(default_factory=dict)


# Fields whose value is one of a fixed set: a refusal lists the valid ones.
_CHOICES: dict[str, tuple[str, ...]] = {
    "status": protocol.NODE_STATUSES,
    "op": protocol.MUTATION_OPS,
}
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def _explain(exc: msgspec.ValidationError) -> str:
    """msgspec's message, with the valid values when a field takes one of a fixed set."""
    message = str(exc)
    found = _AT.search(message)
    path = found.group("path") if found else ""
    choices = _CHOICES.get(path.rsplit(".", 1)[-1])
    if choices and message.startswith("Invalid"):
        return f"{message}; valid values: {', '.join(choices)}."
    return message


def _plain(value: Any) -> bool:
    """True for a value stored as it is: None, a bool, an integer JSON carries, or
    ASCII text without NUL (ids, statuses, messages). Anything else is looked into."""
    kind = type(value)
    return (
        value is None
        or kind is bool
        or (kind is int and protocol.JSON_INT_MIN <= value <= protocol.JSON_INT_MAX)
        or (kind is str and value.isascii() and "\x00" not in value)
    )


def _json_field(name: str, value: Any) -> Any:
    """``value`` as JSON builtins, or :class:`InvalidDelta` naming the field it came in."""
    if _plain(value):
        return value  # most fields of most deltas: nothing to convert or look into
    kind = type(value)
    if kind is float and math.isfinite(value):
        return value
    try:
        data = msgspec.to_builtins(value)
    except (TypeError, ValueError) as exc:
        raise InvalidDelta(f"{name} is not JSON: {exc}.") from None
    except RecursionError:
        raise InvalidDelta(f"{name} nests too deeply to store.") from None
    # A value dagstream cannot store (NaN, a NUL character) is refused here,
    # not later as a database error that would also roll back the other
    # deltas of its flush.
    try:
        problem = protocol.json_problem(data)
    except RecursionError:
        raise InvalidDelta(f"{name} nests too deeply to store.") from None
    if problem is not None:
        raise InvalidDelta(f"{name} {problem}.")
    return data


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidDelta(f"{name} must be a mapping (a dict), not {type(value).__name__}.")
    return dict(value)


def _validate(payload: Mapping[str, Any], bounded: tuple[str, ...] = ()) -> protocol.EventPayload:
    """``payload`` checked into its struct; the fields named in ``bounded`` are bounded
    by ``MAX_VALUE_BYTES`` (:func:`bounded_json`, a message :func:`bounded_text`)."""
    data: dict[str, Any] = {}
    for key, value in payload.items():
        # Most fields of most deltas are taken as they are.
        data[key] = value if _plain(value) else _json_field(key, value)
    if bounded:
        limit = config().max_value_bytes
        for key in bounded:
            value = data[key]
            if key != "message":
                data[key] = bounded_json(value, limit)
            elif isinstance(value, str):
                data[key] = bounded_text(value, limit)
    try:
        return protocol.validate_payload(data)
    except msgspec.ValidationError as exc:
        raise InvalidDelta(_explain(exc)) from None


def refuse_nul(label: str, value: str) -> None:
    """Refuse text dagstream could not store: a NUL character or a lone surrogate."""
    problem = protocol.text_problem(value)
    if problem is not None:
        raise InvalidDelta(f"The {label} {problem}; it is not stored.")


def _check_cost(spent: Any, budget: Any, add: Any = None) -> None:
    for label, value in (("spent", spent), ("budget", budget), ("add", add)):
        if value is not None and not protocol.is_non_negative(value):
            raise InvalidDelta(f"{label} must be a non-negative number, not {value!r}.")
    if spent is None and budget is None and add is None:
        raise InvalidDelta("cost() needs spent, add or budget.")
    if spent is not None and add is not None:
        raise InvalidDelta("cost() takes spent (a total) or add (an increment), not both.")


def _check_assignees(waiting: dict[str, Any], assignees: Any, quorum: Any) -> None:
    """Add a gate's ``assignees`` and ``quorum`` to its event, if given; refuse a quorum
    its named people alone could never reach."""
    if assignees:
        if isinstance(assignees, str) or not isinstance(assignees, list | tuple):
            raise InvalidDelta("assignees is a list of usernames and 'group:<name>'.")
        waiting["assignees"] = list(dict.fromkeys(assignees))  # each once, in order
    if quorum is not None and quorum != 1:
        waiting["quorum"] = quorum
        names = waiting.get("assignees") or []
        only_people = names and not any(
            isinstance(n, str) and n.startswith(GROUP_PREFIX) for n in names
        )
        if only_people and isinstance(quorum, int) and quorum > len(names):
            raise InvalidDelta(f"quorum {quorum} needs more people than the {len(names)} assigned.")


def prepare(delta: Delta) -> Any:
    """The delta's shape checked, before the database is touched: its payload struct
    (of the type its kind emits), or None for a kind whose event the flush builds."""
    a = delta.args
    match delta.kind:
        case "node_state":
            metrics = a.get("metrics")
            return _validate(
                {
                    "type": "node_state",
                    "node_id": a["node_id"],
                    "status": a["status"],
                    "output": a.get("output"),
                    "metrics": None if metrics is None else _mapping("metrics", metrics),
                },
                bounded=("output", "metrics"),
            )
        case "edge_active":
            return _validate({"type": "edge_active", "from": a["src"], "to": a["dst"]})
        case "mutate":
            mutation = _mapping("mutation", a["mutation"])
            return _validate({"type": "dag_mutated", "mutation": mutation})
        case "cost":
            _check_cost(a.get("spent"), a.get("budget"), a.get("add"))
            return None
        case "error" | "fail":
            return _validate(
                {"type": "error", "message": a["message"], "node_id": a.get("node_id")},
                bounded=("message",),
            )
        case "complete":
            return _validate(
                {"type": "execution_complete", "results": a.get("results")}, bounded=("results",)
            )
        case "set_state":
            if a["state"] not in ENGINE_TRANSITIONS:
                raise InvalidDelta(
                    f"An engine sets state to one of {sorted(ENGINE_TRANSITIONS)}, "
                    f"not {a['state']!r}; use complete() or fail() to finish."
                )
            return None
        case "open_gate":
            default = a.get("default")
            if default is not None and default not in protocol.DECISION_TO_GATE_STATUS:
                raise InvalidDelta(f"default must be approve, reject or modify, not {default!r}.")
            waiting: dict[str, Any] = {
                "type": "human_gate_waiting",
                "node_id": a["node_id"],
                "presentation": _mapping("presentation", a["presentation"]),
            }
            _check_assignees(waiting, a.get("assignees"), a.get("quorum"))
            return _validate(waiting, bounded=("presentation",))
    raise InvalidDelta(f"Unknown delta {delta.kind!r}.")  # pragma: no cover - typed
