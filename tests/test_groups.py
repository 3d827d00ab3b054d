"""Fan-outs grouped (issue 18.2): one box with counts, live counts, a bounded page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client, override_settings

from dagstream_app import groups, live, render, services, state
from dagstream_app.errors import InvalidDelta
from dagstream_app.models import Event, Node

pytestmark = pytest.mark.django_db

WIDTH = 120


def fan_out(dag_id: str = "fan", width: int = WIDTH) -> list[str]:
    """split -> chunk-0000 .. chunk-<width> -> join; the chunks are one fan-out."""
    chunks = [f"chunk-{i:04d}" for i in range(width)]
    nodes = ["split", *chunks, "join"]
    edges = [("split", c) for c in chunks] + [(c, "join") for c in chunks]
    services.create_dag(dag_id, name="fan", nodes=nodes, edges=edges)
    return chunks


@pytest.fixture
def viewer(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("view_dag"))
    return client


def test_siblings_that_share_parents_and_children_are_one_group() -> None:
    ids = ["a", *[f"m{i}" for i in range(5)], "z", "lone"]
    edges = [("a", f"m{i}") for i in range(5)] + [(f"m{i}", "z") for i in range(5)]
    edges.append(("a", "lone"))
    found = groups.group_nodes(ids, edges, threshold=5)
    (key,) = found.members
    assert found.members[key] == [f"m{i}" for i in range(5)]
    assert found.items == ["a", key, "z", "lone"]
    assert found.edges == [("a", key), (key, "z"), ("a", "lone")]
    assert found.labels[key] == "m0, …"  # too short a common start: the first, and more
    # One fewer than the threshold: every node on its own; 0: grouping off.
    assert not groups.group_nodes(ids, edges, threshold=6).members
    assert not groups.group_nodes(ids, edges, threshold=0).members


def test_declared_groups_win_over_shape() -> None:
    ids = ["a", "b", "c"]
    found = groups.group_nodes(ids, [], threshold=2, declared={"a": "g", "b": "g"})
    assert found.members == {"g": ["a", "b"]}
    assert found.items == ["g", "c"]


def test_group_label_is_the_members_common_start() -> None:
    assert groups.group_label(["chunk-01", "chunk-02"], {}) == "chunk-*"
    assert groups.group_label(["x", "y"], {"x": "Fetch A", "y": "Fetch B"}) == "Fetch"


def test_detail_page_draws_a_fan_out_as_one_group_node(viewer: Client) -> None:
    chunks = fan_out()
    reports = services.reports("fan")
    reports.node_state("split", "completed")
    for c in chunks[:10]:
        reports.node_state(c, "completed")
    reports.node_state(chunks[10], "failed")
    reports.node_state(chunks[11], "running")
    html = viewer.get("/dags/fan/").content.decode()
    assert html.count('class="node group') == 1
    assert len(re.findall(r'class="node[ "]', html)) == 3  # split, the group, join
    group = re.search(r'<g class="node group s-(\w+)"[^>]*>', html)
    assert group is not None and group.group(1) == "running"
    assert 'data-status="running"' in group.group(0)
    assert f'data-total="{WIDTH}"' in group.group(0)
    assert "1 failed · 1 running · 10 done · 108 pending" in html
    assert 'class="node-label" x="42" y="31">chunk-*<' in html
    # The progress line counts every member.
    assert f"11 / {WIDTH + 2}" in re.sub(r"\s+", " ", html) or f"of {WIDTH + 2}" in html


@override_settings(DAGSTREAM={"GROUP_THRESHOLD": 0})
def test_threshold_zero_draws_every_node(viewer: Client) -> None:
    fan_out()
    html = viewer.get("/dags/fan/").content.decode()
    assert 'class="node group' not in html
    assert html.count('class="node s-') == WIDTH + 2


def test_a_members_update_swaps_only_its_groups_box() -> None:
    chunks = fan_out()
    services.reports("fan").node_state(chunks[3], "running")
    seq, frame = state.event_frames("fan", 0)[-1]
    live.cache.clear()
    message = live.events_html("fan", [(seq, frame)], (False, False))
    assert "#ns-" not in message  # no member's slot
    swaps = re.findall(r'hx-swap-oob="innerHTML:#(gs-[^"]+)"', message)
    assert len(swaps) == 1
    assert "1 running · 119 pending" in message
    assert len(message) < 6_000  # the group box, the progress line, one Gantt row, the timeline


def test_a_batch_of_member_updates_is_one_change_to_the_counts() -> None:
    chunks = fan_out()
    reports = services.reports("fan")
    for c in chunks[:30]:
        reports.node_state(c, "completed")
    frames = state.event_frames("fan", 0)[-30:]
    live.cache.clear()
    message = live.events_html("fan", frames, (False, False))
    assert len(re.findall(r"innerHTML:#gs-", message)) == 1
    assert "30 done · 90 pending" in message


def test_history_page_groups_the_same_way(viewer: Client) -> None:
    chunks = fan_out()
    services.reports("fan").node_state(chunks[0], "failed")
    html = viewer.get("/dags/fan/history/").content.decode()
    assert html.count('class="node group') == 1
    assert "1 failed · 119 pending" in html


def test_opening_a_group_lists_its_members_failures_first_paged(viewer: Client) -> None:
    chunks = fan_out()
    reports = services.reports("fan")
    reports.node_state(chunks[100], "failed")
    reports.node_state(chunks[50], "running")
    html = viewer.get("/dags/fan/").content.decode()
    href = re.search(r'<g class="node group[^>]*data-href="([^"]+)"', html)
    assert href is not None
    panel = viewer.get(href.group(1)).content.decode()
    rows = re.findall(r'class="node-row s-(\w+)" data-node-id="([^"]+)"', panel)
    assert rows[:2] == [("failed", chunks[100]), ("running", chunks[50])]
    assert len(rows) == 50  # a page
    assert f"{WIDTH} nodes" in panel and "page 1 of 3" in panel
    assert 'class="node-label"' in panel and "1 failed · 1 running · 118 pending" in panel
    last = viewer.get(href.group(1) + "?page=3").content.decode()
    assert len(re.findall(r'class="node-row ', last)) == WIDTH - 100
    # Each member opens its own panel, as a node does.
    member = re.search(r'hx-get="([^"]+)" hx-target="#node-panel" hx-swap="innerHTML"><span', panel)
    assert member is not None
    assert viewer.get(member.group(1)).status_code == 200
    assert viewer.get("/dags/fan/groups/nope/").status_code == 404


def test_a_search_finds_any_node_by_id_or_label(viewer: Client) -> None:
    chunks = fan_out()
    found = viewer.get("/dags/fan/nodes/?q=CHUNK-0042").content.decode()
    assert re.findall(r'data-node-id="([^"]+)"', found) == [chunks[42]]
    assert "1 node matching" in found
    page = viewer.get("/dags/fan/").content.decode()
    href = re.search(r'<g class="node group[^>]*data-href="([^"]+)"', page)
    assert href is not None
    within = viewer.get(href.group(1) + "?q=0011").content.decode()
    assert re.findall(r'class="node-row s-\w+" data-node-id="([^"]+)"', within) == [chunks[11]]
    assert "No node matches" in viewer.get("/dags/fan/nodes/?q=zzz").content.decode()


def test_engines_declare_their_groups_by_name(viewer: Client) -> None:
    # Two fan-outs of the same shape, told apart by the engine: two groups, by name.
    embeds = [{"id": f"e{i}", "label": f"Embed {i}", "group": "embed"} for i in range(60)]
    scores = [{"id": f"s{i}", "label": f"Score {i}", "group": "score"} for i in range(60)]
    members = [n["id"] for n in embeds + scores]
    edges = [("load", m) for m in members] + [(m, "report") for m in members]
    services.create_dag("named", nodes=["load", *embeds, *scores, "report"], edges=edges)
    assert Node.objects.get(dag_id="named", node_id="e3").group == "embed"
    services.reports("named").node_state("s7", "failed")
    html = viewer.get("/dags/named/").content.decode()
    found = re.findall(r'<g class="node group s-(\w+)" data-node-id="([^"]+)"', html)
    assert sorted(found) == [("pending", "embed"), ("pending", "score")]
    assert 'y="31">embed</text>' in html and 'y="31">score</text>' in html
    assert "1 failed · 59 pending" in html


def test_a_node_added_at_run_time_joins_its_declared_group() -> None:
    services.create_dag("grow", nodes=["a"])
    reports = services.reports("grow")
    for i in range(55):
        reports.mutate({"op": "add_node", "node": {"id": f"m{i}", "label": "", "group": "map"}})
    payload = Event.objects.filter(dag_id="grow", type="dag_mutated").last().payload  # type: ignore[union-attr]
    assert payload["mutation"]["node"] == {"id": "m54", "label": "", "group": "map"}
    assert state.grouping("grow").members["map"][:2] == ["m0", "m1"]
    # Without a group, the payload is as it always was.
    reports.mutate({"op": "add_node", "node": {"id": "z"}})
    last = Event.objects.filter(dag_id="grow", type="dag_mutated").last()
    assert last is not None and "group" not in last.payload["mutation"]["node"]


def test_a_nul_in_a_group_is_refused() -> None:
    with pytest.raises(InvalidDelta):
        services.create_dag("nul", nodes=[{"id": "a", "group": "g\x00"}])


@pytest.mark.parametrize("width", [4, 2])  # a fan-out grouped; too few to group
@override_settings(DAGSTREAM={"GROUP_THRESHOLD": 3})
def test_a_live_gantt_card_is_the_one_the_page_draws(
    django_assert_num_queries: Any, width: int
) -> None:
    chunks = fan_out(width=width)
    reports = services.reports("fan")
    for node in ("split", *chunks, "join"):
        reports.node_state(node, "running")
        reports.node_state(node, "completed")
    reports.complete()  # bars that end: the card does not move with the clock
    frames = state.event_frames("fan", 0)[-1:]
    reads = live._Reads("fan")
    grouped = bool(reads.grouping().members)
    assert grouped == (width == 4)
    if not grouped:
        with django_assert_num_queries(0):  # no groups: their counts cost nothing
            assert reads.views() == {}
    slot, html = live._message_part("fan", "gantt", frames, reads)
    drawn = render.gantt_html(state.gantt("fan"), oob=True, dag_id="fan")
    assert slot == "gantt" and html == drawn
    assert ("gantt-group" in drawn) == grouped


def test_the_gantt_view_draws_a_group_as_one_expandable_row(viewer: Client) -> None:
    chunks = fan_out()
    reports = services.reports("fan")
    reports.node_state("split", "running")
    reports.node_state("split", "completed")
    for c in chunks[:5]:
        reports.node_state(c, "running")
    reports.node_state(chunks[0], "completed")
    view = state.gantt("fan")
    assert view is not None
    assert [(b.label, b.members, b.end) for b in view.bars] == [
        ("split", 0, view.bars[0].end),
        ("chunk-*", WIDTH, None),
    ]
    html = viewer.get("/dags/fan/").content.decode()
    row = re.search(r'<g class="gantt-row g-running gantt-group"[^>]*>', html)
    assert row is not None and 'data-href="/dags/fan/groups/' in row.group(0)
    assert f"chunk-* \u00d7{WIDTH}" in html
