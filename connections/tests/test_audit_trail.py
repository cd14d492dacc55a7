"""Each verb leaves the same audit row whichever interface ran it (the admin, the API, a
command), written with the mirror in one transaction: the act's one name, Wix's request id,
the way in, the old and new values."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client
from django.urls import reverse

from connections.api.serializers import SyncConfigSerializer
from connections.models import Connection, ConnectRequest, Job, Provider, RefreshRun, Schedule
from connections.services.actions import connection_disconnect, connection_refresh
from connections.services.refresh import tenant_refresh
from connections.tests.builders import CALENDAR_PASSWORD, post_action
from tenants import audit
from tenants.models import AuditEvent, Via
from tenants.tests.builders import admin_client_for, api_client_for, messages_of

pytestmark = pytest.mark.django_db

INTERFACES = ("admin", "api", "command")


@pytest.fixture
def mirrored(wix_sandbox, site, tenant):
    """The conftest's site and tenant, Ben's calendar broken, refreshed (the conftest's
    `operator` is a member of it)."""
    wix_sandbox.set_connection_error(site.id, site.ben_microsoft, "TOKEN_REVOKED")
    assert tenant_refresh(tenant).outcome == "ok"
    return tenant


@dataclass
class Interfaces:
    """The operator's ways in: the admin (a logged-in browser), the API (a token), a shell."""

    admin: Client
    api: Any
    username: str

    def command(self, *args: str) -> str:
        out = io.StringIO()
        call_command(*args, "--user", self.username, stdout=out, stderr=io.StringIO())
        return out.getvalue()


@pytest.fixture
def ways_in(operator) -> Interfaces:
    return Interfaces(
        admin=admin_client_for(operator), api=api_client_for(operator), username=operator.username
    )


def google(tenant) -> Connection:
    return Connection.objects.select_related("tenant", "schedule", "provider").get(
        tenant=tenant, calendar_type="GOOGLE"
    )


def microsoft(tenant) -> Connection:
    return Connection.objects.select_related("tenant", "schedule", "provider").get(
        tenant=tenant, calendar_type="MICROSOFT"
    )


def last_request_id(wix_sandbox) -> str:
    """The x-wix-request-id of the sandbox's last answer."""
    request_id = wix_sandbox.requests[-1].request_id
    assert request_id
    return request_id


def the_event(action: str) -> AuditEvent:
    (event,) = AuditEvent.objects.filter(action=action)
    return event


def assert_event(event: AuditEvent, *, operator, tenant, via: str, outcome: str = "ok") -> None:
    assert (event.user, event.username, event.tenant) == (operator, operator.username, tenant)
    assert (event.via, event.outcome) == (via, outcome)


# --- One connection's verbs ------------------------------------------------------------------


@pytest.mark.parametrize("via", INTERFACES)
def test_disconnect(wix_sandbox, tenant, operator, ways_in, via):
    row = google(tenant)

    if via == "admin":
        response = post_action(ways_in.admin, "disconnect", [row], confirm=True)
        assert response.status_code == 302
    elif via == "api":
        response = ways_in.api.post(f"/api/v1/connections/{row.pk}/disconnect/")
        assert response.status_code == 200
    else:
        printed = ways_in.command("connection", "disconnect", str(row.pk))
        assert printed == (
            f"{tenant.name}: Anna Lee (Google): disconnected; Wix shows it as Disconnected.\n"
        )

    event = the_event("disconnect")
    assert_event(event, operator=operator, tenant=tenant, via=via)
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.changes == {"status": ["SYNCED", "DISCONNECTED"]}
    assert (event.target_type, event.target_id) == ("Connection", str(row.pk))
    assert event.target_repr == "Anna Lee: Google (DISCONNECTED)"
    assert google(tenant).status == "DISCONNECTED"


@pytest.mark.parametrize("via", INTERFACES)
def test_refresh_connection(wix_sandbox, site, tenant, operator, ways_in, via):
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")
    row = google(tenant)

    if via == "admin":
        assert post_action(ways_in.admin, "refresh", [row]).status_code == 302
    elif via == "api":
        assert ways_in.api.post(f"/api/v1/connections/{row.pk}/refresh/").status_code == 200
    else:
        printed = ways_in.command("connection", "refresh", str(row.pk))
        assert printed == f"{tenant.name}: Anna Lee (Google): refreshed from Wix; status Error.\n"

    event = the_event("refresh_connection")
    assert_event(event, operator=operator, tenant=tenant, via=via)
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.changes == {"status": ["SYNCED", "ERROR"], "errorReason": [None, "TOKEN_REVOKED"]}


@pytest.mark.parametrize("via", INTERFACES)
def test_set_direction(wix_sandbox, site, tenant, operator, ways_in, via):
    row = google(tenant)
    before = row.raw["syncConfig"]

    if via == "admin":
        assert post_action(ways_in.admin, "disable_import", [row]).status_code == 302
    elif via == "api":
        body = SyncConfigSerializer(row).data
        body["import"]["enabled"] = False
        response = ways_in.api.put(
            f"/api/v1/connections/{row.pk}/sync-config/", body, format="json"
        )
        assert response.status_code == 200
    else:
        printed = ways_in.command("connection", "import", "off", str(row.pk))
        assert printed == f"{tenant.name}: Anna Lee (Google): import is now off.\n"

    after = wix_sandbox.connection_json(site.id, site.anna_google)["syncConfig"]
    assert after["listEventFromCalendars"]["enabled"] is False
    event = the_event("set_sync_config")
    assert_event(event, operator=operator, tenant=tenant, via=via)
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.changes == {"syncConfig": [before, after]}
    assert event.parameters == {"syncConfig": after}


@pytest.mark.parametrize("via", INTERFACES)
def test_reconnect_link(wix_sandbox, tenant, operator, ways_in, via):
    broken = microsoft(tenant)

    if via == "admin":
        response = post_action(ways_in.admin, "reconnect_link", [broken])
        assert "send this link to the calendar owner" in messages_of(response)[0]
    elif via == "api":
        # The API's way to a link for a broken connection: connect its schedule again.
        body = {"tenant": tenant.pk, "schedule": broken.schedule_id, "provider": broken.provider_id}
        assert ways_in.api.post("/api/v1/connect/oauth/", body).status_code == 201
    else:
        printed = ways_in.command(
            "connection", "reconnect-link", str(broken.pk), "--base-url", "https://portal.test"
        )
        assert printed == f"{ConnectRequest.objects.get().oauth_url}\n"

    request = ConnectRequest.objects.get()
    assert (request.schedule_id, request.provider_id) == (broken.schedule_id, broken.provider_id)
    event = the_event("start_oauth_connect")
    assert_event(event, operator=operator, tenant=tenant, via=via)
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.changes == {"status": [None, "pending"]}
    assert (event.target_type, event.target_id) == ("ConnectRequest", str(request.pk))
    expected = {"schedule": broken.schedule.wix_id, "provider": broken.provider.wix_id}
    assert {k: event.parameters[k] for k in expected} == expected
    if via != "api":
        assert event.parameters["connection"] == broken.wix_id


def test_the_command_builds_the_return_url_on_the_base_url(wix_sandbox, tenant, ways_in):
    ways_in.command(
        "connection", "reconnect-link", str(microsoft(tenant).pk), "--base-url", "https://p.test/"
    )

    consent = wix_sandbox.consents[next(iter(wix_sandbox.consents))]
    assert consent.redirect_url.startswith("https://p.test/connect/return/")


@pytest.mark.parametrize("via", ["admin", "api"])
def test_credentials_connect(wix_sandbox, tenant, operator, ways_in, via):
    schedule = Schedule.objects.get(tenant=tenant, name="Ben Okafor")
    ical = Provider.objects.get(tenant=tenant, calendar_type="I_CAL")
    body = {"schedule": schedule.pk, "provider": ical.pk, "email": "ben@icloud.test"}

    if via == "admin":
        response = ways_in.admin.post(
            reverse("admin:tenants_tenant_connect", args=[tenant.pk]),
            {**body, "method": "CREDENTIALS", "step": "credentials", "password": CALENDAR_PASSWORD},
        )
        assert response.status_code == 302
    else:
        response = ways_in.api.post(
            "/api/v1/connect/credentials/",
            {**body, "tenant": tenant.pk, "password": CALENDAR_PASSWORD},
        )
        assert response.status_code == 201

    row = Connection.objects.get(tenant=tenant, external_account_email="ben@icloud.test")
    event = the_event("connect_with_credentials")
    assert_event(event, operator=operator, tenant=tenant, via=via)
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert (event.target_type, event.target_id) == ("Connection", str(row.pk))
    assert event.changes == {
        "status": [None, "CONNECTED"],
        "syncConfig": [None, row.raw["syncConfig"]],
        "externalAccountEmail": [None, "ben@icloud.test"],
    }
    assert event.parameters == {
        "schedule": schedule.wix_id,
        "provider": ical.wix_id,
        "email": "ben@icloud.test",
    }
    assert CALENDAR_PASSWORD not in repr(list(AuditEvent.objects.values()))


# --- A tenant's refresh ---------------------------------------------------------------------


@pytest.mark.parametrize("via", INTERFACES)
def test_queue_refresh(tenant, operator, ways_in, via, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as sent:
        if via == "admin":
            response = ways_in.admin.post(
                reverse("admin:tenants_tenant_changelist"),
                {"action": "refresh_now", "_selected_action": [tenant.pk]},
            )
            assert response.status_code == 302
        elif via == "api":
            assert ways_in.api.post(f"/api/v1/tenants/{tenant.pk}/refresh/").status_code == 202
        else:
            printed = ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--queue")
            assert (
                printed
                == f"{tenant.name} (tenant {tenant.pk}): queued, job {Job.objects.get().pk}.\n"
            )

    assert len(sent) == 1  # the task, once the Job is committed
    event = the_event("queue_refresh")
    assert_event(event, operator=operator, tenant=tenant, via=via, outcome="queued")
    # Nothing asked Wix yet: the worker will.
    assert (event.wix_request_id, event.changes) == ("", {})
    assert event.parameters == {"job": str(Job.objects.get().pk), "trigger": via}


def test_queueing_twice_is_refused_and_says_why(tenant, ways_in):
    ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--queue")

    with pytest.raises(CommandError, match=r"^1 of 1 tenants were not queued\.$"):
        ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--queue")
    response = ways_in.admin.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "refresh_now", "_selected_action": [tenant.pk]},
    )

    assert messages_of(response) == [f"A refresh of {tenant.name} is already running or queued."]
    assert AuditEvent.objects.filter(action="queue_refresh").count() == 1


def test_an_inactive_tenant_is_not_queued_through_the_api(tenant, ways_in):
    tenant.is_active = False
    tenant.save()

    response = ways_in.api.post(f"/api/v1/tenants/{tenant.pk}/refresh/")

    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"{tenant.name} is inactive: its refreshes are off."
    )
    assert not Job.objects.exists()


def test_the_inline_refresh_command_audits_each_tenant_in_its_runs_transaction(
    wix_sandbox, site, tenant, operator, ways_in
):
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")

    ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--workers", "1")

    run = RefreshRun.objects.for_tenant(tenant).get(trigger="command")
    event = the_event("refresh_tenant")
    assert_event(event, operator=operator, tenant=tenant, via="command")
    assert (event.target_type, event.target_id) == ("RefreshRun", str(run.pk))
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.parameters == {"trigger": "command"}
    assert event.message == "0 new, 1 changed, 0 removed, 1 unchanged"


def test_an_unchanged_refresh_from_the_command_is_audited_too(wix_sandbox, tenant, ways_in):
    # The site's answers are those the fixture's refresh saw: the run is one INSERT.
    ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--workers", "1")
    ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--workers", "1")

    runs = list(RefreshRun.objects.for_tenant(tenant).filter(trigger="command"))
    events = AuditEvent.objects.filter(action="refresh_tenant").order_by("id")
    assert [e.target_id for e in events] == [str(r.pk) for r in reversed(runs)]
    assert events.last().wix_request_id == last_request_id(wix_sandbox)


def test_a_failed_refresh_from_the_command_is_audited_as_failed(wix_sandbox, site, tenant, ways_in):
    wix_sandbox.faults(site.id).server_error(times=100, status=500)

    with pytest.raises(CommandError, match="1 of 1 tenants failed to refresh"):
        ways_in.command("refresh_connections", "--tenant", str(tenant.pk), "--workers", "1")

    event = the_event("refresh_tenant")
    assert event.outcome == "failed"
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.message.startswith("INTERNAL: ")


def test_scheduled_refreshes_are_not_audited(tenant):
    tenant_refresh(tenant, trigger="schedule")

    assert not AuditEvent.objects.exists()


# --- Failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("via", INTERFACES)
def test_a_wix_failure_leaves_the_mirror_and_is_audited_with_wix_s_request_id(
    wix_sandbox, site, tenant, operator, ways_in, via
):
    wix_sandbox.faults(site.id).server_error(times=3, status=500)
    row = google(tenant)
    before = (row.raw, row.status, row.fingerprint)

    if via == "admin":
        response = post_action(ways_in.admin, "disconnect", [row], confirm=True)
        assert messages_of(response)[0].startswith(
            f"{tenant.name}: Anna Lee (Google): not disconnected. "
        )
    elif via == "api":
        response = ways_in.api.post(f"/api/v1/connections/{row.pk}/disconnect/")
        assert response.status_code == 503
        assert response.json()["error"]["wix"]["requestId"] == last_request_id(wix_sandbox)
    else:
        with pytest.raises(CommandError) as refused:
            ways_in.command("connection", "disconnect", str(row.pk))
        assert str(refused.value).startswith(
            f"{tenant.name}: Anna Lee (Google): not disconnected. "
        )
        assert "\n" not in str(refused.value)

    after = google(tenant)
    assert (after.raw, after.status, after.fingerprint) == before
    event = the_event("disconnect")
    assert_event(event, operator=operator, tenant=tenant, via=via, outcome="failed")
    assert event.error_code == "INTERNAL"
    assert event.wix_request_id == last_request_id(wix_sandbox)
    assert event.changes == {}


def test_a_refusal_before_wix_is_one_line_from_the_command(tenant, ways_in):
    synced = google(tenant)

    with pytest.raises(CommandError) as refused:
        ways_in.command("connection", "reconnect-link", str(synced.pk), "--base-url", "http://p")

    assert str(refused.value) == (
        f"{tenant.name}: Anna Lee (Google): not broken (Synced); nothing to reconnect."
    )
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("disconnect", "999999"), "No connection 999999."),
        (("disconnect", "anna"), "No connection anna: give its id in the portal."),
        (("import", "sideways", "1"), "argument switch: invalid choice: 'sideways'"),
        (("reconnect-link", "1", "--base-url", "portal.test"), "expected the portal's address"),
    ],
)
def test_bad_input_to_the_command_is_one_line(tenant, ways_in, args, message):
    with pytest.raises(CommandError, match=message):
        ways_in.command("connection", *args)


def test_an_unknown_acting_user_is_refused(mirrored):
    with pytest.raises(CommandError, match="No active user 'ghost'"):
        call_command("connection", "refresh", str(google(mirrored).pk), "--user", "ghost")

    assert not AuditEvent.objects.exists()


# --- One transaction -------------------------------------------------------------------------


def test_the_audit_row_is_announced_once_its_transaction_commits(
    wix_sandbox, site, tenant, operator, django_capture_on_commit_callbacks
):
    seen: list[tuple[str, str]] = []

    def receiver(sender, event, **kwargs):
        # Sent after the commit: the mirror shows what the event says.
        seen.append((event.action, Connection.objects.get(pk=event.target_id).status))

    audit.recorded.connect(receiver, dispatch_uid="test-audit-trail")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            connection_disconnect(google(tenant), user=operator, via=Via.API)
            assert seen == []
        assert seen == [("disconnect", "DISCONNECTED")]

        wix_sandbox.set_connection_error(site.id, site.ben_microsoft, "EXTERNAL_CALENDAR_DELETED")
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            connection_refresh(microsoft(tenant), user=operator, via=Via.API)
            raise RuntimeError("the caller's transaction fails")
    finally:
        audit.recorded.disconnect(dispatch_uid="test-audit-trail")

    # Rolled back together: neither the mirror's change nor its audit row, nor the signal.
    assert seen == [("disconnect", "DISCONNECTED")]
    assert microsoft(tenant).error_reason == "TOKEN_REVOKED"
    assert not AuditEvent.objects.filter(action="refresh_connection").exists()
