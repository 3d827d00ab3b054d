"""The JSON read API: what it returns, and every refusal as a JSON error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from django.test import Client

from dagstream_app import protocol, services, state
from dagstream_app.errors import ErrorCode
from dagstream_app.openapi import openapi

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def runs(db: Any) -> None:
    services.create_dag("etl-1", name="etl", nodes=["a", "b"], edges=[("a", "b")], budget=2)
    services.reports("etl-1").node_state("a", "completed")
    services.create_dag("etl-2", name="etl", nodes=["a"])
    services.reports("etl-2").complete()
    services.create_dag("secret-1", name="secret", nodes=["a"])


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(make_user: Any) -> Client:
    return signed_in(make_user("view_dag"))


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


# ------------------------------------------------------------------ list


def test_list_pages_and_filters_newest_first(runs: None, viewer: Client) -> None:
    body = viewer.get("/api/dags/").json()
    assert (body["count"], body["page"], body["pages"], body["next"]) == (3, 1, 1, None)
    assert [r["dag_id"] for r in body["results"]] == ["secret-1", "etl-2", "etl-1"]
    row = body["results"][2]
    assert {k: row[k] for k in ("status", "total", "done", "budget", "engine_stale")} == {
        "status": "running",
        "total": 2,
        "done": 1,
        "budget": 2,
        "engine_stale": False,
    }
    done = viewer.get("/api/dags/", {"status": "completed"}).json()
    assert [r["dag_id"] for r in done["results"]] == ["etl-2"]
    named = viewer.get("/api/dags/", {"q": "secret"}).json()
    assert [r["dag_id"] for r in named["results"]] == ["secret-1"]
    first = viewer.get("/api/dags/", {"page_size": 2, "q": "e"}).json()
    assert (first["count"], first["pages"], len(first["results"])) == (3, 2, 2)
    assert first["next"] == "http://testserver/api/dags/?page_size=2&q=e&page=2"
    second = viewer.get("/api/dags/", {"page_size": 2, "q": "e", "page": 2}).json()
    assert [r["dag_id"] for r in second["results"]] == ["etl-1"] and second["next"] is None


def test_list_and_pages_follow_the_permission_hook(
    runs: None, viewer: Client, settings: Any
) -> None:
    settings.DAGSTREAM = {"PERMISSION_HOOK": "tests.hooks.hide_secret_dags"}
    body = viewer.get("/api/dags/").json()
    assert body["count"] == 2 and "secret-1" not in [r["dag_id"] for r in body["results"]]
    error(viewer.get("/api/dags/secret-1/"), 403, "forbidden")
    error(viewer.get("/api/dags/secret-1/events/"), 403, "forbidden")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"status": "done"}, "status must be one of running, paused, cancelling"),
        ({"page": "x"}, "page must be an integer, not 'x'."),
        ({"page": "0"}, "page must be at least 1, not 0."),
        ({"page_size": "201"}, "page_size must be from 1 to 200, not 201."),
        ({"q": "a\x00b"}, "q must not contain NUL characters."),
        ({"q": "x" * 201}, "q is at most 200 characters."),
    ],
)
def test_list_refuses_bad_parameters(
    runs: None, viewer: Client, params: dict[str, str], match: str
) -> None:
    assert match in error(viewer.get("/api/dags/", params), 400, "invalid_parameter")


def test_list_page_past_the_last_is_not_found(runs: None, viewer: Client) -> None:
    assert "There is no page 9; there are 1." in error(
        viewer.get("/api/dags/", {"page": 9}), 404, "not_found"
    )


# -------------------------------------------------------------- snapshot


def test_snapshot_is_the_sockets_with_last_seq(runs: None, viewer: Client) -> None:
    response = viewer.get("/api/dags/etl-1/")
    assert response.status_code == 200
    snap = state.snapshot("etl-1")
    assert response.content == msgspec.json.encode(snap)
    assert response.json()["last_seq"] == 2


# ---------------------------------------------------------------- events


def test_events_page_by_seq_as_the_socket_sends_them(runs: None, viewer: Client) -> None:
    services.reports("etl-1").cost(spent=1)
    first = viewer.get("/api/dags/etl-1/events/", {"limit": 2}).json()
    assert [e["seq"] for e in first["events"]] == [1, 2]
    assert (first["last_seq"], first["next_after"], first["has_more"]) == (3, 2, True)
    assert first["events"][1] == json.loads(state.event_frames("etl-1", 1, 2)[0][1])
    assert first["events"][1]["dag_id"] == "etl-1"
    rest = viewer.get("/api/dags/etl-1/events/", {"after": 2}).json()
    assert [e["type"] for e in rest["events"]] == ["cost_update"]
    assert (rest["next_after"], rest["has_more"]) == (3, False)
    beyond = viewer.get("/api/dags/etl-1/events/", {"after": 50}).json()
    assert (beyond["events"], beyond["next_after"], beyond["has_more"]) == ([], 50, False)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"after": "-1"}, "after must be at least 0, not -1."),
        ({"after": "1.5"}, "after must be an integer"),
        ({"limit": "0"}, "limit must be from 1 to 1000, not 0."),
        ({"limit": "1001"}, "limit must be from 1 to 1000"),
    ],
)
def test_events_refuse_bad_parameters(
    runs: None, viewer: Client, params: dict[str, str], match: str
) -> None:
    assert match in error(viewer.get("/api/dags/etl-1/events/", params), 400, "invalid_parameter")


# ------------------------------------------------------ who may ask, how


@pytest.mark.parametrize("url", ["/api/dags/", "/api/dags/etl-1/", "/api/dags/etl-1/events/"])
def test_anonymous_is_401_with_a_bearer_challenge(runs: None, client: Client, url: str) -> None:
    response = client.get(url)
    error(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("url", ["/api/dags/", "/api/dags/etl-1/", "/api/dags/etl-1/events/"])
def test_without_view_dag_is_403(runs: None, make_user: Any, url: str) -> None:
    error(signed_in(make_user("decide_gate")).get(url), 403, "forbidden")


@pytest.mark.parametrize("url", ["/api/dags/nope/", "/api/dags/nope/events/", "/api/dags/%00/"])
def test_unknown_dag_is_404(runs: None, viewer: Client, url: str) -> None:
    error(viewer.get(url), 404, "not_found")


def test_unknown_dag_tells_nothing_to_someone_who_may_not_view(runs: None, make_user: Any) -> None:
    error(signed_in(make_user()).get("/api/dags/nope/"), 403, "forbidden")


def test_a_bearer_token_signs_in(
    runs: None, make_user: Any, make_token: Any, client: Client
) -> None:
    key = make_token(make_user("view_dag"))
    response = client.get("/api/dags/etl-1/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200 and response.json()["dag_id"] == "etl-1"


@pytest.mark.parametrize("header", ["Bearer dgs_not-a-key", "Bearer ", "Basic dXNlcjpwdw=="])
def test_a_bad_token_is_401_even_with_a_session(runs: None, viewer: Client, header: str) -> None:
    # An explicit credential that fails is not silently replaced by the session.
    error(viewer.get("/api/dags/", HTTP_AUTHORIZATION=header), 401, "unauthenticated")


def test_a_revoked_token_is_401(runs: None, make_user: Any, client: Client) -> None:
    from dagstream_app import tokens

    token, key = tokens.create_api_token(make_user("view_dag"))
    tokens.revoke_api_token(token)
    error(client.get("/api/dags/", HTTP_AUTHORIZATION=f"Bearer {key}"), 401, "unauthenticated")


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_the_api_is_read_only(runs: None, viewer: Client, method: str) -> None:
    response = getattr(viewer, method)("/api/dags/etl-1/")
    error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"
    assert state.snapshot("etl-1") is not None


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
@pytest.mark.parametrize("url", ["/api/dags/", "/api/dags/etl-1/events/", "/api/openapi.json"])
def test_a_write_with_a_session_and_no_csrf_token_is_405_json(
    runs: None, make_user: Any, method: str, url: str
) -> None:
    # Django's CSRF middleware would answer first, with a 403 HTML page.
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("view_dag"))
    response = getattr(client, method)(url)
    error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


# ---------------------------------------------------------------- OpenAPI


def test_openapi_is_served_and_committed_alike(viewer: Client) -> None:
    served = viewer.get("/api/openapi.json").json()
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert served == committed == json.loads(json.dumps(openapi())), (
        "regenerate: manage.py dagstream_schema --openapi > docs/openapi.json"
    )
    assert served["openapi"] == "3.1.0"
    assert set(served["paths"]) == {
        "/api/dags/",
        "/api/dags/{dag_id}/",
        "/api/dags/{dag_id}/events/",
        "/api/gates/",
    }


def test_openapi_schemas_describe_what_the_api_returns(runs: None, viewer: Client) -> None:
    schemas = openapi()["components"]["schemas"]
    snap = viewer.get("/api/dags/etl-1/").json()
    assert set(snap) == set(schemas["DagSnapshot"]["properties"])
    page = viewer.get("/api/dags/").json()
    assert set(page) == set(schemas["RunList"]["properties"])
    assert set(page["results"][0]) == set(schemas["RunRow"]["properties"])
    events = viewer.get("/api/dags/etl-1/events/").json()
    assert set(events) == set(schemas["EventPage"]["properties"])
    assert set(schemas["RunRow"]["properties"]["status"]["enum"]) == set(
        protocol.EXECUTION_STATUSES
    )


def test_openapi_documents_the_one_error_shape() -> None:
    description = openapi()
    schemas = description["components"]["schemas"]
    assert set(schemas["ErrorBody"]["properties"]) == {"error"}
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message"}
    assert set(schemas["ErrorDetail"]["properties"]["code"]["enum"]) == set(get_args(ErrorCode))
    assert '{"error": {"code", "message"}}' in description["info"]["description"]
    for path in description["paths"].values():
        for code, answer in path["get"]["responses"].items():
            if code != "200":
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
