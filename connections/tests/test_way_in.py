"""How a tenant reaches Wix is an agency admin's to set, and Wix must agree it is the tenant's site.

The scenario of the hostile test: an operator of tenant A points A at client B's app instance
(or B's site), and the next refresh mirrors B's calendars into A, where she may act on them.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from connections.models import Connection
from connections.services.refresh import tenant_refresh
from tenants.models import Tenant, WixApp
from tenants.services.tenants import ANOTHER_SITE
from tenants.tests.builders import api_client_for, staff_user, superuser

pytestmark = pytest.mark.django_db

WAY_IN_REFUSED = (
    "Only agency admins change how a tenant reaches Wix (its site, Wix app, app instance or "
    "API key)."
)


class World:
    """Sites A and B with one connection each, reached through one Wix app's instances."""


@pytest.fixture
def app_world(wix_sandbox) -> World:
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
    w.operator = staff_user("olga", operator_of=(w.tenant_a,))
    w.viewer = staff_user("victor", viewer_of=(w.tenant_a,))
    w.superuser = superuser()
    return w


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
def test_an_operator_cannot_point_her_tenant_at_another_site(app_world, change):
    values = {
        "<B's instance>": app_world.instance_b,
        "<B's site>": app_world.site_b.id,
        "<a key of B's account>": app_world.sandbox.create_api_key(app_world.site_b.account_id),
    }
    body = {key: values.get(value, value) for key, value in change.items()}

    response = api_client_for(app_world.operator).patch(
        tenant_url(app_world.tenant_a), body, format="json"
    )

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "permission_denied", "message": WAY_IN_REFUSED}}
    stored = Tenant.objects.get(pk=app_world.tenant_a.pk)
    assert (stored.site_id, stored.instance_id) == (app_world.site_a.id, app_world.instance_a)
    tenant_refresh(stored)
    assert emails_mirrored_in(app_world.tenant_a) == {"a@example.com"}


def test_an_operator_still_renames_her_tenant(app_world):
    response = api_client_for(app_world.operator).patch(
        tenant_url(app_world.tenant_a), {"name": "Renamed", "notes": "VIP"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["notes"]) == ("Renamed", "VIP")


@pytest.mark.parametrize("who", ["operator", "viewer"])
def test_instance_ids_are_not_shown_to_operators_and_viewers(app_world, who):
    client = api_client_for(getattr(app_world, who))

    one = client.get(tenant_url(app_world.tenant_a)).json()
    listed = client.get("/api/v1/tenants/").json()["results"]

    for tenant in (one, *listed):
        assert "instance_id" not in tenant
        assert "wix_app" not in tenant
        assert tenant["auth_method"] == "oauth_app"
    assert app_world.instance_a not in str(one) + str(listed)


def test_superusers_see_the_instance(app_world):
    one = api_client_for(app_world.superuser).get(tenant_url(app_world.tenant_a)).json()

    assert (one["instance_id"], one["wix_app"]) == (app_world.instance_a, app_world.app.app_id)


def test_an_instance_used_by_another_tenant_is_refused(app_world):
    response = api_client_for(app_world.superuser).patch(
        tenant_url(app_world.tenant_a), {"instance_id": app_world.instance_b}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "instance_id": ["Another tenant already uses this app instance."]
    }


def test_an_instance_of_another_site_is_refused_as_wix_tells_it(app_world):
    response = api_client_for(app_world.superuser).patch(
        tenant_url(app_world.tenant_a), {"instance_id": app_world.instance_c}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "instance_id": [ANOTHER_SITE.format(site_id=app_world.site_a.id)]
    }
    assert Tenant.objects.get(pk=app_world.tenant_a.pk).instance_id == app_world.instance_a


def test_a_new_tenant_with_its_own_sites_instance_is_accepted(app_world):
    response = api_client_for(app_world.superuser).post(
        "/api/v1/tenants/",
        {
            "name": "Tenant C",
            "site_id": app_world.site_c.id.upper(),
            "wix_app": app_world.app.app_id,
            "instance_id": app_world.instance_c.upper(),
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["site_id"], response.json()["instance_id"]) == (
        app_world.site_c.id,
        app_world.instance_c,
    )


def test_a_site_id_differing_only_in_case_is_the_same_site(app_world):
    response = api_client_for(app_world.superuser).post(
        "/api/v1/tenants/",
        {"name": "Copy of B", "site_id": app_world.site_b.id.upper(), "api_key": "IST.some-key"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "site_id": ["Tenant with this Site ID already exists."]
    }


def test_a_mirrored_tenants_site_cannot_change(app_world, wix_sandbox):
    other = wix_sandbox.add_site(name="Elsewhere")

    response = api_client_for(app_world.superuser).patch(
        tenant_url(app_world.tenant_a),
        {"site_id": other.id, "wix_app": None, "api_key": "IST.some-key"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["site_id"] == [
        "This tenant already mirrors its site's connections, so its site cannot change: add "
        "the other site as a new tenant."
    ]


def test_an_agency_admin_role_may_change_the_way_in_of_tenants_she_operates(app_world):
    app_world.operator.user_permissions.add(Permission.objects.get(codename="change_way_in"))
    client = api_client_for(app_world.operator)

    own = client.patch(
        tenant_url(app_world.tenant_a), {"instance_id": app_world.instance_b}, format="json"
    )
    foreign = client.patch(
        tenant_url(app_world.tenant_b), {"instance_id": app_world.instance_c}, format="json"
    )

    # Even she cannot take B's instance (it is B's, and on B's site), nor reach tenant B.
    assert own.status_code == 400
    assert foreign.status_code == 404


def test_verify_fails_for_an_instance_wix_places_on_another_site(app_world):
    # Written behind the portal's back, as an old row or a restored backup could be.
    Tenant.objects.filter(pk=app_world.tenant_a.pk).update(instance_id=app_world.instance_c)

    response = api_client_for(app_world.superuser).post(f"{tenant_url(app_world.tenant_a)}verify/")

    assert response.status_code == 200
    assert response.json()["credentials_status"] == "failed"
    assert response.json()["credentials_error"] == ANOTHER_SITE.format(site_id=app_world.site_a.id)


# --- The admin ------------------------------------------------------------------------------


def admin_url(tenant) -> str:
    return reverse("admin:tenants_tenant_change", args=[tenant.pk])


def test_an_operator_posting_another_instance_in_the_admin_changes_nothing(app_world, client):
    client.force_login(app_world.operator)
    form = {
        "name": "Tenant A",
        "site_id": app_world.site_b.id,
        "is_active": "on",
        "notes": "",
        "wix_app": app_world.app.pk,
        "instance_id": app_world.instance_b,
        "api_key": app_world.sandbox.create_api_key(app_world.site_b.account_id),
    }

    page = client.get(admin_url(app_world.tenant_a)).content.decode()
    response = client.post(admin_url(app_world.tenant_a), form)

    assert app_world.instance_a not in page
    assert response.status_code == 302
    stored = Tenant.objects.get(pk=app_world.tenant_a.pk)
    assert (stored.site_id, stored.instance_id, stored.api_key) == (
        app_world.site_a.id,
        app_world.instance_a,
        "",
    )
    tenant_refresh(stored)
    assert emails_mirrored_in(app_world.tenant_a) == {"a@example.com"}


def test_a_superuser_giving_an_instance_of_another_site_gets_a_form_error(app_world, client):
    client.force_login(app_world.superuser)
    form = {
        "name": "Tenant A",
        "site_id": app_world.site_a.id,
        "is_active": "on",
        "notes": "",
        "wix_app": app_world.app.pk,
        "instance_id": app_world.instance_c,
        "api_key": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }

    response = client.post(admin_url(app_world.tenant_a), form)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "instance_id": [ANOTHER_SITE.format(site_id=app_world.site_a.id)]
    }
    assert Tenant.objects.get(pk=app_world.tenant_a.pk).instance_id == app_world.instance_a
