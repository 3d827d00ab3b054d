"""Gate bodies as safe Markdown, presentation fields as a readable list, labels in the timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagstream_app import live, render, services, state
from dagstream_app.markup import markdown_html
from dagstream_app.protocol import GateView


@pytest.mark.parametrize(
    ("source", "present", "absent"),
    [
        ("**bold** and *it*", ["<strong>bold</strong>", "<em>it</em>"], []),
        ("# Title\n\n- one\n- two", ["<h1>Title</h1>", "<li>one</li>"], []),
        ("<script>alert(1)</script>", ["&lt;script&gt;alert(1)&lt;/script&gt;"], ["<script"]),
        ('<img src=x onerror="alert(1)">', ["&lt;img src=x"], ["<img"]),
        (
            "[x](https://example.com)",
            ['<a href="https://example.com" rel="noopener noreferrer">'],
            [],
        ),
        ("[m](mailto:ops@example.com)", ['href="mailto:ops@example.com"'], []),
        ("[x](javascript:alert(1))", ["[x](javascript:alert(1))"], ["<a "]),
        ("[x](JaVaScRiPt:alert(1))", [], ["<a "]),
        ("[x](data:text/html,hi)", [], ["<a "]),
        ("[x](/admin/)", [], ["<a "]),
        ("[x](//evil.example)", [], ["<a "]),
        ("![chart <b>](https://tracker.example/p.png)", ["chart &lt;b&gt;"], ["<img", "tracker"]),
        ("`<b>`", ["<code>&lt;b&gt;</code>"], []),
    ],
)
def test_markdown_is_safe(source: str, present: list[str], absent: list[str]) -> None:
    html = markdown_html(source)
    for text in present:
        assert text in html
    for text in absent:
        assert text not in html


def gate(presentation: dict[str, Any], status: str = "pending") -> GateView:
    return GateView(
        node_id="review",
        presentation=presentation,
        status=status,  # type: ignore[arg-type]
        decision=None,
        feedback="",
        decided_by="",
        decided_at=None,
        assignees=[],
        quorum=1,
        votes=[],
    )


def test_a_gate_card_shows_the_body_as_markdown_and_fields_as_a_list(db: Any) -> None:
    body = "Check **section 2**.\n\n" + "A long line of prose. " * 60
    html = render.gate_html(
        "d",
        gate(
            {
                "title": "Publish?",
                "body": body,
                "words": 1840,
                "draft_ready": True,
                "sources": ["IEA", "NREL"],
                "scores": {"style": 0.9},
            }
        ),
        True,
    )
    assert "Check <strong>section 2</strong>." in html and html.count("A long line") == 60
    assert "<dt>Words</dt><dd>1,840</dd>" in html
    assert "<dt>Draft ready</dt><dd>Yes</dd>" in html
    assert "<dt>Sources</dt><dd>IEA, NREL</dd>" in html
    assert '<dt>Scores</dt><dd><pre class="code gate-data">{\n  &quot;style&quot;: 0.9\n}' in html


def test_a_decided_gate_folds_what_was_asked(db: Any) -> None:
    html = render.gate_html("d", gate({"body": "Ship it?"}, status="approved"), True)
    assert '<details class="gate-content"><summary>What was asked</summary>' in html


def test_a_body_that_is_not_text_is_shown_as_data(db: Any) -> None:
    html = render.gate_html("d", gate({"body": {"rows": 3}}), True)
    assert '<pre class="code gate-data">{\n  &quot;rows&quot;: 3\n}</pre>' in html


def test_the_timeline_names_nodes_by_their_labels(db: Any) -> None:
    services.create_dag(
        "t",
        nodes=[{"id": "n1", "label": "Extract rows"}, {"id": "n2", "label": "Load"}],
        edges=[("n1", "n2")],
    )
    services.reports("t").node_state("n1", "running")
    services.reports("t").edge_active("n1", "n2")
    services.open_gate("t", "n2", {"title": "ok?"})
    services.reports("t").error("slow", node_id="n1")
    live.cache.clear()
    frames = state.event_frames("t", 1)
    messages = [live.events_html("t", [frame], (True, True)) for frame in frames]
    subjects = [
        m[m.index('tl-subject">') + 12 : m.index("</span>", m.index("tl-subject"))]
        for m in messages
    ]
    assert subjects == ["Extract rows", "Extract rows → Load", "Load", "Load", "Extract rows"]
    snap = state.snapshot("t")
    assert snap is not None
    page = render.regions(snap, (True, True), state.recent_events("t", 100))["timeline"]
    assert 'tl-subject">Extract rows → Load<' in page and 'tl-subject">n1<' not in page


def test_admin_pages_load_the_stylesheet_that_wraps_json(db: Any, make_user: Any) -> None:
    from django.contrib.admin.utils import quote
    from django.test import Client
    from django.urls import reverse

    user = make_user("view_dag")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    services.create_dag("t")
    gate_row = services.open_gate("t", "n", {"title": "ok?", "body": "x" * 500})
    for url in (
        reverse("admin:dagstream_app_dag_change", args=[quote("t")]),
        reverse("admin:dagstream_app_gate_change", args=[gate_row.pk]),
        reverse("admin:dagstream_app_gate_changelist"),
    ):
        html = client.get(url).content.decode()
        assert "dagstream_app/admin.css" in html
    css = Path(render.__file__).parents[1] / "static" / "dagstream_app" / "admin.css"
    assert "white-space: pre-wrap" in css.read_text()
