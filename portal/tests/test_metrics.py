"""/metrics: off without METRICS_TOKEN, a bearer token otherwise, GET only; the figures are
the database's rows at scrape time, with no per-tenant label unless METRICS_TENANT_LABELS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import Delivery, WebhookEndpoint
from connections.models import RefreshRun
from connections.tests.builders import add_site, refreshed_tenant
from tenants.tests.builders import staff_user

pytestmark = pytest.mark.django_db

URL = "/metrics"
TOKEN = "scrape-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_TENANT_LABELS = False
    return settings


def scrape(client) -> dict[str, list]:
    """The families of one authorised scrape, by name: [(sample name, labels, value), ...]."""
    response = client.get(URL, **AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    families = text_string_to_metric_families(response.content.decode())
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples] for family in families
    }


def values(families, name, label=None) -> dict:
    return {
        (s_labels[label] if label else tuple(sorted(s_labels.items()))): value
        for sample, s_labels, value in families[name]
        if sample in (name, f"{name}_total")
    }


def test_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(URL).status_code == 404
    assert client.get(URL, **AUTH).status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Token {TOKEN}", "Bearer ", TOKEN, f"Bearer {TOKEN}x"],
)
def test_401_without_the_right_bearer_token(client, metrics_on, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get(URL, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.content.decode()


def test_guessing_the_token_is_throttled_per_address(client, metrics_on):
    metrics_on.METRICS_THROTTLE_RATE = "5/min"
    answers = [
        client.get(URL, HTTP_AUTHORIZATION=f"Bearer guess-{n}").status_code for n in range(5)
    ]

    refused = client.get(URL, **AUTH)
    other_address = client.get(URL, REMOTE_ADDR="10.1.2.3", **AUTH)

    assert answers == [401] * 5
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert other_address.status_code == 200


def test_get_only(client, metrics_on):
    # No CSRF token either: the 405 is the view's, not CSRF's 403.
    assert client.post(URL, **AUTH).status_code == 405
    assert client.put(URL, **AUTH).status_code == 405


def test_figures_are_the_rows(client, metrics_on, wix_sandbox):
    site = add_site(
        wix_sandbox,
        "Aurora",
        [
            {"name": "Anna", "calendar_type": "GOOGLE"},
            {
                "name": "Ben",
                "calendar_type": "MICROSOFT",
                "status": "ERROR",
                "error_reason": "TOKEN_REVOKED",
            },
            {
                "name": "Cleo",
                "calendar_type": "GOOGLE",
                "status": "ERROR",
                "error_reason": "TOKEN_REVOKED",
            },
            {"name": "Dan", "calendar_type": "GOOGLE", "status": "DISCONNECTED"},
        ],
    )
    tenant = refreshed_tenant(wix_sandbox, site)
    now = timezone.now()
    RefreshRun.objects.create(
        tenant=tenant,
        started_at=now - timedelta(seconds=40),
        finished_at=now,
        outcome="failed",
        wix_calls=2,
    )
    # Older than the histogram's 24 h window: counted, not timed.
    RefreshRun.objects.create(
        tenant=tenant,
        started_at=now - timedelta(days=2),
        finished_at=now - timedelta(days=2) + timedelta(seconds=1),
        outcome="ok",
        wix_calls=3,
    )
    endpoint = WebhookEndpoint.objects.create(
        owner=staff_user("olga"), url="https://hooks.example/portal"
    )
    for n, state in enumerate(["succeeded", "succeeded", "failed", "pending"]):
        Delivery.objects.create(
            endpoint=endpoint, msg_id=f"msg_{n}", event_type="webhook.test", state=state
        )
    session_count = Session.objects.count()

    families = scrape(client)

    assert values(families, "portal_connections") == {
        (("error_reason", ""), ("status", "SYNCED")): 1.0,
        (("error_reason", "TOKEN_REVOKED"), ("status", "ERROR")): 2.0,
        (("error_reason", ""), ("status", "DISCONNECTED")): 1.0,
    }
    assert values(families, "portal_tenants", "active") == {"true": 1.0, "false": 0.0}
    assert values(families, "portal_refresh_runs", "outcome") == {
        "running": 0.0,
        "ok": 2.0,
        "partial": 0.0,
        "failed": 1.0,
    }
    total_calls = sum(RefreshRun.objects.values_list("wix_calls", flat=True))
    assert values(families, "portal_wix_calls") == {(): float(total_calls)}
    assert total_calls >= 5
    assert values(families, "portal_webhook_deliveries", "state") == {
        "pending": 1.0,
        "succeeded": 2.0,
        "failed": 1.0,
        "cancelled": 0.0,
    }
    assert set(values(families, "portal_open_issues", "kind").values()) <= {0.0}
    # No pass has completed: the family is there, without a sample.
    assert families["portal_last_pass_age_seconds"] == []

    duration = {
        (sample, labels.get("le")): value
        for sample, labels, value in families["portal_refresh_duration_seconds"]
    }
    # The sandbox refresh (well under 30 s) and the failed run of 40 s; not the old one.
    assert duration[("portal_refresh_duration_seconds_count", None)] == 2.0
    assert duration[("portal_refresh_duration_seconds_bucket", "+Inf")] == 2.0
    assert duration[("portal_refresh_duration_seconds_bucket", "30.0")] == 1.0
    assert duration[("portal_refresh_duration_seconds_bucket", "60.0")] == 2.0
    assert duration[("portal_refresh_duration_seconds_sum", None)] >= 40.0

    assert "portal_tenant_connections" not in families
    assert all(
        "tenant_id" not in labels for samples in families.values() for _, labels, _ in samples
    )
    assert Session.objects.count() == session_count


def test_tenant_labels_only_when_asked(client, metrics_on, wix_sandbox):
    tenant = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Solo"))
    metrics_on.METRICS_TENANT_LABELS = True

    families = scrape(client)

    assert families["portal_tenant_connections"] == [
        ("portal_tenant_connections", {"tenant_id": str(tenant.pk), "status": "SYNCED"}, 1.0)
    ]


def test_last_pass_age(client, metrics_on):
    from connections.models import RefreshPass

    closed = timezone.now() - timedelta(minutes=5)
    RefreshPass.objects.create(
        started_at=closed - timedelta(minutes=1),
        deadline_at=closed + timedelta(minutes=14),
        expected=1,
        done=1,
        closed_at=closed,
        completed=True,
    )
    [(_, _, age)] = scrape(client)["portal_last_pass_age_seconds"]
    assert 299 <= age <= 330


def test_queries_do_not_grow_with_tenants(client, metrics_on, wix_sandbox):
    metrics_on.METRICS_TENANT_LABELS = True

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Site 0"))
    one = queries()
    for n in range(1, 5):
        refreshed_tenant(wix_sandbox, add_site(wix_sandbox, f"Site {n}"))
    assert queries() == one
    assert one <= 8
