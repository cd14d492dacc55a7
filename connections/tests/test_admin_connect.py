"""Connect a calendar from a tenant's page: OAuth links and email-and-password, via the sandbox."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from common.badges import badge
from connections.messages import OAUTH_ERRORS
from connections.models import Connection, ConnectRequest, Provider, Schedule
from connections.services.connect import oauth_connect_start
from connections.tests.builders import (
    CALENDAR_PASSWORD,
    add_site,
    connection_url,
    consent,
    path_of,
    query_of,
    refreshed_tenant,
    tenant_admin_url,
)
from tenants.models import AuditEvent, Via
from tenants.tests.builders import admin_client_for, messages_of, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(operator):
    return admin_client_for(operator)


def ben(tenant) -> Schedule:
    return Schedule.objects.get(tenant=tenant, name="Ben Okafor")


def provider(tenant, calendar_type) -> Provider:
    return Provider.objects.get(tenant=tenant, calendar_type=calendar_type)


def start(client, tenant, method, calendar_type, **extra):
    return client.post(
        tenant_admin_url("connect", tenant.pk),
        {
            "schedule": ben(tenant).pk,
            "method": method,
            "provider": provider(tenant, calendar_type).pk,
            **extra,
        },
    )


def credentials(client, tenant, password, *, calendar_type="I_CAL"):
    return start(
        client,
        tenant,
        "CREDENTIALS",
        calendar_type,
        step="credentials",
        email="ben@icloud.test",
        password=password,
    )


# --- Step 1 -------------------------------------------------------------------------------


def test_connect_page_offers_the_tenants_schedules_and_providers(client, mirrored):
    response = client.get(tenant_admin_url("connect", mirrored.pk))

    html = response.content.decode()
    assert response.status_code == 200
    assert ">Anna Lee</option>" in html
    assert ">Ben Okafor</option>" in html
    ical = provider(mirrored, "I_CAL")
    assert f'value="{ical.pk}" data-methods="CREDENTIALS">Apple iCal (email and password)' in html
    google = provider(mirrored, "GOOGLE")
    assert f'value="{google.pk}" data-methods="OAUTH">Google (OAuth link)' in html


def test_provider_must_support_the_method(wix_sandbox, client, mirrored):
    calls = len(wix_sandbox.requests)

    oauth = start(client, mirrored, "OAUTH", "I_CAL")
    by_password = start(client, mirrored, "CREDENTIALS", "GOOGLE")

    assert oauth.context["start"].errors == {
        "provider": ["Apple iCal does not connect by OAuth link."]
    }
    assert by_password.context["start"].errors == {
        "provider": ["Google does not connect by email and password."]
    }
    assert len(wix_sandbox.requests) == calls
    assert not ConnectRequest.objects.exists()


def test_another_tenants_schedule_or_provider_is_not_a_choice(wix_sandbox, client, mirrored):
    other = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Barber Bravo"))

    response = client.post(
        tenant_admin_url("connect", mirrored.pk),
        {
            "schedule": Schedule.objects.get(tenant=other).pk,
            "method": "OAUTH",
            "provider": provider(other, "GOOGLE").pk,
        },
    )

    choice = "Select a valid choice. That choice is not one of the available choices."
    assert response.context["start"].errors == {"schedule": [choice], "provider": [choice]}
    assert not ConnectRequest.objects.exists()


# --- OAuth --------------------------------------------------------------------------------


def test_oauth_link_is_shown_with_a_copy_button(client, operator, mirrored):
    response = start(client, mirrored, "OAUTH", "GOOGLE")

    request = ConnectRequest.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert f'readonly value="{request.oauth_url}"' in html
    assert 'id="copy-oauth-url"' in html
    assert "navigator.clipboard" in html
    assert (request.created_by, request.schedule, request.status) == (
        operator,
        ben(mirrored),
        "pending",
    )
    assert timezone.localtime(request.expires_at).strftime("%Y") in html
    assert "olga" in html
    assert request.state_hash not in html


def test_oauth_round_trip_through_the_consent_page(client, mirrored):
    start(client, mirrored, "OAUTH", "GOOGLE")
    request = ConnectRequest.objects.get()
    back = consent(request.oauth_url, "approve")
    assert path_of(back).startswith("/connect/return/")

    landing = client.get(path_of(back))

    assert landing.status_code == 200
    html = landing.content.decode()
    assert "Calendar connected" in html
    assert "Your calendar is now connected to Ben Okafor." in html
    row = Connection.objects.get(wix_id=query_of(back)["connectionId"][0])
    assert (row.tenant, row.schedule, row.status) == (mirrored, ben(mirrored), "CONNECTED")
    page = client.get(tenant_admin_url("change", mirrored.pk)).content.decode()
    assert "owner@example.com" in page
    assert badge("CONNECTED", "Connected") in page
    request.refresh_from_db()
    assert (request.status, request.connection) == ("connected", row)


@pytest.mark.parametrize("answer", ["refuse", "unsupported", "internal"])
def test_oauth_refusals_show_a_plain_page(client, mirrored, answer):
    start(client, mirrored, "OAUTH", "GOOGLE")
    request = ConnectRequest.objects.get()
    back = consent(request.oauth_url, answer)

    landing = Client().get(path_of(back))

    error = query_of(back)["error"][0]
    assert landing.status_code == 200
    html = landing.content.decode()
    assert "Calendar not connected" in html
    assert OAUTH_ERRORS[error] in html
    request.refresh_from_db()
    assert (request.status, request.error) == ("failed", error)


def test_reused_expired_and_forged_returns_are_refused(client, mirrored):
    start(client, mirrored, "OAUTH", "GOOGLE")
    used = consent(ConnectRequest.objects.get().oauth_url, "approve")
    assert Client().get(path_of(used)).status_code == 200
    start(client, mirrored, "OAUTH", "MICROSOFT")
    late = ConnectRequest.objects.filter(status="pending").get()
    expired = consent(late.oauth_url, "approve")
    ConnectRequest.objects.filter(pk=late.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    for path, message in [
        (path_of(used), "This connection link was already used."),
        (path_of(expired), "This connection link has expired."),
        (
            reverse("oauth-return", args=["forged-state"]) + "?connectionId=x",
            "This connection link is not valid.",
        ),
    ]:
        landing = Client().get(path)
        assert landing.status_code == 400, path
        assert "This link cannot be used" in landing.content.decode()
        assert message in landing.content.decode()


def test_wix_error_on_oauth_start_is_a_form_error(wix_sandbox, site, client, mirrored):
    wix_sandbox.faults(site.id).server_error(times=10, status=500)

    response = start(client, mirrored, "OAUTH", "GOOGLE")

    errors = response.context["start"].non_field_errors()
    assert response.status_code == 200
    assert len(errors) == 1
    assert errors[0].endswith("(Wix: INTERNAL)")
    assert not ConnectRequest.objects.exists()


def test_wix_refusing_an_oauth_start_says_what_wix_said(client, mirrored):
    # The mirror says iCal connects by OAuth; Wix knows better.
    Provider.objects.filter(tenant=mirrored, calendar_type="I_CAL").update(
        connect_methods=["CREDENTIALS", "OAUTH"]
    )

    response = start(client, mirrored, "OAUTH", "I_CAL")

    assert response.context["start"].non_field_errors() == [
        "Apple iCal doesn't connect by OAuth (Wix: NOT_SUPPORTED_BY_PROVIDER)"
    ]
    assert not ConnectRequest.objects.exists()
    event = AuditEvent.objects.get(action="start_oauth_connect")
    assert (event.outcome, event.error_code) == ("failed", "NOT_SUPPORTED_BY_PROVIDER")


# --- Email and password -------------------------------------------------------------------


def test_credentials_step_asks_for_email_and_password(client, mirrored):
    response = start(client, mirrored, "CREDENTIALS", "I_CAL")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'type="password" name="password"' in html
    assert 'name="step" value="credentials"' in html
    assert "Connect <strong>Ben Okafor</strong> to <strong>Apple iCal</strong>" in html


def test_credentials_connect_lands_on_the_connection_and_forgets_the_password(
    client, mirrored, caplog
):
    caplog.set_level(logging.DEBUG)

    response = credentials(client, mirrored, CALENDAR_PASSWORD)

    row = Connection.objects.get(external_account_email="ben@icloud.test")
    assert response.status_code == 302
    assert response["Location"] == connection_url(row)
    assert messages_of(response) == ["Ben Okafor is now connected to Apple iCal (ben@icloud.test)."]
    assert (row.status, row.tenant) == ("CONNECTED", mirrored)
    assert CALENDAR_PASSWORD not in response.content.decode()
    assert CALENDAR_PASSWORD not in caplog.text
    for model in apps.get_models():
        assert CALENDAR_PASSWORD not in repr(list(model.objects.values())), model
    event = AuditEvent.objects.get(action="connect_with_credentials")
    assert event.parameters["email"] == "ben@icloud.test"


@pytest.mark.parametrize(
    ("setup", "calendar_type", "message"),
    [
        (
            "wrong password",
            "I_CAL",
            "The email or password was not accepted by the calendar provider. "
            "(Wix: BAD_CREDENTIALS)",
        ),
        (
            "no premium",
            "I_CAL",
            "This site's Wix plan does not include calendar connections by email and password. "
            "(Wix: PREMIUM_FEATURE_NOT_ENABLED)",
        ),
        (
            "stale provider",
            "GOOGLE",
            "This provider does not connect with an email and password. "
            "(Wix: NOT_SUPPORTED_BY_PROVIDER)",
        ),
    ],
)
def test_wix_refusals_become_plain_language(
    wix_sandbox, site, client, mirrored, caplog, setup, calendar_type, message
):
    caplog.set_level(logging.DEBUG)
    password = "wrong-" + CALENDAR_PASSWORD if setup == "wrong password" else CALENDAR_PASSWORD
    if setup == "no premium":
        wix_sandbox.site(site.id).premium = False
    if setup == "stale provider":
        # The mirror says Google takes a password; Wix knows better.
        Provider.objects.filter(tenant=mirrored, calendar_type="GOOGLE").update(
            connect_methods=["OAUTH", "CREDENTIALS"]
        )

    response = credentials(client, mirrored, password, calendar_type=calendar_type)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["credentials"].non_field_errors() == [message]
    assert 'value="ben@icloud.test"' in html
    assert password not in html
    assert password not in caplog.text
    assert password not in repr(list(AuditEvent.objects.values()))
    assert AuditEvent.objects.get(action="connect_with_credentials").outcome == "failed"
    assert not Connection.objects.filter(external_account_email="ben@icloud.test").exists()


# --- Who may connect ----------------------------------------------------------------------


def test_viewer_gets_403_and_a_forged_post_does_nothing(wix_sandbox, mirrored):
    client = admin_client_for(staff_user("victor", viewer_of=(mirrored,)))
    calls = len(wix_sandbox.requests)

    page = client.get(tenant_admin_url("connect", mirrored.pk))
    oauth = start(client, mirrored, "OAUTH", "GOOGLE")
    by_password = credentials(client, mirrored, CALENDAR_PASSWORD)

    assert (page.status_code, oauth.status_code, by_password.status_code) == (403, 403, 403)
    assert not ConnectRequest.objects.exists()
    assert not Connection.objects.filter(external_account_email="ben@icloud.test").exists()
    assert len(wix_sandbox.requests) == calls
    assert not AuditEvent.objects.exists()


def test_operator_of_a_cannot_connect_for_b(wix_sandbox, mirrored, client):
    other = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Barber Bravo"))
    calls = len(wix_sandbox.requests)

    page = client.get(tenant_admin_url("connect", other.pk))
    forged = client.post(
        tenant_admin_url("connect", other.pk),
        {
            "schedule": Schedule.objects.get(tenant=other).pk,
            "method": "OAUTH",
            "provider": provider(other, "GOOGLE").pk,
        },
    )

    assert (page.status_code, forged.status_code) == (404, 404)
    assert "Barber Bravo" not in page.content.decode()
    assert not ConnectRequest.objects.exists()
    assert len(wix_sandbox.requests) == calls


# --- Connect requests, read-only ----------------------------------------------------------


def test_connect_requests_admin_is_read_only_scoped_and_hides_the_state(
    wix_sandbox, client, operator, mirrored
):
    start(client, mirrored, "OAUTH", "GOOGLE")
    mine = ConnectRequest.objects.get()
    other = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Barber Bravo"))
    theirs = oauth_connect_start(
        tenant=other,
        schedule=Schedule.objects.get(tenant=other),
        provider=provider(other, "GOOGLE"),
        return_url=lambda state: f"http://testserver/connect/return/{state}/",
        user=None,
        via=Via.ADMIN,
    ).request

    listing = client.get(reverse("admin:connections_connectrequest_changelist"))
    detail = client.get(reverse("admin:connections_connectrequest_change", args=[mine.pk]))
    foreign = client.get(reverse("admin:connections_connectrequest_change", args=[theirs.pk]))

    assert [r.pk for r in listing.context["cl"].result_list] == [mine.pk]
    html = detail.content.decode()
    assert detail.status_code == 200
    assert "Ben Okafor" in html and "olga" in html
    assert mine.state_hash not in html
    assert 'name="_save"' not in html
    assert foreign.status_code == 302
    assert client.get(reverse("admin:connections_connectrequest_add")).status_code == 403
