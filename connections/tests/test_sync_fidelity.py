"""Settings Wix itself made are kept: the portal checks the provider's features only for
what a person changes. The site is the Wix docs' List Connections example, whose Google
connection exports to its primary calendar while the provider says DEDICATED_CALENDAR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from connections.models import Connection
from connections.services.refresh import tenant_refresh
from connections.tests.builders import post_action
from tenants.tests.builders import admin_client_for, api_client_for, messages_of, staff_user
from tenants.tests.factories import TenantFactory
from wixapi.sandbox import seed_docs_example

pytestmark = pytest.mark.django_db

EXAMPLE = json.loads(
    (
        Path(__file__).parents[2] / "wixapi" / "tests" / "data" / "list_connections_example.json"
    ).read_text()
)
ICAL, GOOGLE = EXAMPLE["connections"]
EC = "/bookings/v2/external-calendars"


@pytest.fixture
def docs_site(wix_sandbox):
    return seed_docs_example(wix_sandbox).sites[0]


@pytest.fixture
def docs_tenant(wix_sandbox, docs_site):
    tenant = TenantFactory(
        name="Docs Example", site_id=docs_site.site_id, api_key=docs_site.api_key
    )
    assert tenant_refresh(tenant).outcome == "ok"
    return tenant


@pytest.fixture
def olga(docs_tenant):
    """An operator of the docs example's tenant."""
    return staff_user("olga", operator_of=(docs_tenant,))


@pytest.fixture
def olga_api(olga) -> APIClient:
    return api_client_for(olga)


@pytest.fixture
def olga_admin(olga) -> Client:
    return admin_client_for(olga)


def row(tenant, listed: dict) -> Connection:
    return Connection.objects.select_related("provider").get(tenant=tenant, wix_id=listed["id"])


def patches(sandbox, listed: dict) -> list[int]:
    """The statuses Wix answered the Update Sync Config calls of the connection with."""
    path = f"{EC}/connections/{listed['id']}/sync-config"
    return [r.status for r in sandbox.requests if r.method == "PATCH" and r.path == path]


def put_sync_config(api, connection: Connection, body: dict):
    return api.put(f"/api/v1/connections/{connection.pk}/sync-config/", body, format="json")


def test_the_docs_example_is_mirrored_field_by_field(docs_tenant):
    ical, google = row(docs_tenant, ICAL), row(docs_tenant, GOOGLE)

    assert {c.wix_id for c in Connection.objects.filter(tenant=docs_tenant)} == {
        ICAL["id"],
        GOOGLE["id"],
    }
    calendars = ICAL["syncConfig"]["listEventFromCalendars"]["calendars"]["calendars"]
    assert {
        "status": ical.status,
        "error_reason": ical.error_reason,
        "calendar_type": ical.calendar_type,
        "external_account_email": ical.external_account_email,
        "user_id": ical.user_id,
        "app_id": ical.app_id,
        "provider": ical.provider.wix_id,
        "schedule": ical.schedule.wix_id,
        "import": (ical.import_enabled, ical.import_mode, ical.import_calendars),
        "export": (ical.export_enabled, ical.export_mode),
    } == {
        "status": "CONNECTED",
        "error_reason": "",
        "calendar_type": "I_CAL",
        "external_account_email": "some@email.com",
        "user_id": ICAL["userId"],
        "app_id": "",
        "provider": ICAL["providerId"],
        "schedule": ICAL["scheduleId"],
        "import": (True, "CALENDARS", [{"id": c["id"], "name": ""} for c in calendars]),
        "export": (False, ""),
    }
    assert {
        "status": google.status,
        "error_reason": google.error_reason,
        "calendar_type": google.calendar_type,
        "external_account_email": google.external_account_email,
        "user_id": google.user_id,
        "app_id": google.app_id,
        "provider": google.provider.wix_id,
        "schedule": google.schedule.wix_id,
        "import": (google.import_enabled, google.import_mode, google.import_calendars),
        "export": (google.export_enabled, google.export_mode),
    } == {
        "status": "CONNECTED",
        "error_reason": "",
        "calendar_type": "GOOGLE",
        "external_account_email": "some@email.com",
        "user_id": "",
        "app_id": "",
        "provider": GOOGLE["providerId"],
        "schedule": GOOGLE["scheduleId"],
        "import": (False, "", []),
        "export": (True, "PRIMARY"),
    }
    assert (ical.raw, google.raw) == (ICAL, GOOGLE)
    assert google.provider.export_capability == "DEDICATED_CALENDAR"


def test_api_resends_a_config_beyond_the_provider_features(wix_sandbox, olga_api, docs_tenant):
    google = row(docs_tenant, GOOGLE)
    own = olga_api.get(f"/api/v1/connections/{google.pk}/").json()["sync_config"]

    response = put_sync_config(olga_api, google, own)

    assert response.status_code == 200, response.json()
    assert response.json()["sync_config"] == own
    assert patches(wix_sandbox, GOOGLE) == [200]
    assert wix_sandbox.connection_json(docs_tenant.site_id, GOOGLE["id"])["syncConfig"][
        "syncToCalendar"
    ] == {"enabled": True, "primaryCalendar": {}}


def test_api_resends_chosen_calendars_the_provider_does_not_list(
    wix_sandbox, olga_api, docs_tenant
):
    provider = wix_sandbox.site(docs_tenant.site_id).provider_records[ICAL["providerId"]]
    provider.list_event_from_calendars = "PRIMARY_CALENDAR_ONLY"
    tenant_refresh(docs_tenant)
    ical = row(docs_tenant, ICAL)
    own = olga_api.get(f"/api/v1/connections/{ical.pk}/").json()["sync_config"]

    response = put_sync_config(olga_api, ical, own)

    assert response.status_code == 200, response.json()
    assert response.json()["sync_config"]["import"]["mode"] == "CALENDARS"
    assert patches(wix_sandbox, ICAL) == [200]


def test_admin_form_offers_and_resends_the_connection_own_mode(
    wix_sandbox, olga_admin, docs_tenant
):
    google = row(docs_tenant, GOOGLE)
    url = reverse("admin:connections_connection_sync", args=[google.pk])

    form = olga_admin.get(url).context["form"]
    saved = olga_admin.post(
        url,
        {
            "import_enabled": "",
            "import_mode": form.initial["import_mode"],
            "export_enabled": "on",
            "export_mode": form.initial["export_mode"],
        },
    )

    assert form.fields["export_mode"].choices == [
        ("PRIMARY", "The primary calendar"),
        ("DEDICATED", "A dedicated calendar that Wix creates"),
    ]
    assert form.initial["export_mode"] == "PRIMARY"
    assert saved.status_code == 302, saved.context["form"].errors
    assert messages_of(saved)[-1].endswith(
        "sync settings saved. Import is off; export is on, to the primary calendar."
    )
    assert patches(wix_sandbox, GOOGLE) == [200]
    assert (row(docs_tenant, GOOGLE).export_enabled, row(docs_tenant, GOOGLE).export_mode) == (
        True,
        "PRIMARY",
    )


def test_turning_import_off_keeps_an_unlisted_export(wix_sandbox, olga_admin, docs_tenant):
    google = row(docs_tenant, GOOGLE)

    response = post_action(olga_admin, "disable_import", [google])

    assert response.status_code == 302
    assert patches(wix_sandbox, GOOGLE) == [200]
    sent = wix_sandbox.connection_json(docs_tenant.site_id, GOOGLE["id"])["syncConfig"]
    assert sent["syncToCalendar"] == {"enabled": True, "primaryCalendar": {}}
    assert sent["listEventFromCalendars"]["enabled"] is False


def test_turning_import_off_with_unlisted_calendars(wix_sandbox, olga_api, docs_tenant):
    provider = wix_sandbox.site(docs_tenant.site_id).provider_records[ICAL["providerId"]]
    provider.list_event_from_calendars = "PRIMARY_CALENDAR_ONLY"
    tenant_refresh(docs_tenant)
    ical = row(docs_tenant, ICAL)
    own = olga_api.get(f"/api/v1/connections/{ical.pk}/").json()["sync_config"]

    response = put_sync_config(
        olga_api, ical, {**own, "import": {**own["import"], "enabled": False}}
    )

    assert response.status_code == 200, response.json()
    assert response.json()["sync_config"]["import"]["enabled"] is False
    assert patches(wix_sandbox, ICAL) == [200]


def test_changing_to_an_unlisted_mode_is_refused_before_wix(wix_sandbox, olga_api, docs_tenant):
    google = row(docs_tenant, GOOGLE)
    dedicated = {"import": {"enabled": False}, "export": {"enabled": True, "mode": "DEDICATED"}}
    primary = {"import": {"enabled": False}, "export": {"enabled": True, "mode": "PRIMARY"}}
    ical_export = {"import": {"enabled": False}, "export": {"enabled": True, "mode": "PRIMARY"}}

    moved = put_sync_config(olga_api, google, dedicated)
    back = put_sync_config(olga_api, row(docs_tenant, GOOGLE), primary)
    ical = put_sync_config(olga_api, row(docs_tenant, ICAL), ical_export)

    assert moved.status_code == 200
    # Once the connection has left the primary calendar, only the provider's modes remain.
    assert (back.status_code, back.json()["error"]["fields"]) == (
        400,
        {"export": ["Google can export only to: DEDICATED."]},
    )
    assert (ical.status_code, ical.json()["error"]["fields"]) == (
        400,
        {"export": ["Apple iCal cannot export bookings."]},
    )
    assert patches(wix_sandbox, GOOGLE) == [200]
    assert patches(wix_sandbox, ICAL) == []


def test_an_unsure_capability_lets_wix_answer(wix_sandbox, olga_api, docs_tenant):
    provider = wix_sandbox.site(docs_tenant.site_id).provider_records[ICAL["providerId"]]
    provider.sync_to_calendar = "UNDEFINED"
    tenant_refresh(docs_tenant)
    body = {"import": {"enabled": False}, "export": {"enabled": True, "mode": "PRIMARY"}}

    response = put_sync_config(olga_api, row(docs_tenant, ICAL), body)

    assert response.status_code == 502
    assert response.json()["error"]["wix"]["code"] == "NOT_SUPPORTED_BY_PROVIDER"
    assert patches(wix_sandbox, ICAL) == [428]
