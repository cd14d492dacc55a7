from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection, Provider, RefreshOutcome, RefreshRun, Schedule
from portal import dashboard
from tenants.models import Role, TenantMembership
from tenants.tests.builders import staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

INDEX = "/admin/"
_ids = itertools.count(1)


def add_connection(tenant, status="SYNCED", *, name=None, email=None, reason="", ago=None, **kw):
    """A mirrored connection of `tenant`, with its schedule and provider."""
    now = timezone.now()
    n = next(_ids)
    provider, _ = Provider.objects.get_or_create(
        tenant=tenant,
        wix_id=f"prov-{tenant.pk}",
        defaults={
            "name": "Google",
            "calendar_type": "GOOGLE",
            "first_seen_at": now,
            "last_seen_at": now,
        },
    )
    schedule = Schedule.objects.create(
        tenant=tenant,
        wix_id=f"sched-{n}",
        name=name or f"Staff {n}",
        first_seen_at=now,
        last_seen_at=now,
    )
    return Connection.objects.create(
        tenant=tenant,
        wix_id=f"conn-{n}",
        provider=provider,
        schedule=schedule,
        provider_wix_id=provider.wix_id,
        schedule_wix_id=schedule.wix_id,
        calendar_type="GOOGLE",
        external_account_email=email or f"staff{n}@example.com",
        status=status,
        error_reason=reason,
        first_seen_at=now,
        last_seen_at=now,
        status_changed_at=now - (timedelta(minutes=n) if ago is None else ago),
        **kw,
    )


def add_run(tenant, outcome=RefreshOutcome.OK, *, ago=timedelta(minutes=1), error_code=""):
    finished = timezone.now() - ago
    return RefreshRun.objects.create(
        tenant=tenant,
        started_at=finished - timedelta(seconds=5),
        finished_at=None if outcome == RefreshOutcome.RUNNING else finished,
        outcome=outcome,
        error_code=error_code,
    )


@pytest.fixture
def two_tenants():
    """Tenant A (2 broken of 4) and tenant B (3 broken of 6), both freshly refreshed."""
    a = TenantFactory(name="Salon Aurora")
    b = TenantFactory(name="Studio Brisa")
    add_connection(a, name="Anna Lee", email="anna@aurora.example")
    add_connection(a, name="Ben Okafor", status="SYNC_IN_PROGRESS")
    add_connection(a, "ERROR", name="Chloe Martin", reason="TOKEN_REVOKED")
    add_connection(a, "DISCONNECTED", name="Hana Kim")
    for i in range(3):
        add_connection(b, name=f"Brisa Staff {i}", email=f"brisa{i}@brisa.example")
    add_connection(b, "ERROR", name="Farah Haddad", reason="EXTERNAL_CALENDAR_DELETED")
    add_connection(b, "ERROR", name="Ivan Petrov", email="ivan@brisa.example")
    add_connection(b, "DISCONNECTED", name="George Ito")
    for tenant in (a, b):
        add_run(tenant)
    return a, b


def totals(page) -> dict[str, int]:
    return {t.status: t.count for t in page.context["dashboard"].totals}


def broken_names(page) -> list[str]:
    return [b.connection.schedule.name for b in page.context["dashboard"].broken]


def test_admin_site_header_and_stylesheet(admin_client):
    html = admin_client.get(INDEX).content.decode()

    assert "Calendar Connections Portal" in html
    assert "portal/admin.css" in html


def test_stylesheet_on_every_admin_page(admin_client):
    html = admin_client.get(reverse("admin:auth_user_changelist")).content.decode()

    assert "portal/admin.css" in html


def test_superuser_sees_every_tenant(admin_client, two_tenants):
    page = admin_client.get(INDEX)

    assert page.status_code == 200
    assert totals(page) == {
        "ERROR": 3,
        "DISCONNECTED": 2,
        "SYNC_IN_PROGRESS": 1,
        "CONNECTED": 0,
        "SYNCED": 4,
    }
    d = page.context["dashboard"]
    assert (d.total, d.broken_count) == (10, 5)
    assert sorted(broken_names(page)) == [
        "Chloe Martin",
        "Farah Haddad",
        "George Ito",
        "Hana Kim",
        "Ivan Petrov",
    ]


def test_staff_sees_only_their_tenants(client, two_tenants):
    client.force_login(staff_user("staff", viewer_of=(two_tenants[0],)))

    page = client.get(INDEX)

    assert page.status_code == 200
    assert totals(page) == {
        "ERROR": 1,
        "DISCONNECTED": 1,
        "SYNC_IN_PROGRESS": 1,
        "CONNECTED": 0,
        "SYNCED": 1,
    }
    assert (page.context["dashboard"].total, page.context["dashboard"].broken_count) == (4, 2)
    assert sorted(broken_names(page)) == ["Chloe Martin", "Hana Kim"]
    html = page.content.decode()
    assert "Chloe Martin" in html
    for secret_of_b in ("Studio Brisa", "Farah Haddad", "Ivan Petrov", "George Ito", "brisa"):
        assert secret_of_b not in html


def test_staff_sees_stale_tenants_of_their_own_only(client):
    a = TenantFactory(name="Salon Aurora")
    b = TenantFactory(name="Studio Brisa")
    add_run(a, RefreshOutcome.FAILED, error_code="WIX_UNAVAILABLE")
    add_run(b, RefreshOutcome.FAILED, error_code="SECRET_OF_B")
    client.force_login(staff_user("staff", viewer_of=(a,)))

    page = client.get(INDEX)

    assert [s.tenant.name for s in page.context["dashboard"].stale] == ["Salon Aurora"]
    html = page.content.decode()
    assert "WIX_UNAVAILABLE" in html
    assert "SECRET_OF_B" not in html
    assert "Studio Brisa" not in html


def test_staff_without_membership_sees_nothing(client, two_tenants):
    client.force_login(staff_user("staff"))

    page = client.get(INDEX)

    d = page.context["dashboard"]
    assert (d.total, d.broken, d.stale, d.has_tenants) == (0, [], [], False)
    html = page.content.decode()
    assert "You are not a member of any tenant yet." in html
    assert "Salon Aurora" not in html
    assert "Studio Brisa" not in html


def test_non_staff_member_is_sent_to_the_login(client, django_user_model, two_tenants):
    user = django_user_model.objects.create_user("plain", password="pw")
    TenantMembership.objects.create(user=user, tenant=two_tenants[0], role=Role.OPERATOR)
    client.force_login(user)

    page = client.get(INDEX)

    assert page.status_code == 302
    assert page["Location"].startswith(reverse("admin:login"))


def test_broken_connections_newest_first_present_only_top_20(admin_client):
    tenant = TenantFactory()
    for minutes in range(25):
        ago = timedelta(minutes=minutes)
        add_connection(tenant, "ERROR", name=f"Broken {minutes:02d}", ago=ago)
    add_connection(tenant, "ERROR", name="Gone", ago=timedelta(0), removed_at=timezone.now())
    add_connection(tenant, "SYNCED", name="Healthy", ago=timedelta(0))

    page = admin_client.get(INDEX)

    assert broken_names(page) == [f"Broken {m:02d}" for m in range(20)]
    assert page.context["dashboard"].broken_count == 25
    assert "Broken connections (25), newest 20" in page.content.decode()


def test_broken_row_shows_tenant_schedule_and_reason(admin_client):
    tenant = TenantFactory(name="Salon Aurora")
    conn = add_connection(
        tenant, "ERROR", name="Chloe Martin", email="chloe@example.com", reason="TOKEN_REVOKED"
    )

    html = admin_client.get(INDEX).content.decode()

    assert "Chloe Martin" in html
    assert "chloe@example.com" in html
    assert "Token revoked" in html
    assert '<span class="portal-badge portal-bad">Error</span>' in html
    assert f'href="{reverse("admin:tenants_tenant_change", args=[tenant.pk])}"' in html
    link = dashboard.admin_url("connections_connection_change", conn.pk)
    if link:  # the connection admin may not be registered yet
        assert f'href="{link}"' in html


def test_admin_url_is_none_for_a_page_that_does_not_exist():
    assert dashboard.admin_url("connections_nothing_change", 1) is None
    assert dashboard.admin_url("tenants_tenant_change", 7) == "/admin/tenants/tenant/7/change/"


def test_stale_tenants(admin_client, settings):
    settings.REFRESH_INTERVAL_MINUTES = 15
    fresh = TenantFactory(name="Fresh")
    add_run(fresh, ago=timedelta(minutes=29))
    failed = TenantFactory(name="Failed")
    add_run(failed, ago=timedelta(minutes=40))
    add_run(failed, RefreshOutcome.FAILED, ago=timedelta(minutes=1), error_code="WIX_UNAVAILABLE")
    old = TenantFactory(name="Old")
    add_run(old, ago=timedelta(minutes=31))
    never = TenantFactory(name="Never")
    running = TenantFactory(name="Running")  # the run in progress says nothing yet
    add_run(running, ago=timedelta(hours=2))
    add_run(running, RefreshOutcome.RUNNING)
    partial = TenantFactory(name="Partial")
    add_run(partial, RefreshOutcome.PARTIAL, ago=timedelta(minutes=2))
    inactive = TenantFactory(name="Inactive", is_active=False)

    page = admin_client.get(INDEX)

    stale = page.context["dashboard"].stale
    assert [(s.tenant.name, s.reason) for s in stale] == [
        ("Failed", "failed"),
        ("Never", "never"),
        ("Running", "stale"),
        ("Old", "stale"),
    ]
    assert stale[0].error_code == "WIX_UNAVAILABLE"
    assert page.context["dashboard"].stale_count == 4
    html = page.content.decode()
    assert "older than 30 minutes" in html
    assert "never refreshed" in html
    assert "WIX_UNAVAILABLE" in html
    assert never.name in html
    assert inactive.name not in html


def test_stale_count_beyond_the_list(admin_client):
    for n in range(dashboard.STALE_LIMIT + 3):
        TenantFactory(name=f"Never {n:02d}")

    d = admin_client.get(INDEX).context["dashboard"]

    assert (len(d.stale), d.stale_count) == (dashboard.STALE_LIMIT, dashboard.STALE_LIMIT + 3)


def test_totals_link_to_the_filtered_connection_list(admin_client, two_tenants):
    page = admin_client.get(INDEX)

    changelist = dashboard.admin_url("connections_connection_changelist")
    error = next(t for t in page.context["dashboard"].totals if t.status == "ERROR")
    if changelist:
        assert error.url == f"{changelist}?status__exact=ERROR"
        assert f'href="{error.url}"' in page.content.decode()
    else:
        assert error.url is None


def queries_for(client) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        assert client.get(INDEX).status_code == 200
    return len(queries)


@pytest.mark.parametrize("superuser", [True, False])
def test_query_count_is_constant(client, superuser):
    user = staff_user("someone", is_superuser=superuser)
    client.force_login(user)

    def grow(tenants: int, per_tenant: int) -> None:
        for _ in range(tenants):
            tenant = TenantFactory()
            TenantMembership.objects.create(user=user, tenant=tenant, role=Role.OPERATOR)
            add_run(tenant, RefreshOutcome.FAILED)
            for i in range(per_tenant):
                add_connection(tenant, ["SYNCED", "ERROR", "DISCONNECTED"][i % 3])

    grow(1, 3)
    small = queries_for(client)
    grow(12, 8)
    large = queries_for(client)

    assert small == large


def test_dashboard_takes_at_most_seven_queries(two_tenants):
    never_refreshed = [TenantFactory() for _ in range(dashboard.STALE_LIMIT + 1)]
    user = staff_user("staff", viewer_of=(*two_tenants, *never_refreshed))

    with CaptureQueriesContext(db_connection) as queries:
        d = dashboard.build(user)
        [b.connection.schedule.label for b in d.broken]
        [b.connection.tenant.name for b in d.broken]
        [s.tenant.name for s in d.stale]

    # The seventh reads the last completed refresh pass ("refreshed 4 minutes ago").
    assert len(queries) == 7
    assert d.stale_count == dashboard.STALE_LIMIT + 1
