"""Who may use the access and audit admins: memberships for superusers, the trail read-only."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection as db_connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants import audit
from tenants.admin import TenantMembershipInline
from tenants.models import AuditEvent, AuditOutcome, Role, Tenant, TenantMembership
from tenants.tests.builders import staff_user
from tenants.tests.factories import TenantFactory, WixAppFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"admin:tenants_{name}", args=args)


@pytest.fixture
def tenant_a():
    return TenantFactory(name="Salon Aurora")


@pytest.fixture
def tenant_b():
    return TenantFactory(name="Studio Brisa")


@pytest.fixture
def staff_a(client, tenant_a):
    """A client logged in as an operator of tenant A."""
    client.force_login(staff_user("olga", operator_of=(tenant_a,)))
    return client


@pytest.fixture
def viewer_a(client, tenant_a):
    client.force_login(staff_user("victor", viewer_of=(tenant_a,)))
    return client


def event(tenant, action="disconnect", **fields):
    defaults = {
        "username": "someone",
        "target_type": "Connection",
        "target_id": "1",
        "target_repr": "Anna Lee: Google (SYNCED)",
        "outcome": AuditOutcome.OK,
    }
    return AuditEvent.objects.create(tenant=tenant, action=action, **{**defaults, **fields})


@pytest.fixture
def events(tenant_a, tenant_b):
    """One event per tenant, and one with no tenant; B's carries tell-tale values."""
    return {
        "a": event(tenant_a, "disconnect", wix_request_id="req-of-a", error_code="CODE_OF_A"),
        "b": event(
            tenant_b,
            "secret_action_of_b",
            target_repr="Farah Haddad of B",
            wix_request_id="req-of-b",
            error_code="CODE_OF_B",
            outcome=AuditOutcome.FAILED,
            via="api",
        ),
        "none": event(None, "add_wix_app", target_repr="Agency app of nobody", via="command"),
    }


def app_models(response) -> set[str]:
    return {m["object_name"] for app in response.context["app_list"] for m in app["models"]}


# --- Memberships: superusers only -------------------------------------------------------


def test_superuser_manages_memberships(admin_client, django_user_model, tenant_a, tenant_b):
    staff = staff_user("olga")
    django_user_model.objects.create_user("customer")  # not staff: never offered

    add_page = admin_client.get(url("tenantmembership_add"))
    response = admin_client.post(
        url("tenantmembership_add"),
        {"user": staff.pk, "tenant": tenant_a.pk, "role": Role.OPERATOR},
    )
    listing = admin_client.get(url("tenantmembership_changelist"))

    users = add_page.context["adminform"].form.fields["user"].queryset
    assert sorted(u.username for u in users) == ["admin", "olga"]
    assert response.status_code == 302
    membership = TenantMembership.objects.get()
    assert (membership.user, membership.tenant, membership.role) == (staff, tenant_a, "operator")
    html = listing.content.decode()
    assert "olga" in html
    assert "Salon Aurora" in html
    assert "Operator (may act)" in html
    assert [f.title for f in listing.context["cl"].filter_specs] == ["role", "tenant", "active"]
    granted = AuditEvent.objects.get()
    assert (granted.action, granted.tenant, granted.username, granted.parameters) == (
        "grant_access",
        tenant_a,
        "admin",
        {"user": "olga", "role": "operator"},
    )


def test_superuser_revokes_a_membership_audited(admin_client, tenant_a):
    membership = staff_user("staff", viewer_of=(tenant_a,)).tenant_memberships.get()

    response = admin_client.post(url("tenantmembership_delete", membership.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not TenantMembership.objects.exists()
    revoked = AuditEvent.objects.get()
    assert (revoked.action, revoked.tenant, revoked.parameters["user"]) == (
        "revoke_access",
        tenant_a,
        "staff",
    )


@pytest.mark.parametrize("client_fixture", ["staff_a", "viewer_a"])
def test_staff_cannot_see_or_change_memberships(request, client_fixture, tenant_a):
    client = request.getfixturevalue(client_fixture)
    membership = TenantMembership.objects.get()

    pages = [
        client.get(url("tenantmembership_changelist")),
        client.get(url("tenantmembership_add")),
        client.get(url("tenantmembership_change", membership.pk)),
        client.post(url("tenantmembership_change", membership.pk), {"role": Role.OPERATOR}),
        client.post(url("tenantmembership_delete", membership.pk), {"post": "yes"}),
        client.post(
            url("tenantmembership_add"),
            {"user": membership.user_id, "tenant": TenantFactory().pk, "role": Role.OPERATOR},
        ),
    ]

    assert [p.status_code for p in pages] == [403] * 6
    assert TenantMembership.objects.count() == 1
    assert "TenantMembership" not in app_models(client.get("/admin/"))


def test_model_permissions_do_not_open_the_membership_admin(client, tenant_a):
    user = staff_user("staff", operator_of=(tenant_a,))
    user.user_permissions.set(Permission.objects.filter(codename__endswith="tenantmembership"))
    client.force_login(user)

    assert client.get(url("tenantmembership_changelist")).status_code == 403


def test_membership_inline_is_for_superusers(admin_user, tenant_a):
    inline = TenantMembershipInline(Tenant, admin.site)
    as_superuser = RequestFactory().get("/")
    as_superuser.user = admin_user
    as_staff = RequestFactory().get("/")
    as_staff.user = staff_user("staff", operator_of=(tenant_a,))

    for check in ("has_view_permission", "has_change_permission", "has_delete_permission"):
        assert getattr(inline, check)(as_superuser, tenant_a) is True
        assert getattr(inline, check)(as_staff, tenant_a) is False
    assert inline.has_add_permission(as_superuser, tenant_a) is True
    assert inline.has_add_permission(as_staff, tenant_a) is False
    field = inline.formfield_for_foreignkey(TenantMembership._meta.get_field("user"), as_superuser)
    assert sorted(u.username for u in field.queryset) == ["admin", "staff"]


# --- Wix apps: superusers only ------------------------------------------------------------


def test_wix_app_admin_is_superuser_only(admin_client, client, tenant_a):
    wix_app = WixAppFactory()
    user = staff_user("staff", operator_of=(tenant_a,))
    user.user_permissions.set(Permission.objects.filter(codename__endswith="wixapp"))
    client.force_login(user)

    assert admin_client.get(url("wixapp_changelist")).status_code == 200
    assert client.get(url("wixapp_changelist")).status_code == 403
    assert client.get(url("wixapp_change", wix_app.pk)).status_code == 403
    assert client.get(url("wixapp_add")).status_code == 403
    assert "WixApp" not in app_models(client.get("/admin/"))


# --- Audit trail: scoped and read-only ----------------------------------------------------


def test_audit_list_shows_the_columns(admin_client, events):
    response = admin_client.get(url("auditevent_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    for text in ("someone", "Salon Aurora", "disconnect", "Anna Lee: Google (SYNCED)", "req-of-a"):
        assert text in html
    assert '<span class="portal-badge portal-bad">Failed</span>' in html
    assert '<span class="portal-badge portal-good">OK</span>' in html
    assert "CODE_OF_B" in html
    assert "Agency app of nobody" in html  # superusers see events without a tenant


def test_staff_see_only_their_tenants_events(staff_a, events):
    response = staff_a.get(url("auditevent_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [events["a"].pk]
    for leak in ("Studio Brisa", "secret_action_of_b", "Farah Haddad", "req-of-b", "CODE_OF_B"):
        assert leak not in html
    assert "Agency app of nobody" not in html
    assert "add_wix_app" not in html  # not even as a choice of the action filter


def test_staff_cannot_open_another_tenants_event(staff_a, events):
    for other in (events["b"], events["none"]):
        response = staff_a.get(url("auditevent_change", other.pk))

        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")


def test_staff_open_their_own_event(staff_a, events):
    response = staff_a.get(url("auditevent_change", events["a"].pk))

    assert response.status_code == 200
    assert "CODE_OF_A" in response.content.decode()


def test_superuser_opens_an_event_without_tenant(admin_client, events):
    response = admin_client.get(url("auditevent_change", events["none"].pk))

    assert response.status_code == 200
    assert "Agency app of nobody" in response.content.decode()


def test_tenant_filter_offers_and_gives_only_own_tenants(staff_a, events, tenant_b):
    listing = staff_a.get(url("auditevent_changelist"))
    filtered = staff_a.get(url("auditevent_changelist"), {"tenant": tenant_b.pk})

    tenant_filter = next(f for f in listing.context["cl"].filter_specs if f.title == "tenant")
    assert [name for _, name in tenant_filter.lookup_choices] == ["Salon Aurora"]
    assert filtered.status_code == 200
    assert list(filtered.context["cl"].result_list) == []
    assert "req-of-b" not in filtered.content.decode()


def test_search_never_reaches_other_tenants(staff_a, events):
    response = staff_a.get(url("auditevent_changelist"), {"q": "req-of-b"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_filters_and_search(admin_client, events):
    cl = admin_client.get(url("auditevent_changelist")).context["cl"]
    by_outcome = admin_client.get(url("auditevent_changelist"), {"outcome__exact": "failed"})
    by_via = admin_client.get(url("auditevent_changelist"), {"via": "command"})
    by_search = admin_client.get(url("auditevent_changelist"), {"q": "req-of-a"})

    assert [f.title for f in cl.filter_specs] == ["tenant", "action", "outcome", "via"]
    assert list(by_outcome.context["cl"].result_list) == [events["b"]]
    assert list(by_via.context["cl"].result_list) == [events["none"]]
    assert list(by_search.context["cl"].result_list) == [events["a"]]


def test_audit_is_read_only(admin_client, events):
    pk = events["a"].pk

    listing = admin_client.get(url("auditevent_changelist")).content.decode()
    detail = admin_client.get(url("auditevent_change", pk))
    responses = [
        admin_client.get(url("auditevent_add")),
        admin_client.post(url("auditevent_add"), {"action": "forged", "outcome": "ok"}),
        admin_client.post(url("auditevent_change", pk), {"action": "forged", "outcome": "ok"}),
        admin_client.post(url("auditevent_delete", pk), {"post": "yes"}),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert 'name="action"' not in listing  # no bulk actions, not even delete
    assert url("auditevent_add") not in listing
    assert detail.context["has_change_permission"] is False
    assert 'type="submit"' not in detail.content.decode().split('id="content-main"')[1]
    events["a"].refresh_from_db()
    assert events["a"].action == "disconnect"
    # No event was forged; the refused posts are on the trail as such.
    assert AuditEvent.objects.exclude(outcome="denied").count() == 3
    assert not AuditEvent.objects.filter(action="forged").exists()


def test_viewers_see_no_actions(viewer_a, events):
    listing = viewer_a.get(url("auditevent_changelist"))

    assert listing.status_code == 200
    assert 'name="action"' not in listing.content.decode()


def test_parameters_are_pretty_printed(admin_client, tenant_a):
    recorded = audit.record(
        user=None,
        action="set_sync_config",
        tenant=tenant_a,
        parameters={"syncConfig": {"syncToCalendar": {"enabled": True}}, "note": "<b>x</b>"},
        via="admin",
    )

    html = admin_client.get(url("auditevent_change", recorded.pk)).content.decode()

    assert (
        '<pre style="margin: 0; white-space: pre-wrap">{\n  &quot;note&quot;: '
        "&quot;&lt;b&gt;x&lt;/b&gt;&quot;,\n  &quot;syncConfig&quot;: {\n"
    ) in html
    assert "&quot;syncToCalendar&quot;: {\n      &quot;enabled&quot;: true\n    }" in html
    assert "<b>x</b>" not in html


def list_queries(client) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        assert client.get(url("auditevent_changelist")).status_code == 200
    return len(queries)


@pytest.mark.parametrize("superuser", [True, False])
def test_audit_list_query_count_is_constant(client, tenant_a, superuser):
    user = staff_user("staff", operator_of=(tenant_a,), is_superuser=superuser)
    client.force_login(user)
    event(tenant_a)

    small = list_queries(client)
    for n in range(30):
        tenant = TenantFactory()
        TenantMembership.objects.create(user=user, tenant=tenant, role=Role.VIEWER)
        event(tenant, f"action_{n % 4}", outcome=AuditOutcome.FAILED, via="api")
    large = list_queries(client)

    assert small == large
