"""Dashboard pages and htmx actions through Django's test client."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from dagstream_app import services
from dagstream_app.models import Dag, Gate

pytestmark = pytest.mark.django_db

NODES = [{"id": "extract", "label": "Extract"}, {"id": "load", "label": "Load"}]


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Users are made per test; PBKDF2 would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dag(db: Any) -> Dag:
    return services.create_dag(
        "etl-1", name="etl", nodes=NODES, edges=[("extract", "load")], budget=5.0
    )


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(make_user) -> Client:
    return client_for(make_user("view_dag", "decide_gate", "control_dag"))


@pytest.fixture
def viewer(make_user) -> Client:
    return client_for(make_user("view_dag"))


# ------------------------------------------------------------ access


@pytest.mark.parametrize("url", ["/dags/", "/dags/etl-1/", "/dags/etl-1/history/"])
def test_anonymous_is_sent_to_login(dag: Dag, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize(
    "url", ["/dags/", "/dags/etl-1/", "/dags/etl-1/history/", "/dags/etl-1/nodes/extract/"]
)
def test_without_view_dag_pages_are_403(dag: Dag, make_user, url: str) -> None:
    response = client_for(make_user()).get(url)
    assert response.status_code == 403
    assert b"No access" in response.content


def test_without_view_dag_posts_are_403(dag: Dag, make_user) -> None:
    client = client_for(make_user())
    assert client.post("/dags/etl-1/control/", {"action": "pause"}).status_code == 403
    assert Dag.objects.get().status == "running"


@pytest.mark.parametrize("url", ["/dags/nope/", "/dags/nope/history/", "/dags/etl-1/nodes/nope/"])
def test_unknown_dag_or_node_is_404(dag: Dag, viewer: Client, url: str) -> None:
    response = viewer.get(url)
    assert response.status_code == 404
    assert b"Not found" in response.content and b"dagstream.css" in response.content


def test_per_dag_hook_narrows_view(dag: Dag, viewer: Client) -> None:
    with override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.deny_etl"}):
        assert viewer.get("/dags/etl-1/").status_code == 403


def test_login_page_is_styled(db: Any) -> None:
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert b"dagstream.css" in response.content
    assert b'name="username"' in response.content


# -------------------------------------------------------------- list


def test_list_shows_runs_with_progress_and_cost(dag: Dag, viewer: Client) -> None:
    services.reports("etl-1").node_state("extract", "completed")
    services.reports("etl-1").cost(spent=1.25)
    html = viewer.get("/dags/").content.decode()
    assert 'data-dag-id="etl-1"' in html
    assert "1 / 2" in html
    assert "$1.25" in html and "$5.00" in html
    assert "/ws/dags/?ids=etl-1" in html
    assert "decision needed" not in html
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    html = viewer.get("/dags/").content.decode()
    assert 'data-waiting="1"' in html and "1 decision needed" in html
    assert "1 / 2" in html  # the gate join does not multiply the node counts


def test_list_filters_and_paginates(db: Any, viewer: Client) -> None:
    for i in range(30):
        services.create_dag(f"run-{i}", name="nightly" if i % 2 else "hourly")
    services.reports("run-3").fail("boom")
    html = viewer.get("/dags/", {"status": "failed"}).content.decode()
    assert html.count("data-dag-id=") == 1 and 'data-dag-id="run-3"' in html
    html = viewer.get("/dags/", {"q": "hourly"}).content.decode()
    assert html.count("data-dag-id=") == 15
    first = viewer.get("/dags/").content.decode()
    assert first.count("data-dag-id=") == 25 and "Page 1 of 2" in first
    second = viewer.get("/dags/", {"page": 2}).content.decode()
    assert second.count("data-dag-id=") == 5


def test_list_counts_and_pages_only_the_runs_the_hook_shows(db: Any, viewer: Client) -> None:
    for i in range(27):
        services.create_dag(f"run-{i:02d}", name="nightly")
    for i in range(5):  # the newest: on the first page if they counted
        services.create_dag(f"hidden-{i}", name="secret")
    with override_settings(DAGSTREAM={"PERMISSION_HOOK": "tests.hooks.hide_secret_dags"}):
        first = viewer.get("/dags/").content.decode()
        second = viewer.get("/dags/", {"page": 2}).content.decode()
    assert "27 runs" in first and "Page 1 of 2" in first
    assert first.count("data-dag-id=") == 25 and second.count("data-dag-id=") == 2
    assert "hidden-" not in first + second


# ------------------------------------------------------------ detail


def test_detail_renders_every_region(dag: Dag, operator: Client) -> None:
    services.reports("etl-1").node_state("extract", "running")
    services.open_gate("etl-1", "load", {"title": "Ship it?", "body": "Looks fine"})
    html = operator.get("/dags/etl-1/").content.decode()
    assert 'data-node-id="extract" data-status="running"' in html
    assert 'data-node-id="load" data-status="waiting"' in html
    assert 'ws-connect="/ws/dags/etl-1/html/"' in html
    assert 'id="ds-seq" data-seq="4"' in html
    assert 'data-connection="reconnecting"' in html
    for region in ('id="cost"', 'id="controls"', 'id="gate-list"', 'id="timeline"', 'id="graph"'):
        assert region in html
    assert ">Approve<" in html and ">Reject<" in html and ">Modify<" in html
    assert ">Pause<" in html and ">Resume<" in html and ">Cancel<" in html
    assert "hx-confirm=" in html
    assert '"allowScriptTags": false' in html
    assert "django_htmx/ext/hx-ws-2" in html and "dagstream_app/dashboard/main.js" in html
    assert "X-CSRFToken" in html


def page_config(client: Client, url: str = "/dags/etl-1/") -> Any:
    return config_in(client.get(url).content.decode())


def config_in(html: str) -> Any:
    """What a page hands its script (``#ds-config``)."""
    found = re.search(r'<script id="ds-config" type="application/json">(.*?)</script>', html)
    assert found is not None
    return json.loads(found.group(1))


def test_page_hands_the_script_its_numbers_from_python(dag: Dag, viewer: Client) -> None:
    html = viewer.get("/dags/etl-1/").content.decode()
    config = config_in(html)
    assert config.pop("text")["live"] == "Live"  # the scripts' words (test_i18n)
    assert config == {
        "closeCodes": {
            "unauthenticated": 4001,
            "forbidden": 4003,
            "not_found": 4004,
            "try_again_later": 4013,
        },
        "timelineLength": 100,
        "viewerNames": None,  # who may not decide gates: their cards' buttons are disabled
    }
    assert "last 100 events" in html


def test_page_tells_the_script_who_decides_and_their_groups(dag: Dag, make_user: Any) -> None:
    # The script makes a live gate card read-only to whom its assignees do not name.
    user = make_user("view_dag", "decide_gate", username="bob")
    user.groups.add(Group.objects.create(name="release managers"), Group.objects.create(name="ops"))
    # The names in a gate's assignees that name them, as the server's rule says: the
    # script only compares.
    names = page_config(client_for(user))["viewerNames"]
    assert names == ["bob", "group:ops", "group:release managers"]


def test_only_the_run_page_reads_who_decides_once(
    dag: Dag, make_user: Any, host_base: None
) -> None:
    # Only the run page's gate cards arrive live: the other pages do not read the
    # viewer's groups (one query), and the run page reads them once for its cards and script.
    # (In a host's base without the navigation's gate count, which reads them on any page.)
    user = make_user("view_dag", "decide_gate", username="bob")
    user.groups.add(Group.objects.create(name="ops"))
    services.open_gate("etl-1", "load", {"title": "Ship it?"}, assignees=["group:ops"])
    client = client_for(user)
    for url, reads in (("/dags/etl-1/", 1), ("/dags/", 0), ("/dags/etl-1/history/", 0)):
        with CaptureQueriesContext(connection) as queries:
            config = page_config(client, url)
        groups = [q for q in queries if 'SELECT "auth_group"."name"' in q["sql"]]
        assert len(groups) == reads, url
        assert (config["viewerNames"] is not None) == (reads == 1), url


def test_feedback_box_takes_the_configured_limit(dag: Dag, operator: Client) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    with override_settings(DAGSTREAM={"FEEDBACK_MAX_LENGTH": 50}):
        html = operator.get("/dags/etl-1/").content.decode()
    assert 'name="feedback" rows="2" maxlength="50"' in html


def test_engine_text_is_escaped(dag: Dag, operator: Client) -> None:
    evil = "<script>alert(1)</script>"
    services.reports("etl-1").node_state("extract", "completed", output=evil, metrics={evil: evil})
    services.open_gate("etl-1", "load", {"title": evil, "body": evil, evil: evil})
    services.reports("etl-1").error(evil, node_id="extract")
    for url in ("/dags/etl-1/", "/dags/etl-1/nodes/extract/", "/dags/etl-1/history/"):
        html = operator.get(url).content.decode()
        assert evil not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_viewer_sees_disabled_actions(dag: Dag, viewer: Client) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    html = viewer.get("/dags/etl-1/").content.decode()
    assert "You don't have permission to decide gates." in html
    assert "You can watch this run but not control it." in html
    assert 'value="approve" class="btn btn--primary" disabled' in html


def test_node_panel_shows_output_and_metrics(dag: Dag, viewer: Client) -> None:
    services.reports("etl-1").node_state(
        "extract", "completed", output={"rows": 12}, metrics={"ms": 5}
    )
    html = viewer.get("/dags/etl-1/nodes/extract/").content.decode()
    assert "&quot;rows&quot;: 12" in html and "ms" in html


def test_node_ids_with_slashes_and_spaces_route(db: Any, viewer: Client) -> None:
    services.create_dag("odd", nodes=[{"id": "a/b c?", "label": "Odd"}])
    page = viewer.get("/dags/odd/").content.decode()
    assert 'data-href="/dags/odd/nodes/a%2Fb%20c%3F/"' in page
    assert viewer.get("/dags/odd/nodes/a%2Fb%20c%3F/").status_code == 200


def test_history_steps_through_state(dag: Dag, viewer: Client) -> None:
    services.reports("etl-1").node_state("extract", "running")
    services.reports("etl-1").node_state("extract", "completed")
    services.reports("etl-1").mutate({"op": "add_node", "node": {"id": "retry", "label": "Retry"}})
    at2 = viewer.get("/dags/etl-1/history/", {"seq": 2}).content.decode()
    assert 'data-node-id="extract" data-status="running"' in at2
    assert "Running · 0 ms" in at2  # durations are as of the replayed event, not now
    assert 'data-node-id="retry"' not in at2
    assert "ws-connect" not in at2
    at4 = viewer.get("/dags/etl-1/history/", {"seq": 4}).content.decode()
    assert 'data-node-id="extract" data-status="completed"' in at4
    assert 'data-node-id="retry"' in at4


def test_history_steps_name_the_event_shown_in_the_address(dag: Dag, viewer: Client) -> None:
    services.reports("etl-1").node_state("extract", "running")
    hx = {"HX-Request": "true"}
    for asked, shown in (("1", 1), ("2", 2), ("99", 2), ("x", 2), ("-5", 1)):
        response = viewer.get("/dags/etl-1/history/", {"seq": asked}, headers=hx)
        assert f'id="replay-view" data-seq="{shown}"' in response.content.decode()
        assert response["HX-Replace-Url"] == f"/dags/etl-1/history/?seq={shown}"
    assert "HX-Replace-Url" not in viewer.get("/dags/etl-1/history/")


# ----------------------------------------------------------- actions


def test_approve_by_post(dag: Dag, operator: Client) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    response = operator.post(
        "/dags/etl-1/gates/load/decide/", {"decision": "approve", "feedback": "ok"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-gate-status="approved"' in html and ">Approve<" not in html
    gate = Gate.objects.get()
    assert gate.status == "approved" and gate.feedback == "ok"


def test_second_decision_is_a_readable_conflict(dag: Dag, operator: Client) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    operator.post("/dags/etl-1/gates/load/decide/", {"decision": "reject"})
    response = operator.post("/dags/etl-1/gates/load/decide/", {"decision": "approve"})
    assert response.status_code == 409
    assert "Someone else decided first: reject by" in response.content.decode()
    assert Gate.objects.get().status == "rejected"


def test_modify_without_feedback_keeps_the_form(dag: Dag, operator: Client) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    response = operator.post("/dags/etl-1/gates/load/decide/", {"decision": "modify"})
    assert response.status_code == 400
    assert "needs feedback" in response.content.decode()
    assert ">Modify<" in response.content.decode()


def test_decide_without_permission_is_forbidden(dag: Dag, viewer: Client) -> None:
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    response = viewer.post("/dags/etl-1/gates/load/decide/", {"decision": "approve"})
    assert response.status_code == 403
    assert "may not decide" in response.content.decode()
    assert Gate.objects.get().status == "pending"


def test_pause_resume_cancel(dag: Dag, operator: Client) -> None:
    response = operator.post("/dags/etl-1/control/", {"action": "pause"})
    assert response.status_code == 200
    assert Dag.objects.get().status == "paused"
    html = response.content.decode()
    assert 'value="pause"' not in html  # hx-vals carries the action
    assert operator.post("/dags/etl-1/control/", {"action": "pause"}).status_code == 409
    operator.post("/dags/etl-1/control/", {"action": "resume"})
    assert Dag.objects.get().status == "running"
    operator.post("/dags/etl-1/control/", {"action": "cancel"})
    assert Dag.objects.get().status == "cancelling"


def test_control_without_permission(dag: Dag, viewer: Client) -> None:
    response = viewer.post("/dags/etl-1/control/", {"action": "pause"})
    assert response.status_code == 403
    assert "may not control" in response.content.decode()


def test_actions_need_csrf(dag: Dag, make_user) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("view_dag", "control_dag"))
    assert client.post("/dags/etl-1/control/", {"action": "pause"}).status_code == 403
    assert Dag.objects.get().status == "running"


# ---------------------------------------------- base template, head, middleware

PAGES = ["/dags/", "/dags/etl-1/", "/dags/etl-1/history/"]
HTMX_MIDDLEWARE = "django_htmx.middleware.HtmxMiddleware"
CSS = "dagstream_app/dagstream.css"
ROOT_WITH_CSRF = re.compile(r'<div class="dagstream" hx-headers=\'\{"X-CSRFToken": "\w+"\}\'>')


@pytest.fixture
def host_base(settings: Any) -> None:
    """``BASE_TEMPLATE`` set to tests/templates/host_base.html: the four blocks, nothing else."""
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [
        {**engine, "DIRS": [Path(__file__).parent / "templates", *engine["DIRS"]]}
    ]
    settings.DAGSTREAM = {"BASE_TEMPLATE": "host_base.html"}


@pytest.mark.parametrize("url", PAGES)
def test_pages_bring_head_and_root_into_a_host_base(
    dag: Dag, viewer: Client, host_base: None, url: str
) -> None:
    html = viewer.get(url).content.decode()
    head, body = html.split("</head>")
    assert html.count(CSS) == 1 and CSS in head
    assert html.count('<meta name="htmx-config"') == 1 and "htmx-config" in head
    # The content sits in one .dagstream root that carries the CSRF header for htmx.
    assert ROOT_WITH_CSRF.search(body.split('<main id="host-main">')[1].lstrip()[:200])
    assert "Host intranet" in body and 'class="dagstream"' not in body.split("<main")[0]


def test_refusal_page_in_a_host_base(dag: Dag, make_user, host_base: None) -> None:
    html = client_for(make_user()).get("/dags/etl-1/").content.decode()
    assert "No access" in html and "Host intranet" in html
    assert html.count(CSS) == 1 and html.count('<meta name="htmx-config"') == 1
    assert ROOT_WITH_CSRF.search(html)


@pytest.mark.parametrize("url", PAGES)
def test_pages_in_dagstreams_own_base_have_one_head(dag: Dag, viewer: Client, url: str) -> None:
    html = viewer.get(url).content.decode()
    assert html.count(CSS) == 1 and html.count('<meta name="htmx-config"') == 1
    assert '<body class="dagstream">' in html and ROOT_WITH_CSRF.search(html)


@pytest.mark.parametrize("installed", [False, True], ids=["without", "with"])
def test_htmx_requests_need_no_htmx_middleware(
    dag: Dag, operator: Client, settings: Any, installed: bool
) -> None:
    others = [m for m in settings.MIDDLEWARE if m != HTMX_MIDDLEWARE]
    settings.MIDDLEWARE = [*others, HTMX_MIDDLEWARE] if installed else others
    services.open_gate("etl-1", "load", {"title": "Ship it?"})
    hx = {"HX-Request": "true"}
    assert operator.get("/dags/etl-1/nodes/extract/", headers=hx).status_code == 200
    replay = operator.get("/dags/etl-1/history/", {"seq": 1}, headers=hx)
    assert replay.status_code == 200 and 'id="replay-view"' in replay.content.decode()
    assert operator.post("/dags/etl-1/control/", {"action": "pause"}, headers=hx).status_code == 200
    decided = operator.post("/dags/etl-1/gates/load/decide/", {"decision": "approve"}, headers=hx)
    assert decided.status_code == 200
    assert Dag.objects.get().status == "paused" and Gate.objects.get().status == "approved"


@pytest.mark.parametrize(
    "url",
    [
        "/dags/%00/",
        "/dags/etl-1/nodes/%00/",
        "/dags/etl-1/nodes/ex%00tract/",
        "/dags/a%00b/history/",
    ],
)
def test_nul_in_an_address_is_a_404_not_a_500(dag: Dag, operator: Client, url: str) -> None:
    assert operator.get(url).status_code == 404


def test_nul_in_a_search_or_a_decision_is_no_error(dag: Dag, operator: Client) -> None:
    assert operator.get("/dags/?q=%00").status_code == 200
    services.open_gate("etl-1", "load", {"title": "Load?"})
    response = operator.post(
        "/dags/etl-1/gates/load/decide/", {"decision": "modify", "feedback": "x\x00y"}
    )
    assert response.status_code == 400 and "NUL" in response.content.decode()
    assert Gate.objects.get(dag=dag, node_id="load").status == "pending"


@pytest.mark.django_db(transaction=True)
def test_run_pages_render_one_at_a_time_per_process(make_user, monkeypatch) -> None:
    # Two big pages at once starved the event loop (docs/deployment.md): the second
    # waits until the first is rendered.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from dagstream_app import state

    services.create_dag("one-at-a-time", nodes=["a"])
    user = make_user("view_dag")
    entered, release = threading.Semaphore(0), threading.Event()
    real = state.page_snapshot

    def held(dag_id: str):
        entered.release()
        assert release.wait(30)
        return real(dag_id)

    monkeypatch.setattr(state, "page_snapshot", held)

    def get(path: str) -> int:
        client = Client()
        client.force_login(user)
        return client.get(path).status_code

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(get, "/dags/one-at-a-time/")
        assert entered.acquire(timeout=30)  # the first page is being built
        second = pool.submit(get, "/dags/one-at-a-time/")
        assert not entered.acquire(timeout=0.5)  # the second waits its turn
        release.set()
        assert entered.acquire(timeout=30)  # then it is built
        assert (first.result(30), second.result(30)) == (200, 200)
