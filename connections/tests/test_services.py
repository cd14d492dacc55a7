"""tenant_refresh against the sandbox: what the mirror shows, what it records, what it keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from connections.mirror import SEEN_RESOLUTION
from connections.models import (
    ChangeKind,
    Connection,
    ConnectionChange,
    Provider,
    RefreshOutcome,
    RefreshRun,
    Schedule,
)
from connections.services.refresh import mirror_connections, tenant_refresh
from tenants.tests.factories import TenantFactory
from wixapi import types as wix

pytestmark = pytest.mark.django_db


def snapshot():
    """Every mirrored connection row as the admin and API would read it."""
    return sorted(
        Connection.objects.values_list(
            "wix_id", "status", "error_reason", "removed_at", "raw", "last_seen_at"
        ),
        key=repr,
    )


def test_first_refresh_mirrors_providers_schedules_and_connections(site, tenant):
    run = tenant_refresh(tenant)

    assert (run.outcome, run.new_count, run.changed_count, run.removed_count) == ("ok", 2, 0, 0)
    assert run.wix_calls == 3
    assert run.finished_at is not None
    anna = Connection.objects.get(wix_id=site.anna_google)
    assert anna.schedule.label == "Anna Lee"
    assert anna.provider.calendar_type == "GOOGLE"
    assert (anna.status, anna.external_account_email) == ("SYNCED", "anna@example.com")
    assert anna.import_enabled and anna.import_mode == "PRIMARY"
    assert Provider.objects.for_tenant(tenant).count() == 3
    assert Schedule.objects.for_tenant(tenant).count() == 2
    assert list(ConnectionChange.objects.values_list("kind", flat=True)) == ["appeared"] * 2


def test_unchanged_refresh_writes_no_mirrored_row(site, tenant):
    tenant_refresh(tenant)
    before = snapshot()

    run = tenant_refresh(tenant)

    assert (run.new_count, run.changed_count, run.unchanged_count) == (0, 0, 2)
    assert snapshot() == before
    assert ConnectionChange.objects.count() == 2


def test_status_change_is_recorded_once_with_old_and_new(wix_sandbox, site, tenant):
    tenant_refresh(tenant)
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")

    run = tenant_refresh(tenant)
    tenant_refresh(tenant)

    anna = Connection.objects.get(wix_id=site.anna_google)
    assert (anna.status, anna.error_reason) == ("ERROR", "TOKEN_REVOKED")
    assert run.changed_count == 1
    changes = list(
        anna.changes.filter(kind=ChangeKind.CHANGED).values_list("field", "old_value", "new_value")
    )
    assert sorted(changes) == [("error_reason", "", "TOKEN_REVOKED"), ("status", "SYNCED", "ERROR")]
    assert anna.status_changed_at >= run.started_at


def test_sync_config_change_is_recorded(wix_sandbox, site, tenant):
    tenant_refresh(tenant)
    wix_sandbox.set_sync_config(
        site.id,
        site.anna_google,
        {"listEventFromCalendars": {"enabled": False}, "syncToCalendar": {"enabled": False}},
    )

    tenant_refresh(tenant)

    change = ConnectionChange.objects.get(field="sync_config")
    assert change.old_value["listEventFromCalendars"]["enabled"] is True
    assert change.new_value == {
        "listEventFromCalendars": {"enabled": False},
        "syncToCalendar": {"enabled": False},
    }
    assert not Connection.objects.get(wix_id=site.anna_google).import_enabled


def test_gone_from_wix_is_marked_removed_not_deleted_and_comes_back(wix_sandbox, site, tenant):
    tenant_refresh(tenant)
    saved = wix_sandbox.connection_json(site.id, site.ben_microsoft)
    wix_sandbox.remove_connection(site.id, site.ben_microsoft)

    run = tenant_refresh(tenant)

    ben = Connection.objects.get(wix_id=site.ben_microsoft)
    assert run.removed_count == 1
    assert ben.removed_at is not None
    assert ben.raw == saved
    assert Connection.objects.present().count() == 1


def test_reappearing_connection_is_unmarked(wix_sandbox, site, tenant):
    tenant_refresh(tenant)
    # Wix leaves Ben out of one listing (an outage), then lists him again.
    ben = wix_sandbox.remove_connection(site.id, site.ben_microsoft)
    assert tenant_refresh(tenant).removed_count == 1
    wix_sandbox.restore_connection(site.id, ben)

    run = tenant_refresh(tenant)

    assert Connection.objects.get(wix_id=site.ben_microsoft).removed_at is None
    assert run.changed_count == 1
    assert ConnectionChange.objects.filter(kind=ChangeKind.REAPPEARED).count() == 1


def test_partial_listing_marks_nothing_removed(wix_sandbox, site, tenant):
    tenant_refresh(tenant)
    wix_sandbox.faults(site.id).fail_provider(site.providers["MICROSOFT"])

    run = tenant_refresh(tenant)

    assert run.outcome == RefreshOutcome.PARTIAL
    assert run.failed_provider_ids == [site.providers["MICROSOFT"]]
    assert run.removed_count == 0
    assert Connection.objects.present().count() == 2


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (lambda f: f.server_error(times=5, status=500), "INTERNAL"),
        (lambda f: f.rate_limit(times=5, retry_after=0), "TOO_MANY_REQUESTS"),
        (lambda f: f.malformed_json(times=5), "INVALID_RESPONSE"),
        (lambda f: f.stall(seconds=3, times=5), "UNAVAILABLE"),
    ],
)
def test_failed_refresh_keeps_every_row_and_records_why(wix_sandbox, site, tenant, fault, code):
    tenant_refresh(tenant)
    before = snapshot()
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")
    fault(wix_sandbox.faults(site.id))

    run = tenant_refresh(tenant)

    assert run.outcome == RefreshOutcome.FAILED
    assert run.error_code == code
    assert run.error_message
    assert snapshot() == before
    wix_sandbox.faults(site.id).clear()
    assert tenant_refresh(tenant).outcome == RefreshOutcome.OK
    assert Connection.objects.get(wix_id=site.anna_google).status == "ERROR"


def test_wrong_credentials_fail_the_refresh(wix_sandbox, site):
    tenant = TenantFactory(site_id=site.id, api_key="IST.not-a-real-key-0000")

    run = tenant_refresh(tenant)

    assert (run.outcome, run.error_code) == ("failed", "UNAUTHENTICATED")
    assert run.wix_request_id
    assert "IST.not-a-real-key-0000" not in run.error_message
    assert not Connection.objects.exists()


def test_last_seen_is_kept_to_the_resolution(site, tenant):
    tenant_refresh(tenant)
    # An hour and a minute later, for the mirror and for the refresh that wrote it.
    ago = SEEN_RESOLUTION + timedelta(minutes=1)
    old = timezone.now() - ago
    Connection.objects.update(last_seen_at=old)
    RefreshRun.objects.update(started_at=F("started_at") - ago)

    tenant_refresh(tenant)

    assert all(c.last_seen_at > old for c in Connection.objects.all())
    assert ConnectionChange.objects.count() == 2


def test_same_answers_soon_after_are_trusted_without_comparing(
    site, tenant, django_assert_max_num_queries
):
    tenant_refresh(tenant)

    # The run's INSERT, on condition of the last digest: no read of the mirror.
    with django_assert_max_num_queries(1):
        run = tenant_refresh(tenant)

    assert (run.outcome, run.new_count, run.changed_count, run.unchanged_count) == ("ok", 0, 0, 2)


def test_a_mirror_written_by_an_action_is_compared_again(wix_sandbox, site, tenant):
    tenant_refresh(tenant)
    # An action's answer said Anna was in error; Wix's listing still says she is synced.
    answer = wix.Connection.from_json(
        {**wix_sandbox.connection_json(site.id, site.anna_google), "status": "ERROR"}
    )
    mirror_connections(tenant, [answer])
    assert Connection.objects.get(wix_id=site.anna_google).status == "ERROR"

    run = tenant_refresh(tenant)

    assert run.changed_count == 1
    assert Connection.objects.get(wix_id=site.anna_google).status == "SYNCED"


def test_queries_per_refresh_do_not_grow_with_connections(
    wix_sandbox, site, tenant, django_assert_max_num_queries
):
    tenant_refresh(tenant)
    for n in range(40):
        schedule = wix_sandbox.add_schedule(site.id, name=f"Staff {n}")
        wix_sandbox.add_connection(site.id, schedule_id=schedule, calendar_type="GOOGLE")

    with django_assert_max_num_queries(14):
        first = tenant_refresh(tenant)
    for connection_id in list(wix_sandbox.site(site.id).connections)[:20]:
        wix_sandbox.set_connection_error(site.id, connection_id, "EXTERNAL_CALENDAR_DELETED")
    with django_assert_max_num_queries(14):
        second = tenant_refresh(tenant)

    assert first.new_count == 40
    assert second.changed_count == 20
    assert RefreshRun.objects.count() == 3
