"""An event type is declared in one place (its EventKind) and everything else follows.

A made-up type, registered through the registry's public function for the
length of a test, is validated by the protocol (and in its JSON Schema),
replayed, worded in the timeline, sent live, and applied by the JS store with
one more entry in its table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest

from dagstream_app import events, live, protocol, replay
from dagstream_app.dagviews import Working
from dagstream_app.events import EventData, EventKind, Wording
from dagstream_app.events.registry import Namer
from dagstream_app.render.timeline import timeline_entry_html
from dagstream_app.vocabulary import EventPayload
from tests.jstools import node

TS = "2026-01-01T00:00:04.000Z"


# ---------------------------------------------------- the one declaration


class Checkpoint(EventPayload, tag="checkpoint"):
    label: Annotated[str, msgspec.Meta(min_length=1)]


def _reduce(work: Working, event: EventData) -> None:
    work.results = {"checkpoint": event["label"]}


def _describe(event: EventData, name: Namer) -> Wording:
    return Wording(icon="flow", tone="info", subject="Run", text=f"reached {event['label']}")


CHECKPOINT = EventKind(Checkpoint, _reduce, _describe)

# ------------------------------------------------------------------------


@pytest.fixture
def checkpoint() -> Iterator[EventKind]:
    events.register(CHECKPOINT)
    try:
        yield CHECKPOINT
    finally:
        events.unregister("checkpoint")


def _event(**fields: Any) -> dict[str, Any]:
    return {"type": "checkpoint", "dag_id": "d", "seq": 4, "ts": TS, **fields}


def test_the_protocol_validates_it_and_its_schema_lists_it(checkpoint: EventKind) -> None:
    assert protocol.validate_payload({"type": "checkpoint", "label": "half"}) == Checkpoint("half")
    for bad in ({"type": "checkpoint"}, {"type": "checkpoint", "label": ""}):
        with pytest.raises(msgspec.ValidationError):
            protocol.validate_payload(bad)
    schema = protocol.json_schema()
    refs = [ref["$ref"] for ref in schema["properties"]["server_event"]["oneOf"]]
    assert refs[-1] == "#/$defs/Checkpoint"
    assert {"dag_id", "seq", "ts", "label"} <= set(schema["$defs"]["Checkpoint"]["required"])


def test_unregistered_it_is_unknown(checkpoint: EventKind) -> None:
    events.unregister("checkpoint")
    try:
        assert events.kind_of("checkpoint") is None
        with pytest.raises(msgspec.ValidationError):
            protocol.validate_payload({"type": "checkpoint", "label": "half"})
        assert [kind.name for kind in events.kinds()] == list(protocol.EVENT_TYPES)
    finally:
        events.register(CHECKPOINT)


def test_a_type_is_registered_once(checkpoint: EventKind) -> None:
    with pytest.raises(ValueError, match="registered already"):
        events.register(CHECKPOINT)


def test_replay_applies_its_reducer(checkpoint: EventKind) -> None:
    work = Working(dag_id="d")
    replay.apply(work, _event(label="half"))
    assert (work.results, work.last_seq, work.at) == ({"checkpoint": "half"}, 4, TS)


def test_the_timeline_says_it_in_its_words(checkpoint: EventKind) -> None:
    entry = timeline_entry_html(_event(label="<half>"))
    assert "reached &lt;half&gt;" in entry and 'data-type="checkpoint"' in entry
    parts = live.event_parts("d", 4, _event(label="half"), Working(dag_id="d"), (True, True))
    assert [slot for slot, _ in parts] == [live.TIMELINE_SLOT]  # no fragment of its own


@pytest.mark.usefixtures("js_tools")
def test_the_js_store_applies_it_with_one_more_entry(checkpoint: EventKind) -> None:
    work = Working(dag_id="d")
    replay.apply(work, _event(label="half"))
    script = (
        "import { EVENT_REDUCERS, applyEvent, fromSnapshot }"
        " from '../../dagstream_app/static/dagstream_app/client/store.js';"
        "EVENT_REDUCERS.checkpoint = (draft, event) => {"
        " draft.dag.results = { checkpoint: event.label }; };"
        f"const dag = fromSnapshot({protocol.encode(Working(dag_id='d').snapshot())});"
        f"console.log(JSON.stringify(applyEvent(dag, {json.dumps(_event(label='half'))})));"
    )
    folded = json.loads(node("--input-type=module", "-e", script).stdout)
    assert folded == msgspec.to_builtins(work.snapshot())
