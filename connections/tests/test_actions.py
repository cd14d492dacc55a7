"""The services' verbs against the sandbox (a connection's actions, connecting, events): Wix
first, then the mirror, always an audit entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from connections import selectors
from connections.messages import OAUTH_ERRORS, explain
from connections.models import Connection, ConnectionChange, ConnectRequest, Provider, Schedule
from connections.services.actions import (
    connection_disconnect,
    connection_set_direction,
    connection_set_sync_config,
)
from connections.services.connect import (
    credentials_connect,
    oauth_connect_complete,
    oauth_connect_start,
)
from connections.services.errors import ActionRefused, ReturnRefused
from connections.services.refresh import tenant_refresh
from connections.tests.builders import consent, query_of
from tenants.models import AuditEvent, Via
from tenants.tests.builders import staff_user
from wixapi import types as wix
from wixapi.errors import WixApiError, WixError

pytestmark = pytest.mark.django_db


@pytest.fixture
def aurora(wix_sandbox):
    """Salon Aurora: Anna on Google (importing from her primary calendar, exporting to a
    dedicated one), Ben without a calendar; `tenant_a` (conftest) is its tenant."""
    site = wix_sandbox.add_site(name="Salon Aurora")
    site.anna = wix_sandbox.add_schedule(site.id, name="Anna Lee")
    site.ben = wix_sandbox.add_schedule(site.id, name="Ben Okafor")
    site.google = wix_sandbox.add_connection(
        site.id,
        schedule_id=site.anna,
        calendar_type="GOOGLE",
        import_mode="PRIMARY",
        export_mode="DEDICATED",
    )
    return site


@pytest.fixture
def olga():
    """A staff user, who acts on the services' verbs."""
    return staff_user("olga")


def google(tenant) -> Connection:
    return Connection.objects.get(tenant=tenant, calendar_type="GOOGLE")


def test_disconnect_updates_mirror_from_wix_and_audits(wix_sandbox, aurora, tenant_a, olga):
    row = connection_disconnect(google(tenant_a), user=olga, via=Via.ADMIN)

    assert row.status == "DISCONNECTED"
    assert google(tenant_a).status == "DISCONNECTED"
    assert wix_sandbox.connection_json(aurora.id, aurora.google)["status"] == "DISCONNECTED"
    change = ConnectionChange.objects.get(field="status")
    assert (change.old_value, change.new_value, change.refresh_run) == (
        "SYNCED",
        "DISCONNECTED",
        None,
    )
    event = AuditEvent.objects.get(action="disconnect")
    assert (event.user, event.tenant, event.outcome) == (olga, tenant_a, "ok")


def test_disconnect_of_already_disconnected_is_done(wix_sandbox, aurora, tenant_a, olga):
    wix_sandbox.disconnect_on_wix(aurora.id, aurora.google)

    row = connection_disconnect(google(tenant_a), user=olga, via=Via.ADMIN)

    assert row.status == "DISCONNECTED"


def test_failed_wix_call_leaves_mirror_and_is_audited(wix_sandbox, aurora, tenant_a, olga):
    wix_sandbox.faults(aurora.id).server_error(times=3, status=500)
    before = google(tenant_a).raw

    with pytest.raises(WixError) as caught:
        connection_disconnect(google(tenant_a), user=olga, via=Via.ADMIN)

    assert caught.value.status == 500
    assert google(tenant_a).raw == before
    event = AuditEvent.objects.get(action="disconnect")
    assert (event.outcome, event.error_code) == ("failed", "INTERNAL")
    assert event.wix_request_id


def test_set_direction_turns_import_off_and_keeps_export(wix_sandbox, aurora, tenant_a, olga):
    row = connection_set_direction(
        google(tenant_a), direction="import", enabled=False, user=olga, via=Via.ADMIN
    )

    assert (row.import_enabled, row.export_enabled, row.export_mode) == (False, True, "DEDICATED")
    sent = wix_sandbox.connection_json(aurora.id, aurora.google)["syncConfig"]
    assert sent["listEventFromCalendars"] == {"enabled": False, "primaryCalendar": {}}
    assert sent["syncToCalendar"] == {"enabled": True, "dedicatedCalendar": {}}
    assert AuditEvent.objects.get(action="set_sync_config").parameters == {"syncConfig": sent}


def test_chosen_calendars(aurora, tenant_a, olga):
    calendars = selectors.calendars_list(google(tenant_a))
    wanted = wix.SyncConfig(
        list_event_from_calendars=wix.ImportConfig(
            enabled=True, mode=wix.ImportMode.CALENDARS, calendars=calendars[:2]
        ),
        sync_to_calendar=wix.ExportConfig(enabled=False, mode=wix.ExportMode.DEDICATED),
    )

    row = connection_set_sync_config(google(tenant_a), wanted, user=olga, via=Via.ADMIN)

    assert row.import_mode == "CALENDARS"
    assert [c["id"] for c in row.import_calendars] == [c.id for c in calendars[:2]]


@pytest.mark.parametrize(
    ("calendar_type", "sync_config", "message"),
    [
        (
            "MICROSOFT",
            wix.SyncConfig(sync_to_calendar=wix.ExportConfig(True, wix.ExportMode.DEDICATED)),
            "can export only to: PRIMARY",
        ),
        (
            "GOOGLE",
            wix.SyncConfig(
                list_event_from_calendars=wix.ImportConfig(True, wix.ImportMode.CALENDARS, ())
            ),
            "Choose at least one calendar",
        ),
        ("I_CAL", wix.SyncConfig(), "does not allow changing sync settings"),
    ],
)
def test_impossible_sync_config_is_refused_before_wix(
    wix_sandbox, aurora, tenant_a, olga, calendar_type, sync_config, message
):
    wix_sandbox.add_connection(aurora.id, schedule_id=aurora.ben, calendar_type=calendar_type)
    tenant_refresh(tenant_a)
    row = Connection.objects.get(tenant=tenant_a, schedule__wix_id=aurora.ben)
    calls = len(wix_sandbox.requests)

    with pytest.raises(ActionRefused, match=message):
        connection_set_sync_config(row, sync_config, user=olga, via=Via.ADMIN)

    assert len(wix_sandbox.requests) == calls
    assert AuditEvent.objects.get(action="set_sync_config").outcome == "failed"


def start(tenant, operator, *, provider_type="GOOGLE"):
    return oauth_connect_start(
        tenant=tenant,
        schedule=Schedule.objects.get(tenant=tenant, name="Ben Okafor"),
        provider=Provider.objects.get(tenant=tenant, calendar_type=provider_type),
        return_url=lambda state: f"http://portal.test/connect/return/{state}/",
        user=operator,
        via=Via.ADMIN,
    )


def test_oauth_connect_round_trip(wix_sandbox, aurora, tenant_a, olga):
    started = start(tenant_a, olga)
    returned = query_of(consent(started.oauth_url, "approve"))

    outcome = oauth_connect_complete(
        started.state, connection_id=returned["connectionId"][0], error=None
    )

    assert outcome.connected
    assert outcome.message == "Your calendar is now connected to Ben Okafor."
    row = outcome.request.connection
    assert (row.schedule.name, row.calendar_type) == ("Ben Okafor", "GOOGLE")
    assert started.state not in ConnectRequest.objects.get().state_hash
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"start_oauth_connect", "complete_oauth_connect"} <= actions


@pytest.mark.parametrize("answer", ["refuse", "unsupported", "internal"])
def test_oauth_refusals_are_recorded(tenant_a, olga, answer):
    started = start(tenant_a, olga)
    returned = query_of(consent(started.oauth_url, answer))

    outcome = oauth_connect_complete(started.state, connection_id=None, error=returned["error"][0])

    assert not outcome.connected
    assert outcome.request.error == returned["error"][0]
    assert outcome.message == OAUTH_ERRORS[returned["error"][0]]


def test_reused_expired_and_forged_states_are_refused(tenant_a, olga):
    used = start(tenant_a, olga)
    oauth_connect_complete(used.state, connection_id=None, error="reject")
    expired = start(tenant_a, olga)
    ConnectRequest.objects.filter(pk=expired.request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    for state, message in [
        (used.state, "already used"),
        (expired.state, "expired"),
        ("forged-state", "not valid"),
    ]:
        with pytest.raises(ReturnRefused, match=message):
            oauth_connect_complete(state, connection_id="x", error=None)


def test_oauth_with_credentials_only_provider_is_refused(tenant_a, olga):
    with pytest.raises(ActionRefused, match="does not connect through OAuth"):
        start(tenant_a, olga, provider_type="I_CAL")


def connect_ical(tenant, operator, password):
    return credentials_connect(
        tenant=tenant,
        schedule=Schedule.objects.get(tenant=tenant, name="Ben Okafor"),
        provider=Provider.objects.get(tenant=tenant, calendar_type="I_CAL"),
        email="ben@icloud.test",
        password=password,
        user=operator,
        via=Via.ADMIN,
    )


def test_credentials_connect_never_keeps_the_password(tenant_a, olga, caplog):
    with caplog.at_level("DEBUG"):
        row = connect_ical(tenant_a, olga, "s3cret-calendar-pw")

    assert (row.status, row.external_account_email) == ("CONNECTED", "ben@icloud.test")
    event = AuditEvent.objects.get(action="connect_with_credentials")
    assert "s3cret-calendar-pw" not in repr(list(AuditEvent.objects.values()))
    assert "s3cret-calendar-pw" not in repr(list(Connection.objects.values()))
    assert "s3cret-calendar-pw" not in caplog.text
    assert event.parameters["email"] == "ben@icloud.test"


def test_bad_calendar_password_explained(tenant_a, olga):
    with pytest.raises(WixApiError) as caught:
        connect_ical(tenant_a, olga, "wrong-pw")

    assert explain(caught.value) == (
        "The email or password was not accepted by the calendar provider. (Wix: BAD_CREDENTIALS)"
    )


def test_list_events_follows_pages_and_names_failed_providers(wix_sandbox, aurora, tenant_a):
    wix_sandbox.add_connection(
        aurora.id, schedule_id=aurora.ben, calendar_type="MICROSOFT", import_mode="PRIMARY"
    )
    wix_sandbox.faults(aurora.id).fail_provider(aurora.providers["MICROSOFT"])
    start_at = datetime(2026, 12, 1, tzinfo=UTC)

    listing = selectors.events_list(
        tenant_a, start=start_at, end=start_at + timedelta(days=60), include_titles=True
    )

    assert listing.events
    assert listing.failed_provider_ids == [aurora.providers["MICROSOFT"]]
    assert all(e.title for e in listing.events)
    assert not listing.truncated


def test_list_events_refuses_an_inverted_range(tenant_a):
    now = datetime(2026, 12, 1, tzinfo=UTC)

    with pytest.raises(ActionRefused, match="end of the range"):
        selectors.events_list(tenant_a, start=now, end=now - timedelta(days=1))
