"""How a tenant reaches Wix is an agency admin's to set, and Wix must agree it is the tenant's site.

The scenario of the hostile test: an operator of tenant A points A at client B's app instance
(or B's site), and the next refresh mirrors B's calendars into A, where she may act on them.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from connections.models import Connection
from connections.services.refresh import tenant_refresh
from tenants.models import Role, Tenant, TenantMembership, WixApp
from tenants.services.tenants import ANOTHER_SITE

pytestmark = pytest.mark.django_db

WAY_IN_REFUSED = (
    "Only agency admins change how a tenant reaches Wix (its site, Wix app, app instance or "
    "API key)."
)


class World:
    """Sites A and B with one connection each, reached through one Wix app's instances."""


@pytest.fixture
def world(wix_sandbox, django_user_model) -> World:
    w = World()
    w.sandbox = wix_sandbox
    app_id, app_secret = wix_sandbox.create_app()
    w.app = WixApp.objects.create(name="Agency app", app_id=app_id, app_secret=app_secret)
    for name in ("a", "b"):
        site = wix_sandbox.add_site(name=f"Site {name.upper()}")
        schedule = wix_sandbox.add_schedule(site.id, name=f"Staff {name.upper()}")
        wix_sandbox.add_connection(site.id, schedule_id=schedule, email=f"{name}@example.com")
        instance = wix_sandbox.install_app(app_id, site.id)
        tenant = Tenant.objects.create(
            name=f"Tenant {name.upper()}", site_id=site.id, wix_app=w.app, instance_id=instance
        )
        tenant_refresh(tenant)
        setattr(w, f"site_{name}", site)
        setattr(w, f"instance_{name}", instance)
        setattr(w, f"tenant_{name}", tenant)
    # A third site of the agency, on no tenant yet, with the app installed.
    w.site_c = wix_sandbox.add_site(name="Site C")
    w.instance_c = wix_sandbox.install_app(app_id, w.site_c.id)
    w.operator = django_user_model.objects.create_user("olga", is_staff=True)
    w.viewer = django_user_model.objects.create_user("victor", is_staff=True)
    w.superuser = django_user_model.objects.create_superuser("root", "root@example.com", None)
    TenantMembership.objects.create(user=w.operator, tenant=w.tenant_a, role=Role.OPERATOR)
    TenantMembership.objects.create(user=w.viewer, tenant=w.tenant_a, role=Role.VIEWER)
    return w


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def tenant_url(tenant) -> str:
    return f"/api/v1/tenants/{tenant.pk}/"


def emails_mirrored_in(tenant) -> set[str]:
    return set(
        Connection.objects.filter(tenant=tenant).values_list("external_account_email", flat=True)
    )


# --- The API --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"instance_id": "<B's instance>"},
        {"site_id": "<B's site>"},
        {"wix_app": None, "api_key": "<a key of B's account>"},
    ],
    ids=["instance", "site", "api key"],
)
def test_an_operator_cannot_point_her_tenant_at_another_site(world, change):
    values = {
        "<B's instance>": world.instance_b,
        "<B's site>": world.site_b.id,
        "<a key of B's account>": world.sandbox.create_api_key(world.site_b.account_id),
    }
    body = {key: values.get(value, value) for key, value in change.items()}

    response = api(world.operator).patch(tenant_url(world.tenant_a), body, format="json")

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied", "message": WAY_IN_REFUSED}}
    stored = Tenant.objects.get(pk=world.tenant_a.pk)
    assert (stored.site_id, stored.instance_id) == (world.site_a.id, world.instance_a)
    tenant_refresh(stored)
    assert emails_mirrored_in(world.tenant_a) == {"a@example.com"}


def test_an_operator_still_renames_her_tenant(world):
    response = api(world.operator).patch(
        tenant_url(world.tenant_a), {"name": "Renamed", "notes": "VIP"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["notes"]) == ("Renamed", "VIP")


@pytest.mark.parametrize("who", ["operator", "viewer"])
def test_instance_ids_are_not_shown_to_operators_and_viewers(world, who):
    client = api(getattr(world, who))

    one = client.get(tenant_url(world.tenant_a)).json()
    listed = client.get("/api/v1/tenants/").json()["results"]

    for tenant in (one, *listed):
        assert "instance_id" not in tenant
        assert "wix_app" not in tenant
        assert tenant["auth_method"] == "oauth_app"
    assert world.instance_a not in str(one) + str(listed)


def test_superusers_see_the_instance(world):
    one = api(world.superuser).get(tenant_url(world.tenant_a)).json()

    assert (one["instance_id"], one["wix_app"]) == (world.instance_a, world.app.app_id)


def test_an_instance_used_by_another_tenant_is_refused(world):
    response = api(world.superuser).patch(
        tenant_url(world.tenant_a), {"instance_id": world.instance_b}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "instance_id": ["Another tenant already uses this app instance."]
    }


def test_an_instance_of_another_site_is_refused_as_wix_tells_it(world):
    response = api(world.superuser).patch(
        tenant_url(world.tenant_a), {"instance_id": world.instance_c}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "instance_id": [ANOTHER_SITE.format(site_id=world.site_a.id)]
    }
    assert Tenant.objects.get(pk=world.tenant_a.pk).instance_id == world.instance_a


def test_a_new_tenant_with_its_own_sites_instance_is_accepted(world):
    response = api(world.superuser).post(
        "/api/v1/tenants/",
        {
            "name": "Tenant C",
            "site_id": world.site_c.id.upper(),
            "wix_app": world.app.app_id,
            "instance_id": world.instance_c.upper(),
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["site_id"], response.json()["instance_id"]) == (
        world.site_c.id,
        world.instance_c,
    )


def test_a_site_id_differing_only_in_case_is_the_same_site(world):
    response = api(world.superuser).post(
        "/api/v1/tenants/",
        {"name": "Copy of B", "site_id": world.site_b.id.upper(), "api_key": "IST.some-key"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "site_id": ["Tenant with this Site ID already exists."]
    }


def test_a_mirrored_tenants_site_cannot_change(world, wix_sandbox):
    other = wix_sandbox.add_site(name="Elsewhere")

    response = api(world.superuser).patch(
        tenant_url(world.tenant_a),
        {"site_id": other.id, "wix_app": None, "api_key": "IST.some-key"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["site_id"] == [
        "This tenant already mirrors its site's connections, so its site cannot change: add "
        "the other site as a new tenant."
    ]


def test_an_agency_admin_role_may_change_the_way_in_of_tenants_she_operates(world):
    world.operator.user_permissions.add(Permission.objects.get(codename="change_way_in"))
    client = api(world.operator)

    own = client.patch(tenant_url(world.tenant_a), {"instance_id": world.instance_b}, format="json")
    foreign = client.patch(
        tenant_url(world.tenant_b), {"instance_id": world.instance_c}, format="json"
    )

    # Even she cannot take B's instance (it is B's, and on B's site), nor reach tenant B.
    assert own.status_code == 400
    assert foreign.status_code == 404


def test_verify_fails_for_an_instance_wix_places_on_another_site(world):
    # Written behind the portal's back, as an old row or a restored backup could be.
    Tenant.objects.filter(pk=world.tenant_a.pk).update(instance_id=world.instance_c)

    response = api(world.superuser).post(f"{tenant_url(world.tenant_a)}verify/")

    assert response.status_code == 200
    assert response.json()["credentials_status"] == "failed"
    assert response.json()["credentials_error"] == ANOTHER_SITE.format(site_id=world.site_a.id)


# --- The admin ------------------------------------------------------------------------------


def admin_url(tenant) -> str:
    return reverse("admin:tenants_tenant_change", args=[tenant.pk])


def test_an_operator_posting_another_instance_in_the_admin_changes_nothing(world, client):
    client.force_login(world.operator)
    form = {
        "name": "Tenant A",
        "site_id": world.site_b.id,
        "is_active": "on",
        "notes": "",
        "wix_app": world.app.pk,
        "instance_id": world.instance_b,
        "api_key": world.sandbox.create_api_key(world.site_b.account_id),
    }

    page = client.get(admin_url(world.tenant_a)).content.decode()
    response = client.post(admin_url(world.tenant_a), form)

    assert world.instance_a not in page
    assert response.status_code == 302
    stored = Tenant.objects.get(pk=world.tenant_a.pk)
    assert (stored.site_id, stored.instance_id, stored.api_key) == (
        world.site_a.id,
        world.instance_a,
        "",
    )
    tenant_refresh(stored)
    assert emails_mirrored_in(world.tenant_a) == {"a@example.com"}


def test_a_superuser_giving_an_instance_of_another_site_gets_a_form_error(world, client):
    client.force_login(world.superuser)
    form = {
        "name": "Tenant A",
        "site_id": world.site_a.id,
        "is_active": "on",
        "notes": "",
        "wix_app": world.app.pk,
        "instance_id": world.instance_c,
        "api_key": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }

    response = client.post(admin_url(world.tenant_a), form)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "instance_id": [ANOTHER_SITE.format(site_id=world.site_a.id)]
    }
    assert Tenant.objects.get(pk=world.tenant_a.pk).instance_id == world.instance_a
