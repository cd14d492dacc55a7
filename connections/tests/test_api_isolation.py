"""Every route of the API, twice: another tenant's objects stay out of reach, viewers cannot act.

The matrix below names every (route, method) the router serves; a test fails when a route is
added without joining it. Lists are also held to a constant number of queries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest
from django.apps import apps
from django.db import connection as db_connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from connections.models import (
    Connection,
    ConnectionChange,
    ConnectRequest,
    Job,
    Provider,
    RefreshRun,
    Schedule,
)
from connections.tests.builders import connect_body
from portal.api.urls import router
from tenants import audit
from tenants.models import AuditEvent, Tenant
from tenants.tests.builders import api_client_for
from tenants.tests.factories import TenantFactory, WixAppFactory

pytestmark = pytest.mark.django_db

SYNC_CONFIG = {
    "import": {"enabled": False, "mode": "PRIMARY"},
    "export": {"enabled": True, "mode": "DEDICATED"},
}


def first(model, tenant) -> Any:
    return model.objects.filter(tenant=tenant).order_by("pk").first().pk


@dataclass(frozen=True)
class Endpoint:
    """One route and method; `url` and `body` take the tenant whose object is addressed."""

    name: str
    method: str
    url: Callable[[Tenant], str]
    body: Callable[[Tenant], dict] | None = None
    # Lists address another tenant through their `tenant` filter; that is a 400.
    foreign_status: int = 404
    # About the caller, not a tenant (their own API tokens): any staff user may act on it.
    per_user: bool = False

    @property
    def safe(self) -> bool:
        return self.method == "get"

    def call(self, client, tenant):
        body = self.body(tenant) if self.body else None
        return getattr(client, self.method)(self.url(tenant), body, format="json")

    def __str__(self) -> str:
        return self.name


def detail(collection: str, model=None, suffix: str = "") -> Callable[[Tenant], str]:
    def url(tenant: Tenant) -> str:
        pk = tenant.pk if model is None else first(model, tenant)
        return f"/api/v1/{collection}/{pk}/{suffix}"

    return url


def listed(collection: str) -> Callable[[Tenant], str]:
    return lambda tenant: f"/api/v1/{collection}/?tenant={tenant.pk}"


def newest_token_url(tenant: Tenant) -> str:
    """The newest API token of a user who sees `tenant`: for the caller's own tenant, the
    token the caller has just been given; for another tenant, someone else's."""
    sees = Q(user__is_superuser=True) | Q(user__tenant_memberships__tenant=tenant)
    token = AuthToken.objects.filter(sees).order_by("-created").first()
    return f"/api/v1/me/tokens/{token.token_key}/"


def newest_token_user(tenant: Tenant):
    """The user of the newest API token of someone who sees `tenant`: for the caller's own
    tenant, the caller; for another tenant, someone else (a member of it, or a superuser)."""
    sees = Q(user__is_superuser=True) | Q(user__tenant_memberships__tenant=tenant)
    return AuthToken.objects.filter(sees).order_by("-created").first().user


# A public address: the SSRF guard passes it without DNS (nothing is sent: the test's
# transaction never commits).
HOOK_URL = "https://93.184.215.14/hook"


def webhook_endpoint(suffix: str = "") -> Callable[[Tenant], str]:
    """A webhook endpoint of `newest_token_user(tenant)`'s, made if they have none. The model
    by name: alerts is a layer above connections (import-linter), its tests may not import it."""

    def url(tenant: Tenant) -> str:
        model = apps.get_model("alerts", "WebhookEndpoint")
        owner = newest_token_user(tenant)
        endpoint = model.objects.filter(owner=owner).first() or model.objects.create(
            owner=owner, url=HOOK_URL
        )
        return f"/api/v1/webhook-endpoints/{endpoint.pk}/{suffix}"

    return url


ENDPOINTS = [
    # No tenant filter: tenant B is simply not listed.
    Endpoint("tenant-list", "get", lambda t: "/api/v1/tenants/", foreign_status=200),
    Endpoint(
        "tenant-create",
        "post",
        lambda t: "/api/v1/tenants/",
        lambda t: {"name": "New", "site_id": str(uuid.uuid4()), "api_key": "IST.new-key-0123456"},
    ),
    Endpoint("tenant-retrieve", "get", detail("tenants")),
    Endpoint(
        "tenant-update",
        "put",
        detail("tenants"),
        # An operator's PUT: her tenant's own site sent back; the way in is not hers to change.
        lambda t: {"name": "Renamed", "site_id": t.site_id},
    ),
    Endpoint("tenant-partial_update", "patch", detail("tenants"), lambda t: {"notes": "VIP"}),
    Endpoint("tenant-activate", "post", detail("tenants", suffix="activate/")),
    Endpoint("tenant-deactivate", "post", detail("tenants", suffix="deactivate/")),
    Endpoint(
        "tenant-events",
        "get",
        lambda t: (
            f"/api/v1/tenants/{t.pk}/events/?start=2026-12-01T00:00:00Z&end=2026-12-08T00:00:00Z"
        ),
    ),
    Endpoint("tenant-providers", "get", detail("tenants", suffix="providers/")),
    Endpoint("tenant-refresh", "post", detail("tenants", suffix="refresh/")),
    Endpoint("tenant-schedules", "get", detail("tenants", suffix="schedules/")),
    Endpoint("tenant-verify", "post", detail("tenants", suffix="verify/")),
    Endpoint("connection-list", "get", listed("connections"), foreign_status=400),
    Endpoint("connection-retrieve", "get", detail("connections", Connection)),
    Endpoint("connection-changes", "get", detail("connections", Connection, "changes/")),
    Endpoint("connection-disconnect", "post", detail("connections", Connection, "disconnect/")),
    Endpoint("connection-refresh", "post", detail("connections", Connection, "refresh/")),
    Endpoint(
        "connection-sync_config",
        "put",
        detail("connections", Connection, "sync-config/"),
        lambda t: SYNC_CONFIG,
    ),
    Endpoint(
        "connect-credentials",
        "post",
        lambda t: "/api/v1/connect/credentials/",
        lambda t: connect_body(t, "I_CAL", email="x@icloud.test", password="pw-ok-123"),
    ),
    Endpoint("connect-oauth", "post", lambda t: "/api/v1/connect/oauth/", connect_body),
    Endpoint("connect-request-list", "get", listed("connect-requests"), foreign_status=400),
    Endpoint("connect-request-retrieve", "get", detail("connect-requests", ConnectRequest)),
    Endpoint("refresh-run-list", "get", listed("refresh-runs"), foreign_status=400),
    Endpoint("refresh-run-retrieve", "get", detail("refresh-runs", RefreshRun)),
    Endpoint("audit-event-list", "get", listed("audit-events"), foreign_status=400),
    Endpoint("audit-event-retrieve", "get", detail("audit-events", AuditEvent)),
    Endpoint("job-retrieve", "get", detail("jobs", Job)),
    # Per user: another user's token is out of reach (404); lists show only one's own.
    Endpoint(
        "me-token-list", "get", lambda t: "/api/v1/me/tokens/", foreign_status=200, per_user=True
    ),
    Endpoint("me-token-destroy", "delete", newest_token_url, per_user=True),
    # Per user as the tokens: one's own webhook endpoints; another user's is a 404. Creating
    # one about another tenant is a field error (400), as about a tenant that does not exist.
    Endpoint(
        "webhook-endpoint-list",
        "get",
        lambda t: "/api/v1/webhook-endpoints/",
        foreign_status=200,
        per_user=True,
    ),
    Endpoint(
        "webhook-endpoint-create",
        "post",
        lambda t: "/api/v1/webhook-endpoints/",
        lambda t: {"url": HOOK_URL, "tenants": [t.pk]},
        foreign_status=400,
        per_user=True,
    ),
    Endpoint("webhook-endpoint-retrieve", "get", webhook_endpoint(), per_user=True),
    Endpoint(
        "webhook-endpoint-update",
        "put",
        webhook_endpoint(),
        lambda t: {"url": HOOK_URL, "description": "Ops"},
        per_user=True,
    ),
    Endpoint(
        "webhook-endpoint-partial_update",
        "patch",
        webhook_endpoint(),
        lambda t: {"description": "Ops"},
        per_user=True,
    ),
    Endpoint("webhook-endpoint-destroy", "delete", webhook_endpoint(), per_user=True),
    Endpoint(
        "webhook-endpoint-rotate_secret",
        "post",
        webhook_endpoint("rotate-secret/"),
        per_user=True,
    ),
    Endpoint("webhook-endpoint-test", "post", webhook_endpoint("test/"), per_user=True),
    Endpoint("webhook-endpoint-deliveries", "get", webhook_endpoint("deliveries/"), per_user=True),
    Endpoint(
        "webhook-endpoint-replay",
        "post",
        webhook_endpoint("replay/"),
        lambda t: {"failed_since": "2026-01-01T00:00:00Z"},
        per_user=True,
    ),
]
# Creating a tenant addresses no tenant's object; only superusers may (403 otherwise).
NOT_ABOUT_A_TENANT = {"tenant-create"}
UNSAFE = [e for e in ENDPOINTS if not e.safe]


def routed_endpoints() -> set[str]:
    names = set()
    for _, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            names |= {f"{basename}-{a}" for a in route.mapping.values() if hasattr(viewset, a)}
    return names


def test_the_matrix_covers_every_route():
    assert {e.name for e in ENDPOINTS} == routed_endpoints()


def snapshot(world) -> dict:
    """What a refused request must leave as it was: Wix (the sandbox) and the mirror."""
    return {
        "wix_calls": len(world.sandbox.requests),
        "wix": [
            world.sandbox.connection_json(site.id, wix_id)
            for site, tenant in ((world.site_a, world.tenant_a), (world.site_b, world.tenant_b))
            for wix_id in Connection.objects.filter(tenant=tenant).values_list("wix_id", flat=True)
        ],
        "tenants": list(Tenant.objects.order_by("pk").values()),
        "connections": list(Connection.objects.order_by("pk").values()),
        "changes": ConnectionChange.objects.count(),
        "connect_requests": ConnectRequest.objects.count(),
        "jobs": Job.objects.count(),
        "runs": RefreshRun.objects.count(),
    }


def tenant_b_markers(world) -> list[str]:
    """Strings only tenant B's data contains."""
    return [
        "Tenant B",
        "Site B",
        "Anna B",
        "Ben B",
        world.site_b.id,
        *Connection.objects.filter(tenant=world.tenant_b).values_list("wix_id", flat=True),
    ]


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.name not in NOT_ABOUT_A_TENANT], ids=str
)
def test_another_tenants_objects_are_out_of_reach(busy_world, endpoint):
    """An operator of tenant A addressing tenant B's object: 404 (400 for a list's filter),
    never 403, never B's data, and nothing changes in Wix or the mirror."""
    before = snapshot(busy_world)

    response = endpoint.call(api_client_for(busy_world.operator), busy_world.tenant_b)

    assert response.status_code == endpoint.foreign_status, response.content
    body = response.content.decode()
    if endpoint.foreign_status != 200:
        assert set(response.json()) == {"error"}
    assert not [marker for marker in tenant_b_markers(busy_world) if marker in body]
    assert snapshot(busy_world) == before


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.safe], ids=str)
def test_a_viewer_reads_their_tenants_objects(busy_world, endpoint):
    """The other side of the 404s above: the same routes answer for one's own tenant."""
    response = endpoint.call(api_client_for(busy_world.viewer), busy_world.tenant_a)

    assert response.status_code == 200, response.content
    assert not [
        marker for marker in tenant_b_markers(busy_world) if marker in json.dumps(response.json())
    ]


@pytest.mark.parametrize("endpoint", [e for e in UNSAFE if not e.per_user], ids=str)
def test_a_viewer_cannot_act(busy_world, endpoint):
    before = snapshot(busy_world)

    response = endpoint.call(api_client_for(busy_world.viewer), busy_world.tenant_a)

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert snapshot(busy_world) == before


@pytest.mark.parametrize("endpoint", UNSAFE, ids=str)
def test_an_operator_can_act(busy_world, endpoint):
    """The other side of the 403s above (creating tenants aside: superusers only)."""
    client = api_client_for(
        busy_world.superuser if endpoint.name in NOT_ABOUT_A_TENANT else busy_world.operator
    )

    response = endpoint.call(client, busy_world.tenant_a)

    assert response.status_code in (200, 201, 202, 204), response.content


# --- Query counts -----------------------------------------------------------------------------


def add_rows(world, n: int) -> None:
    """n more rows of everything listed, for tenant A, and n more tenants."""
    tenant = world.tenant_a
    connection = Connection.objects.filter(tenant=tenant).first()
    run = RefreshRun.objects.filter(tenant=tenant).first()
    request = ConnectRequest.objects.filter(tenant=tenant).first()
    connections, runs, requests = [], [], []
    for i in range(n):
        connection.pk, connection.wix_id = None, f"extra-{i}"
        connections.append(Connection(**_fields(connection)))
        run.pk = None
        runs.append(RefreshRun(**_fields(run)))
        request.pk, request.state_hash = None, f"{i:064d}"
        requests.append(ConnectRequest(**_fields(request)))
    Connection.objects.bulk_create(connections)
    RefreshRun.objects.bulk_create(runs)
    ConnectRequest.objects.bulk_create(requests)
    for i in range(n):
        audit.record(
            user=world.operator, action="test", tenant=tenant, target=connection, via="api"
        )
        ConnectionChange.objects.create(
            tenant=tenant,
            connection=Connection.objects.filter(tenant=tenant).first(),
            kind="changed",
            field="status",
            old_value="SYNCED",
            new_value="ERROR",
            changed_at=run.started_at,
        )
        TenantFactory(name=f"Extra {i}")


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


LISTS = [
    "/api/v1/tenants/",
    "/api/v1/connections/",
    "/api/v1/connections/?status=ERROR&status=SYNCED",
    "/api/v1/connect-requests/",
    "/api/v1/refresh-runs/",
    "/api/v1/audit-events/",
]


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize("user", ["superuser", "viewer"])
@pytest.mark.parametrize("url", LISTS)
def test_list_query_counts_do_not_grow_with_rows(
    busy_world, django_assert_max_num_queries, url, user
):
    client = api_client_for(getattr(busy_world, user))
    few = count_queries(client, url)
    add_rows(busy_world, 40)

    with django_assert_max_num_queries(few):
        response = client.get(url)

    assert len(response.json()["results"]) > 40 or (user == "viewer" and "tenants" in url)
    assert few <= 6


def test_change_history_query_count_does_not_grow(busy_world, django_assert_max_num_queries):
    client = api_client_for(busy_world.viewer)
    url = f"/api/v1/connections/{first(Connection, busy_world.tenant_a)}/changes/"
    few = count_queries(client, url)
    add_rows(busy_world, 40)

    with django_assert_max_num_queries(few):
        assert len(client.get(url).json()["results"]) >= 40


# --- The browsable API's forms ----------------------------------------------------------------


class Options(HTMLParser):
    """Every <select>'s options in a page: {select name: [(value, label), ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.selects: dict[str, list[tuple[str, str]]] = {}
        self._select: str | None = None
        self._option: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._select = attrs.get("name") or ""
            self.selects.setdefault(self._select, [])
        elif tag == "option" and self._select is not None:
            self._option = [attrs.get("value") or "", ""]

    def handle_data(self, data):
        if self._option is not None:
            self._option[1] += data

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None:
            self.selects[self._select].append((self._option[0], self._option[1].strip()))
            self._option = None
        elif tag == "select":
            self._select = None


def browsable_client(user) -> APIClient:
    """A logged-in admin session, as the browsable API is used."""
    client = APIClient()
    client.force_login(user)
    return client


def other_apps() -> list[str]:
    """Wix apps the operator of tenant A has nothing to do with: their names and app ids."""
    apps = [WixAppFactory(name="Agency app of B"), WixAppFactory(name="Unused agency app")]
    return [value for app in apps for value in (app.name, str(app.app_id))]


def assert_lists_nothing_foreign(world, response, foreign: list[str]) -> None:
    assert response["Content-Type"].startswith("text/html"), response.content[:200]
    page = response.content.decode()
    assert not [marker for marker in foreign if marker in page]
    mine = {
        "tenant": {str(world.tenant_a.pk)},
        "schedule": {
            str(pk)
            for pk in Schedule.objects.filter(tenant=world.tenant_a).values_list("pk", flat=True)
        },
        "provider": {
            str(pk)
            for pk in Provider.objects.filter(tenant=world.tenant_a).values_list("pk", flat=True)
        },
        "connection": {
            str(pk)
            for pk in Connection.objects.filter(tenant=world.tenant_a).values_list("pk", flat=True)
        },
        "wix_app": set(),
    }
    options = Options()
    options.feed(page)
    for name, offered in options.selects.items():
        values = {value for value, _ in offered if value}
        if name in mine:
            assert values <= mine[name], (name, offered)


# Each route's page once: its forms are those of every method the route serves.
PAGES = list({endpoint.url: endpoint for endpoint in ENDPOINTS}.values())


@pytest.mark.parametrize("endpoint", PAGES, ids=str)
def test_browsable_api_forms_offer_only_the_users_tenants(busy_world, endpoint):
    """GET with Accept: text/html, as an operator of tenant A logged into the admin: no form
    (<select>, raw-data form or filter form) lists another tenant, its rows or a Wix app."""
    foreign = [*tenant_b_markers(busy_world), *other_apps()]
    client = browsable_client(busy_world.operator)
    if endpoint.per_user:
        api_client_for(busy_world.operator)  # a token of the operator's, for the token route's URL

    response = client.get(endpoint.url(busy_world.tenant_a), HTTP_ACCEPT="text/html")

    assert response.status_code in (200, 405), response.content[:300]
    assert_lists_nothing_foreign(busy_world, response, foreign)


@pytest.mark.parametrize("endpoint", UNSAFE, ids=str)
def test_browsable_api_answers_to_forms_offer_only_the_users_tenants(busy_world, endpoint):
    """The page answering a form's submission re-renders the forms from its own serializer:
    it lists nothing of another tenant either (created tenants aside: superusers only)."""
    foreign = [*tenant_b_markers(busy_world), *other_apps()]
    client = browsable_client(busy_world.operator)
    if endpoint.per_user:
        api_client_for(busy_world.operator)
    body = endpoint.body(busy_world.tenant_a) if endpoint.body else None

    response = getattr(client, endpoint.method)(
        endpoint.url(busy_world.tenant_a), body, format="json", HTTP_ACCEPT="text/html"
    )

    assert response.status_code in (200, 201, 202, 204, 403), response.content[:300]
    if response.status_code != 204:
        assert_lists_nothing_foreign(busy_world, response, foreign)
