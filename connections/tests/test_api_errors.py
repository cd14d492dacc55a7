"""Inputs that once answered 500: each is a 400 or 404 in the API's error shape, and what
still fails unexpectedly is a JSON 500 with a request id, never Django's HTML page."""

from __future__ import annotations

import base64
import logging

import pytest
from django.http import HttpResponse
from django.urls import include, path
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.test import APIClient

from connections.models import Connection, ConnectRequest, ConnectRequestStatus, Provider, Schedule
from connections.tests.builders import connect_body
from portal.api import errors
from tenants.tests.builders import api_client_for

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"


@pytest.fixture
def root(world) -> APIClient:
    client = api_client_for(world.superuser)
    # As in production: an exception reaching Django is its 500 page, not a test error.
    client.raise_request_exception = False
    return client


def cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize("path", ["/api/v1/connect/oauth/", "/api/v1/connect/credentials/"])
def test_options_on_connect_describes_the_input(root, path):
    response = root.options(path)

    assert response.status_code == 200
    assert set(response.json()["actions"]["POST"]) >= {"tenant", "schedule", "provider"}


@pytest.mark.parametrize(
    "forged",
    [
        cursor("r=1&p=abc"),
        cursor("p=abc"),
        cursor("p="),
        cursor("p=1.5"),
        cursor("p=-1"),
        cursor(f"p={HUGE}"),
        "not base64!",
    ],
)
def test_a_forged_cursor_is_404_invalid_cursor(root, forged):
    response = root.get("/api/v1/connections/", {"cursor": forged})

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Invalid cursor"}}


def test_a_cursor_the_api_made_still_works(root):
    first = root.get("/api/v1/connections/", {"page_size": 1}).json()

    following = root.get(first["next"])

    assert following.status_code == 200
    assert following.json()["results"][0]["id"] < first["results"][0]["id"]


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000])
def test_json_nested_too_deeply_is_400(root, body):
    response = root.generic("POST", "/api/v1/connect/oauth/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "parse_error",
            "message": "JSON parse error - the body is nested too deeply.",
        }
    }


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/connections/{HUGE}/",
        f"/api/v1/connections/{HUGE}/changes/",
        f"/api/v1/tenants/{HUGE}/",
        f"/api/v1/tenants/{HUGE}/providers/",
        f"/api/v1/connect-requests/{HUGE}/",
        f"/api/v1/refresh-runs/{HUGE}/",
        f"/api/v1/audit-events/{HUGE}/",
        f"/api/v1/jobs/{HUGE}/",
        f"/api/v1/connections/-{HUGE}/",
    ],
)
def test_huge_ids_in_paths_are_404(root, path):
    response = root.get(path)

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"tenant={HUGE}", "tenant"),
        (f"schedule={HUGE}", "schedule"),
        ("schedule=1.5", "schedule"),
        ("schedule=0", "schedule"),
    ],
)
def test_out_of_range_ids_in_filters_are_400(root, query, field):
    response = root.get(f"/api/v1/connections/?{query}")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.parametrize("collection", ["connect-requests", "refresh-runs", "audit-events"])
def test_huge_tenant_filters_are_400(root, collection):
    response = root.get(f"/api/v1/{collection}/", {"tenant": HUGE})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["tenant"]


def test_huge_ids_in_a_connect_body_are_field_errors(world, root):
    response = root.post(
        "/api/v1/connect/oauth/",
        {"tenant": int(HUGE), "schedule": int(HUGE), "provider": 0},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"tenant", "schedule", "provider"}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
        ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59-23:59"),
        ("0001-01-01T00:00:00+23:59", "2026-12-01T00:00:00Z"),
    ],
)
def test_events_at_the_ends_of_the_calendar_are_400(world, root, start, end):
    response = root.get(
        f"/api/v1/tenants/{world.tenant_a.pk}/events/", {"start": start, "end": end}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert set(response.json()["error"]["fields"]) <= {"start", "end"}


# --- Not yours and not there: the same answer -------------------------------------------------


def missing_pk(model) -> int:
    return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


@pytest.mark.parametrize("route", ["oauth", "credentials"])
def test_connect_answers_another_tenants_ids_as_missing_ones(world, route):
    """Byte for byte: a tenant, schedule or provider of tenant B is a tenant, schedule or
    provider that does not exist."""
    from tenants.models import Tenant

    client = api_client_for(world.operator)
    extra = {"email": "x@icloud.test", "password": "pw-ok-123"} if route == "credentials" else {}
    url = f"/api/v1/connect/{route}/"
    mine, theirs = world.tenant_a, world.tenant_b
    pairs = [
        (connect_body(theirs), connect_body(mine, tenant=missing_pk(Tenant))),
        (
            connect_body(mine, schedule=connect_body(theirs)["schedule"]),
            connect_body(mine, schedule=missing_pk(Schedule)),
        ),
        (
            connect_body(mine, provider=connect_body(theirs)["provider"]),
            connect_body(mine, provider=missing_pk(Provider)),
        ),
    ]
    for foreign, missing in pairs:
        a = client.post(url, {**foreign, **extra}, format="json")
        b = client.post(url, {**missing, **extra}, format="json")

        assert a.status_code == b.status_code
        assert a.status_code in (400, 404)
        assert a.content == b.content


@pytest.mark.parametrize(
    "collection", ["connections", "connect-requests", "refresh-runs", "audit-events"]
)
def test_another_tenants_row_and_a_missing_one_answer_alike(world, collection):
    models = {"connections": Connection, "connect-requests": ConnectRequest}
    from connections.models import RefreshRun
    from tenants.models import AuditEvent

    models |= {"refresh-runs": RefreshRun, "audit-events": AuditEvent}
    model = models[collection]
    api_client_for(world.superuser).post("/api/v1/connect/oauth/", connect_body(world.tenant_b))
    api_client_for(world.superuser).post(f"/api/v1/tenants/{world.tenant_b.pk}/verify/")
    theirs = model.objects.filter(tenant=world.tenant_b).first().pk
    client = api_client_for(world.operator)

    foreign = client.get(f"/api/v1/{collection}/{theirs}/")
    missing = client.get(f"/api/v1/{collection}/{missing_pk(model)}/")
    foreign_filter = client.get(f"/api/v1/{collection}/", {"tenant": world.tenant_b.pk})
    missing_filter = client.get(
        f"/api/v1/{collection}/", {"tenant": missing_pk(type(world.tenant_b))}
    )

    assert (foreign.status_code, foreign.content) == (missing.status_code, missing.content)
    assert foreign.status_code == 404
    assert (foreign_filter.status_code, foreign_filter.content) == (
        missing_filter.status_code,
        missing_filter.content,
    )


# --- oauth_url: only to operators, only while live --------------------------------------------


def test_a_live_oauth_link_goes_to_operators_only(world):
    started = api_client_for(world.operator).post(
        "/api/v1/connect/oauth/", connect_body(world.tenant_a)
    )
    pk = started.json()["id"]
    link = started.json()["oauth_url"]

    as_viewer = api_client_for(world.viewer)
    as_operator = api_client_for(world.operator)
    as_root = api_client_for(world.superuser)

    assert link and link.startswith(world.sandbox.url)
    assert as_viewer.get(f"/api/v1/connect-requests/{pk}/").json()["oauth_url"] is None
    assert [
        r["oauth_url"] for r in as_viewer.get("/api/v1/connect-requests/").json()["results"]
    ] == [None]
    assert link not in as_viewer.get("/api/v1/connect-requests/").content.decode()
    assert as_operator.get(f"/api/v1/connect-requests/{pk}/").json()["oauth_url"] == link
    assert as_operator.get("/api/v1/connect-requests/").json()["results"][0]["oauth_url"] == link
    assert as_root.get(f"/api/v1/connect-requests/{pk}/").json()["oauth_url"] == link


@pytest.mark.parametrize("ended", ["connected", "failed", "expired"])
def test_nobody_sees_the_link_once_the_request_ended(world, ended):
    from datetime import timedelta

    from django.utils import timezone

    started = api_client_for(world.operator).post(
        "/api/v1/connect/oauth/", connect_body(world.tenant_a)
    )
    pk = started.json()["id"]
    if ended == "expired":
        ConnectRequest.objects.filter(pk=pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    else:
        ConnectRequest.objects.filter(pk=pk).update(
            status=getattr(ConnectRequestStatus, ended.upper())
        )

    for user in (world.operator, world.superuser, world.viewer):
        client = api_client_for(user)
        assert client.get(f"/api/v1/connect-requests/{pk}/").json()["oauth_url"] is None
        assert client.get("/api/v1/connect-requests/").json()["results"][0]["oauth_url"] is None


# --- Anything else: a JSON 500 with a request id ----------------------------------------------


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def broken_api_view(request):
    raise RuntimeError("secret-detail: SELECT * FROM tenants_tenant")


def broken_plain_view(request):
    raise RuntimeError("secret-detail of a plain view")


def plain_view(request):
    return HttpResponse("fine")


urlpatterns = [
    path("api/broken/", broken_api_view),
    path("api/plain-broken/", broken_plain_view),
    path("elsewhere/broken/", broken_plain_view),
    path("", include("portal.urls")),
]
handler500 = errors.server_error
handler400 = errors.bad_request


@pytest.mark.urls(__name__)
def test_an_unexpected_error_is_a_json_500_with_a_request_id(caplog):
    client = APIClient(raise_request_exception=False)

    with caplog.at_level(logging.ERROR, logger="portal.api.errors"):
        response = client.get("/api/broken/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    request_id = error.pop("requestId")
    assert error == {"code": "server_error", "message": errors.SERVER_ERROR_MESSAGE}
    assert len(request_id) == 32
    assert "secret-detail" not in response.content.decode()
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info[0] is RuntimeError


@pytest.mark.urls(__name__)
def test_errors_outside_api_views_answer_json_under_api_only(caplog):
    client = APIClient(raise_request_exception=False)

    api = client.get("/api/plain-broken/")
    elsewhere = client.get("/elsewhere/broken/")

    assert api.status_code == 500
    assert api.json()["error"]["code"] == "server_error"
    assert api.json()["error"]["requestId"]
    assert "secret-detail" not in api.content.decode()
    assert elsewhere.status_code == 500
    assert elsewhere["Content-Type"].startswith("text/html")


@pytest.mark.urls(__name__)
def test_a_bad_host_under_api_is_a_json_400():
    response = APIClient().get("/api/v1/tenants/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "bad_request", "message": "The request is malformed."}
    }


@pytest.mark.parametrize(
    "query",
    ["removed=yes", "import_enabled=maybe", "export_enabled=2"],
)
def test_unreadable_booleans_in_filters_are_400(root, query):
    response = root.get(f"/api/v1/connections/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {query.split("=")[0]: ["Use true or false."]}


def test_booleans_in_filters_read_true_false_and_empty(root):
    everything = root.get("/api/v1/connections/").json()["results"]

    assert root.get("/api/v1/connections/?removed=").json()["results"] == everything
    assert root.get("/api/v1/connections/?removed=false").json()["results"] == everything
    assert root.get("/api/v1/connections/?removed=true").json()["results"] == []
    assert root.get("/api/v1/tenants/?is_active=nope").status_code == 400


@pytest.mark.parametrize("size", ["abc", "0", "-3", "1.5"])
def test_an_unreadable_page_size_is_400(root, size):
    response = root.get("/api/v1/connections/", {"page_size": size})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page_size": ["A whole number from 1 to 500."]}
