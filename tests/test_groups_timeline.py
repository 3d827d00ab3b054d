"""The timeline grouped like the graph (issue 18.2): a fan-out's members' events in one
row per group, live; its events paged; the history page of a big fan-out bounded (18.3)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from dagstream_app import live, services, state, views
from dagstream_app.services import Delta
from tests.test_groups import WIDTH, fan_out

pytestmark = pytest.mark.django_db

# A group's timeline row: its DOM id, its group and the group's status.
ROW = (
    r'<li id="(tlg-[^"]+)" class="tl tl-group[^"]*"[^>]*data-node-id="([^"]+)"'
    r' data-status="(\w+)"'
)


@pytest.fixture
def viewer(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("view_dag"))
    return client


def run_some(chunks: list[str], done: int, failed: int = 0) -> None:
    """split done; ``done`` members run and complete, then ``failed`` run and fail."""
    deltas = [
        Delta("node_state", {"node_id": "split", "status": s}) for s in ("running", "completed")
    ]
    for i, chunk in enumerate(chunks[: done + failed]):
        end = "failed" if i >= done else "completed"
        deltas += [
            Delta("node_state", {"node_id": chunk, "status": "running"}),
            Delta("node_state", {"node_id": chunk, "status": end}),
        ]
    for start in range(0, len(deltas), 500):
        services.apply("fan", deltas[start : start + 500])


def test_a_fan_outs_events_are_one_row_in_the_timeline(viewer: Client) -> None:
    chunks = fan_out()
    run_some(chunks, done=60, failed=2)
    services.reports("fan").error("a warning", node_id="split")
    html = viewer.get("/dags/fan/").content.decode()
    timeline = html[html.index('id="timeline"') :]
    rows = re.findall(ROW, timeline)
    assert len(rows) == 1  # 124 members' events, one row
    group = state.grouping("fan").group_of[chunks[0]]
    assert rows[0][1:] == (group, "pending")  # the group's status: members still pending
    row = timeline[timeline.index(rows[0][0]) :]
    row = row[: row.index("</li>")]
    # Its newest member event, and the group's counts, failures first.
    assert "chunk-0061" in row and "2 failed · 60 done · 58 pending" in row
    assert 'data-href="/dags/fan/timeline/' in row
    # The run's own events keep a row each: no member's event has one.
    entries = re.findall(r'<li id="ev-\d+"[^>]*data-type="(\w+)"', timeline)
    # The warning, split's two, the run's start.
    assert entries == ["error", "node_state", "node_state", "execution_state"]
    assert "a group's events on one row" in html


def test_a_members_event_moves_its_groups_row_live() -> None:
    chunks = fan_out()
    run_some(chunks, done=3)
    services.reports("fan").node_state(chunks[7], "running")
    seq, frame = state.event_frames("fan", 0)[-1]
    live.cache.clear()
    live.message_cache.clear()
    message = live.events_html("fan", [(seq, frame)], (False, False))
    assert 'id="ev-' not in message  # no entry of its own
    # The row at the top of the timeline, then filled in with the group's counts.
    moved, filled = re.findall(ROW, message)
    assert moved[0] == filled[0] and moved[1] == filled[1]
    assert message.index('afterbegin:#timeline">' + '<li id="' + moved[0]) < message.index(
        f'<li id="{moved[0]}"', message.index("innerHTML:#gs-")
    )
    assert filled[2] == "running" and "1 running · 3 done · 116 pending" in message
    assert 'hx-swap-oob="true">' in message[message.rindex(f'id="{moved[0]}"') :][:400]
    assert len(message) < 9_000


def forty_members_running() -> list[tuple[int, str]]:
    """The frames of 40 members of a fan-out starting, none of them rendered yet."""
    chunks = fan_out()
    run_some(chunks, done=0)
    services.apply(
        "fan", [Delta("node_state", {"node_id": c, "status": "running"}) for c in chunks[:40]]
    )
    live.cache.clear()
    live.message_cache.clear()
    return state.event_frames("fan", 0)[-40:]


def test_a_batch_of_members_events_is_one_row_once() -> None:
    frames = forty_members_running()
    message = live.events_html("fan", frames, (False, False))
    ids = re.findall(ROW, message)
    assert len(ids) == 2  # one move (the last event's), one fill
    assert "chunk-0039" in message and "chunk-0038" not in message
    assert "40 running · 80 pending" in message


def test_a_batch_renders_only_the_rows_it_sends_and_the_loop_renders_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = forty_members_running()
    rendered: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> str:
        rendered.append(args[2]["seq"])
        return real(*args, **kwargs)

    real = live.group_row_html
    monkeypatch.setattr(live, "group_row_html", counted)
    live.events_html("fan", frames[:20], (False, False))  # that message's regions cached
    live.cache.clear()  # its events' fragments forgotten, made again by the next message
    rendered.clear()
    live.events_html("fan", frames, (False, False))
    assert len(rendered) == 2  # the moved row (the last event's) and the groups' fill
    # A viewer whose batch ended at the 20th event: its row was never rendered, and the
    # cache (read on the event loop) does not render it there: it is a new message.
    assert live.cached_events_html("fan", frames[:20], (False, False)) is None
    assert len(rendered) == 2


def test_a_message_reads_its_groups_once_however_many_members_events(
    django_assert_max_num_queries: Any,
) -> None:
    # The dashboard at a thousand events a second: each event costs its node's row, and
    # the DAG's groups and their counts are read once per message, not once per event.
    frames = forty_members_running()
    with django_assert_max_num_queries(40 + 15):
        message = live.events_html("fan", frames, (False, False))
    assert "40 running · 80 pending" in message
    # Every fragment now cached: the next viewer's message is the same, with no query.
    with django_assert_max_num_queries(0):
        assert live.cached_events_html("fan", frames, (False, False)) == message


def test_a_groups_row_opens_its_members_events_newest_first_paged(viewer: Client) -> None:
    chunks = fan_out()
    run_some(chunks, done=WIDTH)  # 240 members' events
    html = viewer.get("/dags/fan/").content.decode()
    href = re.search(r'class="tl tl-group[^>]*data-href="([^"]+)"', html)
    assert href is not None
    first = viewer.get(href.group(1)).content.decode()
    seqs = [int(s) for s in re.findall(r'<li id="ev-(\d+)"', first)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    assert seqs[0] == state.dag("fan").last_seq  # type: ignore[union-attr]
    assert "chunk-0119" in first and "120 done" in first
    older = re.search(r'hx-get="([^"]+before=\d+)"', first)
    assert older is not None
    second = viewer.get(older.group(1).replace("&amp;", "&")).content.decode()
    more = [int(s) for s in re.findall(r'<li id="ev-(\d+)"', second)]
    assert len(more) == 50 and max(more) < min(seqs)
    # The last page: the first member's first event, and no older page.
    last = viewer.get(f"{href.group(1)}?before=6").content.decode()
    assert re.findall(r'<li id="ev-(\d+)"', last) == ["5", "4"]  # chunk-0000's
    assert "Older" not in last and "Newest" in last and "Newest" not in first
    assert viewer.get("/dags/fan/timeline/nope/").status_code == 404
    assert viewer.get("/dags/nope/timeline/x/").status_code == 404


def test_a_groups_events_are_not_shown_to_who_may_not_see_the_run(make_user: Any) -> None:
    fan_out()
    client = Client()
    client.force_login(make_user())
    group = next(iter(state.grouping("fan").members))
    assert client.get(f"/dags/fan/timeline/{group}/").status_code == 403


def test_the_history_page_of_a_big_fan_out_is_bounded(viewer: Client) -> None:
    def history(width: int) -> str:
        dag_id = f"fan-{width}"
        chunks = [f"c-{i:05d}" for i in range(width)]
        services.create_dag(
            dag_id,
            nodes=["split", *chunks, "join"],
            edges=[("split", c) for c in chunks] + [(c, "join") for c in chunks],
        )
        deltas = [Delta("node_state", {"node_id": c, "status": "running"}) for c in chunks]
        deltas += [Delta("node_state", {"node_id": c, "status": "completed"}) for c in chunks]
        for start in range(0, len(deltas), 1_000):
            services.apply(dag_id, deltas[start : start + 1_000])
        return str(viewer.get(f"/dags/{dag_id}/history/").content.decode())

    small, big = history(60), history(3_000)
    # 6,000 members' events, one group: the page is the size of a 60-member one's.
    assert big.count('class="node group') == 1 and len(re.findall(ROW, big)) == 1
    assert len(big) < 1.05 * len(small) < 150_000
    assert "3,000 / 3,000 done" in big


def test_the_history_page_at_the_latest_event_is_the_log_folded(make_user: Any) -> None:
    # Read as the detail page reads it, it shows what folding the whole log shows.
    user = make_user("view_dag", "decide_gate", "control_dag")
    chunks = fan_out()
    run_some(chunks, done=70, failed=3)
    reports = services.reports("fan")
    reports.mutate({"op": "add_node", "node": {"id": "extra", "label": "Extra"}})
    reports.mutate({"op": "add_edge", "from": "join", "to": "extra"})
    reports.cost(spent=1.25)
    services.open_gate("fan", "join", {"title": "Ship?"})
    services.decide_gate("fan", "join", "approve", feedback="ok", actor=user)
    reports.node_state("join", "completed")
    reports.complete({"rows": 2})
    dag = state.dag("fan")
    assert dag is not None
    latest, folded = views._latest(dag), views._past(dag, dag.last_seq)
    assert latest is not None and folded is not None
    assert latest[:2] == folded[:2]
    for region in ("graph", "status", "progress", "cost", "gates", "results", "timeline"):
        assert drawn(latest[2][region]) == drawn(folded[2][region]), region


def drawn(html: str) -> tuple[str, list[str]]:
    """A region's HTML, its edges apart in any order (the two reads list them differently)."""
    edge = r'<path id="e-[^"]+" class="edge"[^>]*/>'
    return re.sub(edge, "", html), sorted(re.findall(edge, html))


def test_a_groups_events_with_a_seq_that_is_no_number_are_its_newest(viewer: Client) -> None:
    chunks = fan_out()
    run_some(chunks, done=30)
    group = state.grouping("fan").group_of[chunks[0]]
    newest = viewer.get(f"/dags/fan/timeline/{group}/").content.decode()
    for junk in ("abc", "", "1e9"):
        page = viewer.get(f"/dags/fan/timeline/{group}/", {"before": junk})
        assert page.status_code == 200
        assert re.findall(r'<li id="ev-(\d+)"', page.content.decode()) == re.findall(
            r'<li id="ev-(\d+)"', newest
        )
