"""The JavaScript client (dagstream_app/static/dagstream_app/client), its types, and the
dashboard's modules (dagstream_app/static/dagstream_app/dashboard) that share its backoff.

- protocol.d.ts is what the JSON Schema generates, and the client's own .d.ts files
  are what its modules declare (both regenerated here; any difference fails);
- the modules type-check strictly (JSDoc), and so does TypeScript that uses the
  installed package, exhaustive ``switch (msg.type)`` with a ``never`` check included;
- node's test runner passes the store, backoff, resume, command and hook tests, and the
  dashboard's: its reconnect delay is the client's full-jitter function, capped;
- the store folds a real run's events into exactly the server's snapshot;
- no module (client or dashboard) is over 450 lines.
"""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import msgspec
import pytest
from django.core.management import call_command

from dagstream_app import protocol, services, state
from tests.jstools import CLIENT, JS, node, tsc
from tests.servers import ROOT

pytestmark = pytest.mark.usefixtures("js_tools")

DASHBOARD = CLIENT.parent / "dashboard"
DECLARATIONS = sorted(module.with_suffix(".d.ts").name for module in CLIENT.glob("*.js"))


def _schema() -> str:
    out = StringIO()
    call_command("dagstream_schema", stdout=out)
    return out.getvalue()


def test_protocol_types_are_generated_from_the_schema() -> None:
    generated = node("gen-protocol-types.mjs", stdin=_schema()).stdout
    committed = (CLIENT / "protocol.d.ts").read_text()
    assert generated == committed, (
        "protocol.d.ts is stale: run `python manage.py dagstream_schema | "
        "node tests/js/gen-protocol-types.mjs > dagstream_app/static/dagstream_app/client/"
        "protocol.d.ts` (npm run types in tests/js)"
    )
    for name in ("ServerEvent", "ServerReply", "ServerMessage", "ClientCommand", "ClientEvent"):
        assert re.search(rf"^export type {name} =", committed, re.M), name
    for struct in ("NodeState", "DagSnapshot", "GateView", "Keepalive", "HumanDecision"):
        assert f"export interface {struct} {{" in committed, struct


def test_the_modules_type_check_and_their_declarations_are_current(tmp_path: Path) -> None:
    node("build-types.mjs", str(tmp_path))
    for name in DECLARATIONS:
        assert (tmp_path / name).read_text() == (CLIENT / name).read_text(), (
            f"{name} is stale: run `node tests/js/build-types.mjs`"
        )


def test_typescript_using_the_installed_package_compiles() -> None:
    tsc("-p", "tsconfig.json")


def test_the_react_example_type_checks_as_the_docs_show_it() -> None:
    """docs/client.md's .tsx blocks (and the README's), as they stand, under the strict
    settings of Vite's react-ts template (tsconfig.example.json), with the installed
    package's types."""
    blocks = _blocks("tsx")
    [component] = [b for b in blocks if "export function Run(" in b]
    [main] = [b for b in blocks if "createRoot(" in b]
    [options] = [b for b in blocks if "const options: ClientOptions" in b]
    docs = JS / "build" / "docs-example"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "Run.tsx").write_text(component)
    (docs / "main.tsx").write_text(main)
    (docs / "options.tsx").write_text(options.replace("const options", "export const options"))
    readme = (ROOT / "README.md").read_text()
    [status] = re.findall(r"^```tsx\n(.*?)^```", readme, re.S | re.M)
    (docs / "readme.tsx").write_text(status)
    tsc("-p", "tsconfig.example.json")  # the example pages of the browser tests
    config = {"extends": "../../tsconfig.example.json", "include": ["*.tsx"]}
    (docs / "tsconfig.json").write_text(json.dumps(config))
    tsc("-p", str(docs / "tsconfig.json"))


def test_a_message_type_left_unhandled_fails_to_compile() -> None:
    source = (JS / "types" / "exhaustive.ts").read_text()
    without_keepalive = source.replace('    case "keepalive":\n      return "still here";\n', "")
    assert without_keepalive != source
    broken = JS / "build" / "unhandled.ts"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text(without_keepalive)
    done = tsc(
        "--noEmit", "--strict", "--moduleResolution", "bundler", "--module", "esnext",
        "--target", "es2022", str(broken), check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Type 'Keepalive' is not assignable to type 'never'" in done.stdout


def test_no_module_is_over_450_lines() -> None:
    """The bound tests/test_module_sizes.py keeps for the app's Python, for its JavaScript."""
    modules = [*CLIENT.glob("*.js"), *DASHBOARD.glob("*.js")]
    long = {p.name: n for p in modules if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def test_javascript_is_formatted() -> None:
    node("node_modules/prettier/bin/prettier.cjs", "--config", ".prettierrc.json", "--check",
         str(CLIENT / "*.js"), str(DASHBOARD / "*.js"), ".")  # fmt: skip


def test_node_tests_pass() -> None:
    done = node("--test", "--test-force-exit", "--test-timeout=60000", "test/")
    counts = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", done.stdout, re.M))
    assert counts["fail"] == counts["cancelled"] == counts["skipped"] == "0", done.stdout
    assert int(counts["pass"]) > 0
    for suite in (
        "backoff",
        "dashboard reconnect backoff",
        "reconnecting",
        "commands",
        "React 18, strict mode",
        "React 19, strict mode",
    ):
        assert re.search(rf"^ok \d+ - {re.escape(suite)}$", done.stdout, re.M), suite


def test_the_installed_package_exports_the_modules() -> None:
    script = (
        "const c = await import('@dagstream/client');"
        "const r = await import('@dagstream/client/store');"
        "console.log(JSON.stringify([Object.keys(c).sort(), Object.keys(r).sort()]));"
    )
    client, store = json.loads(node("--input-type=module", "-e", script).stdout)
    assert {"DagStreamClient", "CommandError", "backoffDelay", "ticketFetcher"} <= set(client)
    assert {"applyEvent", "applyEvents", "fromSnapshot"} <= set(store)
    installed = JS / "node_modules" / "@dagstream" / "client"
    assert not installed.is_symlink()  # a copy, as `npm install --install-links` gives
    shipped = sorted(p.name for p in installed.iterdir())
    assert shipped == sorted(p.name for p in CLIENT.iterdir())


def test_the_client_stops_on_the_servers_terminal_close_codes() -> None:
    script = (
        "const c = await import('@dagstream/client');"
        "console.log(JSON.stringify(c.TERMINAL_CLOSE_CODES));"
    )
    codes = json.loads(node("--input-type=module", "-e", script).stdout)
    assert codes == [
        protocol.CLOSE_UNAUTHENTICATED,
        protocol.CLOSE_FORBIDDEN,
        protocol.CLOSE_NOT_FOUND,
    ]


def _builtins(snapshot: Any) -> Any:
    return msgspec.to_builtins(snapshot)


@pytest.mark.django_db
def test_the_store_folds_a_run_into_the_servers_snapshot(make_user: Any) -> None:
    user = make_user("view_dag", "decide_gate", "control_dag")
    services.create_dag(
        "js-1",
        name="etl",
        nodes=[{"id": "a", "label": "A"}, "b", "c"],
        edges=[("a", "b")],
        budget=5,
    )
    start = state.snapshot("js-1")
    assert start is not None
    services.reports("js-1").node_state("a", "running", metrics={"tries": 1})
    services.reports("js-1").node_state("a", "completed", output={"rows": 2}, metrics={"ms": 3})
    services.reports("js-1").edge_active("a", "b")
    services.reports("js-1").mutate({"op": "add_node", "node": {"id": "d", "label": "D"}})
    services.reports("js-1").mutate({"op": "add_edge", "from": "b", "to": "d"})
    services.reports("js-1").mutate({"op": "add_edge", "from": "c", "to": "d"})
    services.reports("js-1").mutate({"op": "remove_edge", "from": "b", "to": "d"})
    services.reports("js-1").mutate({"op": "remove_node", "node_id": "c"})
    services.reports("js-1").node_state("b", "running")
    services.reports("js-1").cost(spent=1.25)
    services.reports("js-1").error("flaky", node_id="b")
    services.open_gate("js-1", "b", {"title": "Ship?", "rows": [1, 2]})
    services.open_gate(
        "js-1", "d", {"title": "And this?"}, assignees=[user.username, "group:ops"], quorum=2
    )
    services.decide_gate("js-1", "b", "modify", feedback="fewer", actor=user)
    services.decide_gate("js-1", "d", "approve", feedback="ok", actor=user)  # one vote of two
    services.control("js-1", "pause", actor=user)
    services.control("js-1", "resume", actor=user)
    services.reports("js-1").node_state("b", "completed")
    services.reports("js-1").node_state("d", "skipped")
    services.reports("js-1").cost(spent=2.5, budget=4)
    services.reports("js-1").complete({"rows": 2})
    final = state.snapshot("js-1")
    assert final is not None
    events = [json.loads(text) for _, text in state.event_frames("js-1", start.last_seq)]
    # every event type (gate d, half-decided, closes as the run completes)
    assert {e["type"] for e in events} == set(protocol.EVENT_TYPES)
    # One event per frame, then the same events three at a time (batched frames).
    for size in (1, 3):
        frames = [events[i : i + size] for i in range(0, len(events), size)]
        payload = json.dumps({"snapshot": _builtins(start), "frames": frames})
        folded = json.loads(node("support/fold.mjs", stdin=payload).stdout)
        expected = _builtins(final)
        # Engine liveness is no event: the store keeps the snapshot's until the next one.
        for key in ("engine_seen_at", "engine_stale"):
            assert folded.pop(key) == _builtins(start)[key]
            expected.pop(key)
        assert folded == expected, size


def _blocks(language: str) -> list[str]:
    doc = (ROOT / "docs" / "client.md").read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", doc, re.S | re.M)


def test_the_docs_show_the_code_the_tests_run() -> None:
    assert (JS / "example" / "App.tsx").read_text() in _blocks("tsx")
    [switch] = [block for block in _blocks("ts") if "describeMessage" in block]
    body = switch[switch.index("export function describeMessage") :]
    assert body in (JS / "types" / "exhaustive.ts").read_text()
