"""The tenant list and page: mirror data at a glance, refresh and verify, scoped per member."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.badges import badge
from connections.models import Connection, Job, RefreshRun
from connections.services.refresh import tenant_refresh
from connections.tests.builders import add_site, connection_url, refreshed_tenant, tenant_admin_url
from portal.admin.tenants import ago
from tenants.models import AuditEvent, Tenant, TenantMembership, secret_hint
from tenants.tests.builders import admin_client_for, messages_of, staff_user
from tenants.tests.factories import TenantFactory, WixAppFactory

pytestmark = pytest.mark.django_db

NOTHING_TO_DO = "Nothing done: none of the selected tenants is one you may act on."
REFRESH_STARTED = (
    "Refresh started for {}. The outcome appears under “Recent refreshes” on the tenant's page."
)


@pytest.fixture
def other(wix_sandbox):
    """Tenant B: another client site, with its own member."""
    return refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Barber Bravo"))


def act(client, action, *tenants, follow=True):
    return client.post(
        tenant_admin_url("changelist"),
        {"action": action, "_selected_action": [t.pk for t in tenants]},
        follow=follow,
    )


# --- The list -----------------------------------------------------------------------------


def test_list_shows_counts_by_status_refresh_and_credentials(
    wix_sandbox, site, tenant, admin_client
):
    wix_sandbox.set_connection_error(site.id, site.ben_microsoft)
    gone = wix_sandbox.add_connection(site.id, schedule_id=site.ben, calendar_type="I_CAL")
    tenant_refresh(tenant)
    wix_sandbox.remove_connection(site.id, gone)
    tenant_refresh(tenant)
    assert Connection.objects.filter(removed_at__isnull=False).count() == 1

    html = admin_client.get(tenant_admin_url("changelist")).content.decode()

    assert badge("SYNCED", "Synced", count=1) in html
    assert badge("ERROR", "Error", count=1) in html
    assert "Disconnected" not in html
    assert f"{badge('ok', 'OK')} just now" in html
    assert badge("unverified", "Unverified") in html


def test_list_without_connections_or_refreshes(admin_client):
    TenantFactory(name="Fresh Site")

    response = admin_client.get(tenant_admin_url("changelist"))

    row = response.content.decode().split("Fresh Site", 1)[1]
    assert "never" in row
    assert "—" in row


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "just now"), (12, "12 min ago"), (150, "2 h ago"), (60 * 24 * 3, "3 days ago")],
)
def test_age(minutes, text):
    now = timezone.now()
    assert ago(now - timezone.timedelta(minutes=minutes), now=now) == text


def many_tenants(count: int, user) -> None:
    now = timezone.now()
    for n in range(count):
        tenant = TenantFactory()
        TenantMembership.objects.create(user=user, tenant=tenant, role="operator")
        RefreshRun.objects.create(tenant=tenant, started_at=now, outcome="ok")
        for status in ("SYNCED", "ERROR"):
            Connection.objects.create(
                tenant=tenant,
                wix_id=f"{status}-{n}",
                first_seen_at=now,
                last_seen_at=now,
                status_changed_at=now,
                status=status,
                calendar_type="GOOGLE",
            )


def list_queries(client) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(tenant_admin_url("changelist"), {"last_refresh": "ok"})
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_is_constant_in_the_number_of_tenants(django_assert_max_num_queries):
    user = staff_user("olga")
    client = admin_client_for(user)
    many_tenants(2, user)
    few = list_queries(client)
    many_tenants(23, user)

    with django_assert_max_num_queries(few):
        response = client.get(tenant_admin_url("changelist"), {"last_refresh": "ok"})

    assert response.context["cl"].result_count == 25
    assert response.content.decode().count(badge("ERROR", "Error", count=1)) == 25


def test_filters_and_search(wix_sandbox, mirrored, other, admin_client):
    wix_sandbox.faults(wix_sandbox.sites[other.site_id].id).server_error(times=10)
    tenant_refresh(other)
    quiet = TenantFactory(name="Quiet Site", is_active=False)

    def names(**params):
        response = admin_client.get(tenant_admin_url("changelist"), params)
        return sorted(t.name for t in response.context["cl"].result_list)

    assert names(last_refresh="failed") == ["Barber Bravo"]
    assert names(last_refresh="ok") == [mirrored.name]
    assert names(last_refresh="never") == ["Quiet Site"]
    assert names(is_active__exact="0") == ["Quiet Site"]
    assert names(credentials_status__exact="unverified") == sorted(
        [mirrored.name, "Barber Bravo", "Quiet Site"]
    )
    assert names(q="bravo") == ["Barber Bravo"]
    assert names(q=quiet.site_id) == ["Quiet Site"]


# --- Refresh now --------------------------------------------------------------------------


def test_refresh_now_queues_and_the_page_shows_the_outcome(
    operator, mirrored, django_capture_on_commit_callbacks
):
    client = admin_client_for(operator)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = act(client, "refresh_now", mirrored)

    assert len(callbacks) == 1
    assert messages_of(response) == [REFRESH_STARTED.format(mirrored.name)]
    run = RefreshRun.objects.for_tenant(mirrored).get(trigger="admin")
    assert run.outcome == "ok"
    # One act, one name: the admin's Refresh now is the API's queued refresh.
    event = AuditEvent.objects.get(action="queue_refresh")
    assert (event.user, event.tenant, event.outcome, event.via) == (
        operator,
        mirrored,
        "queued",
        "admin",
    )
    assert event.parameters == {"job": str(Job.objects.get().pk), "trigger": "admin"}
    page = client.get(tenant_admin_url("change", mirrored.pk)).content.decode()
    assert "Recent refreshes" in page
    assert "<td>admin</td>" in page


def test_refresh_now_failing_in_wix_shows_a_failed_run(
    wix_sandbox, site, operator, mirrored, django_capture_on_commit_callbacks
):
    wix_sandbox.faults(site.id).server_error(times=100, status=500)
    client = admin_client_for(operator)

    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, "refresh_now", mirrored)

    assert response.status_code == 200
    assert messages_of(response) == [REFRESH_STARTED.format(mirrored.name)]
    run = RefreshRun.objects.for_tenant(mirrored).filter(trigger="admin").first()
    assert run.outcome == "failed"
    page = client.get(tenant_admin_url("change", mirrored.pk)).content.decode()
    assert badge("failed", "Failed") in page
    assert f"{run.error_code}: {run.error_message}" in page
    listing = client.get(tenant_admin_url("changelist")).content.decode()
    assert f"{badge('failed', 'Failed')} just now" in listing


def test_refresh_now_skips_inactive_tenants(admin_client, django_capture_on_commit_callbacks):
    sleeping = TenantFactory(name="Sleeping Site", is_active=False)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = act(admin_client, "refresh_now", sleeping)

    assert callbacks == []
    assert messages_of(response) == ["Not refreshed (inactive): Sleeping Site."]


# --- Verify credentials -------------------------------------------------------------------


def test_verify_credentials_ok(operator, mirrored):
    response = act(admin_client_for(operator), "verify_credentials", mirrored)

    assert messages_of(response) == [f"{mirrored.name}: credentials OK."]
    mirrored.refresh_from_db()
    assert mirrored.credentials_status == "ok"
    assert AuditEvent.objects.get(action="verify_credentials").outcome == "ok"
    html = admin_client_for(operator).get(tenant_admin_url("changelist")).content.decode()
    assert f"{badge('ok', 'OK')} checked just now" in html


def test_verify_wrong_credentials_says_why(wix_sandbox, site, mirrored, operator):
    mirrored.api_key = wix_sandbox.create_api_key("another-account")
    mirrored.save()

    response = act(admin_client_for(operator), "verify_credentials", mirrored)

    mirrored.refresh_from_db()
    assert mirrored.credentials_status == "failed"
    assert mirrored.credentials_error.startswith("Wix 403 ")
    assert messages_of(response) == [
        f"{mirrored.name}: credentials failed: {mirrored.credentials_error}"
    ]
    event = AuditEvent.objects.get(action="verify_credentials")
    assert (event.outcome, event.message) == ("failed", mirrored.credentials_error)


# --- The tenant page ----------------------------------------------------------------------


def test_change_page_shows_the_mirror_read_only(
    site, mirrored, operator, django_assert_max_num_queries
):
    client = admin_client_for(operator)

    with django_assert_max_num_queries(45):
        response = client.get(tenant_admin_url("change", mirrored.pk))

    html = response.content.decode()
    for text in [
        "Providers",
        "Google",
        "Apple iCal",
        "Email and password",
        "Schedules",
        "Anna Lee",
    ]:
        assert text in html
    anna = Connection.objects.get(tenant=mirrored, schedule__name="Anna Lee")
    assert "anna@example.com" in html
    assert badge("SYNCED", "Synced") in html
    # Operators see the key's hint read-only: how the tenant reaches Wix is not theirs to set.
    assert secret_hint(mirrored.api_key).capitalize() in html
    assert 'name="api_key"' not in html
    assert mirrored.api_key not in html
    assert f'href="{tenant_admin_url("connect", mirrored.pk)}"' in html
    assert f'href="{tenant_admin_url("events", mirrored.pk)}"' in html
    assert f'href="{connection_url(anna)}"' in html


def test_change_page_query_count_does_not_grow_with_connections(
    wix_sandbox, site, mirrored, operator
):
    client = admin_client_for(operator)
    # The content types are cached per process, read by whichever test comes first: both
    # requests read them.
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(db_connection) as few:
        client.get(tenant_admin_url("change", mirrored.pk))
    for n in range(20):
        schedule = wix_sandbox.add_schedule(site.id, name=f"Staff {n}")
        wix_sandbox.add_connection(site.id, schedule_id=schedule)
    tenant_refresh(mirrored)
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(db_connection) as many:
        client.get(tenant_admin_url("change", mirrored.pk))

    assert len(many) == len(few)


def test_operator_changes_their_tenant_but_cannot_add_or_delete(mirrored, operator):
    client = admin_client_for(operator)
    form = {
        "name": "Salon Aurora Renamed",
        "site_id": mirrored.site_id,
        "is_active": "on",
        "notes": "",
        "wix_app": "",
        "instance_id": "",
        "api_key": "",
    }

    response = client.post(tenant_admin_url("change", mirrored.pk), form)

    assert response.status_code == 302
    mirrored.refresh_from_db()
    assert mirrored.name == "Salon Aurora Renamed"
    assert mirrored.api_key  # kept
    assert client.get(tenant_admin_url("add")).status_code == 403
    assert client.post(tenant_admin_url("delete", mirrored.pk), {"post": "yes"}).status_code == 403
    assert Tenant.objects.filter(pk=mirrored.pk).exists()


# --- Viewers look, never act ---------------------------------------------------------------


def test_viewer_sees_the_page_without_the_key_or_actions(mirrored, viewer):
    client = admin_client_for(viewer)

    listing = client.get(tenant_admin_url("changelist"))
    page = client.get(tenant_admin_url("change", mirrored.pk))

    assert listing.status_code == 200
    assert 'name="action"' not in listing.content.decode()
    html = page.content.decode()
    assert page.status_code == 200
    assert mirrored.api_key not in html
    assert secret_hint(mirrored.api_key).capitalize() in html
    assert tenant_admin_url("connect", mirrored.pk) not in html
    assert f'href="{tenant_admin_url("events", mirrored.pk)}"' in html
    assert 'name="api_key"' not in html


def test_viewer_forged_posts_do_nothing(mirrored, viewer, django_capture_on_commit_callbacks):
    client = admin_client_for(viewer)
    runs = RefreshRun.objects.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refresh = act(client, "refresh_now", mirrored)
    verify = act(client, "verify_credentials", mirrored)
    change = client.post(
        tenant_admin_url("change", mirrored.pk),
        {"name": "Hijacked", "site_id": mirrored.site_id, "api_key": ""},
    )
    revert = client.post(
        tenant_admin_url("simple_history", mirrored.pk, mirrored.history.first().history_id),
        {"name": "Hijacked", "site_id": mirrored.site_id, "api_key": "x" * 20},
    )

    assert callbacks == []
    # Viewers have no actions: the POST only shows the list again.
    assert (refresh.status_code, messages_of(refresh)) == (200, [])
    assert (verify.status_code, messages_of(verify)) == (200, [])
    assert (change.status_code, revert.status_code) == (403, 403)
    assert RefreshRun.objects.count() == runs
    mirrored.refresh_from_db()
    assert mirrored.name != "Hijacked"
    # Nothing was done; the forged change is on the trail as refused.
    assert list(AuditEvent.objects.values_list("action", "outcome")) == [
        ("tenant.change", "denied")
    ]


# --- Tenant A's staff cannot see or act on tenant B ----------------------------------------


def test_member_of_a_sees_nothing_of_b(mirrored, other, operator):
    client = admin_client_for(operator)

    listing = client.get(tenant_admin_url("changelist"))
    searched = client.get(tenant_admin_url("changelist"), {"q": other.name})
    filtered = client.get(tenant_admin_url("changelist"), {"last_refresh": "ok"})
    change = client.get(tenant_admin_url("change", other.pk))
    history = client.get(tenant_admin_url("history", other.pk))
    past = client.get(
        tenant_admin_url("simple_history", other.pk, other.history.first().history_id)
    )

    assert [t.name for t in listing.context["cl"].result_list] == [mirrored.name]
    assert other.name not in listing.content.decode()
    assert list(searched.context["cl"].result_list) == []
    assert [t.name for t in filtered.context["cl"].result_list] == [mirrored.name]
    assert change.status_code == 302
    assert change["Location"] == "/admin/"
    # 404, as for a tenant that does not exist: B's existence is not told apart.
    assert (history.status_code, past.status_code) == (404, 404)
    for response in (change, history, past):
        assert other.name not in response.content.decode()
        assert other.site_id not in response.content.decode()
    assert client.get(tenant_admin_url("connect", other.pk)).status_code == 404
    assert client.get(tenant_admin_url("events", other.pk)).status_code == 404


def test_actions_on_b_by_a_do_nothing_to_b(
    mirrored, other, operator, django_capture_on_commit_callbacks
):
    client = admin_client_for(operator)
    runs = RefreshRun.objects.for_tenant(other).count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refresh = act(client, "refresh_now", other)
    verify = act(client, "verify_credentials", other)

    assert callbacks == []
    assert messages_of(refresh) == [NOTHING_TO_DO]
    assert messages_of(verify) == [NOTHING_TO_DO]
    assert RefreshRun.objects.for_tenant(other).count() == runs
    other.refresh_from_db()
    assert other.credentials_status == "unverified"


def test_selection_is_narrowed_to_operable_tenants(
    mirrored, other, django_capture_on_commit_callbacks
):
    user = staff_user("olga", operator_of=(mirrored,))
    TenantMembership.objects.create(user=user, tenant=other, role="viewer")
    runs = RefreshRun.objects.for_tenant(other).count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = act(admin_client_for(user), "refresh_now", mirrored, other)

    assert len(callbacks) == 1
    assert messages_of(response) == [
        "1 selected item(s) belong to tenants you may only view; left unchanged.",
        REFRESH_STARTED.format(mirrored.name),
    ]
    assert RefreshRun.objects.for_tenant(other).count() == runs


def test_staff_without_membership_sees_no_tenant(mirrored):
    client = admin_client_for(staff_user("nobody"))

    assert client.get(tenant_admin_url("changelist")).status_code == 403
    assert client.get(tenant_admin_url("change", mirrored.pk)).status_code in (302, 403)
    assert client.get(tenant_admin_url("connect", mirrored.pk)).status_code == 404
    assert client.get(tenant_admin_url("events", mirrored.pk)).status_code == 404


def test_superuser_grants_access_on_the_tenant_page_and_it_is_audited(admin_client, mirrored):
    staff = staff_user("nadia")
    form = {
        "name": mirrored.name,
        "site_id": mirrored.site_id,
        "is_active": "on",
        "notes": "",
        "wix_app": "",
        "instance_id": "",
        "api_key": "",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-0-user": staff.pk,
        "memberships-0-role": "viewer",
    }

    response = admin_client.post(tenant_admin_url("change", mirrored.pk), form)

    assert response.status_code == 302
    assert TenantMembership.objects.get(user=staff, tenant=mirrored).role == "viewer"
    event = AuditEvent.objects.get(action="grant_access")
    assert event.parameters == {"user": "nadia", "role": "viewer"}


def test_members_inline_is_for_superusers_only(operator, mirrored):
    page = admin_client_for(operator).get(tenant_admin_url("change", mirrored.pk))

    assert page.status_code == 200
    assert "memberships-TOTAL_FORMS" not in page.content.decode()


def test_operators_are_offered_no_way_in_and_no_wix_app(operator, mirrored):
    WixAppFactory(name="Another agency app")

    page = admin_client_for(operator).get(tenant_admin_url("change", mirrored.pk)).content.decode()

    for field in ("site_id", "wix_app", "instance_id", "api_key", "clear_api_key"):
        assert f'name="{field}"' not in page
    assert "Another agency app" not in page
