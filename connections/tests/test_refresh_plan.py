"""A refresh's plan, its write, and the run it records, step by step."""

from __future__ import annotations

import dataclasses

import pytest
from django.db import transaction
from django.utils import timezone

from connections import mirror
from connections.models import Connection, ConnectionChange, Provider, RefreshOutcome, RefreshRun
from connections.services.refresh import fetch_listing, tenant_refresh
from tenants.crypto import DecryptionError
from tenants.wix import client_for
from wixapi.errors import WixApiError, WixRateLimited

pytestmark = pytest.mark.django_db


def planned(tenant):
    now = timezone.now()
    listing = fetch_listing(client_for(tenant))
    return mirror.plan_site(listing, mirror.stored_fingerprints(tenant, now=now)), now


def test_an_unchanged_site_plans_nothing_to_write_without_a_query(
    site, tenant, django_assert_num_queries
):
    tenant_refresh(tenant)
    now = timezone.now()
    listing = fetch_listing(client_for(tenant))
    stored = mirror.stored_fingerprints(tenant, now=now)

    with django_assert_num_queries(0):
        plan = mirror.plan_site(listing, stored)

    assert not plan.writes
    assert plan.unchanged == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.providers.unchanged = 0


def test_connections_are_planned_once_their_providers_and_schedules_have_pks(site, tenant):
    plan, now = planned(tenant)

    assert plan.writes
    assert plan.connections is None  # their providers and schedules are new
    with transaction.atomic():
        written = mirror.write_site(plan, tenant, now=now)

    assert written.counts == {"new": 2, "changed": 0, "unchanged": 0, "removed": 0}
    anna = Connection.objects.get(wix_id=site.anna_google)
    assert anna.provider.calendar_type == "GOOGLE"
    assert anna.schedule.label == "Anna Lee"


def test_a_plan_overtaken_by_another_refresh_is_made_again_over_fresh_rows(
    wix_sandbox, site, tenant
):
    plan, now = planned(tenant)  # of an empty mirror: everything is new
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")
    other = tenant_refresh(tenant)  # writes every row while the plan waits

    with transaction.atomic():
        written = mirror.write_site(plan, tenant, now=now)

    # The plan's listing still has Anna synced: one change, nothing inserted twice.
    assert other.new_count == 2
    assert written.counts == {"new": 0, "changed": 1, "unchanged": 1, "removed": 0}
    assert Provider.objects.for_tenant(tenant).count() == 3
    assert Connection.objects.get(wix_id=site.anna_google).status == "SYNCED"


def test_history_names_the_run(site, tenant):
    run = tenant_refresh(tenant)

    assert set(ConnectionChange.objects.values_list("refresh_run", flat=True)) == {run.pk}


def test_a_run_is_started_unsaved_and_finished_partial_when_a_provider_failed(tenant):
    run = RefreshRun.objects.start(tenant, trigger="test")
    assert (run.pk, run.outcome, run.finished_at) == (None, RefreshOutcome.RUNNING, None)

    run.finish(wix_calls=3, failed_provider_ids=("p-1",), unchanged=4, listing_digest="d")
    RefreshRun.objects.record(run)

    run = RefreshRun.objects.get(pk=run.pk)
    assert (run.outcome, run.failed_provider_ids, run.unchanged_count) == ("partial", ["p-1"], 4)
    assert (run.wix_calls, run.listing_digest, run.trigger) == (3, "d", "test")
    assert run.finished_at >= run.started_at


@pytest.mark.parametrize(
    ("exc", "fields"),
    [
        (
            WixRateLimited("Slow down", status=429, request_id="r-1"),
            ("RESOURCE_EXHAUSTED", "Slow down", "r-1", True),
        ),
        (
            WixApiError("Bad request", status=400, code="INVALID_ARGUMENT"),
            ("INVALID_ARGUMENT", "Bad request", "", False),
        ),
        (
            DecryptionError("Tenant.api_key"),
            (
                "CREDENTIALS_UNREADABLE",
                "Credentials unreadable: enter them again. Tenant.api_key",
                "",
                False,
            ),
        ),
        (
            KeyError("secret value"),
            ("INTERNAL_ERROR", "The refresh stopped on an unexpected KeyError.", "", False),
        ),
    ],
)
def test_a_failed_run_records_why_and_compared_nothing(tenant, exc, fields):
    run = RefreshRun.objects.start(tenant, trigger="test")
    run.listing_digest = "stale"

    run.fail(exc, wix_calls=2)

    assert (run.error_code, run.error_message, run.wix_request_id, run.retryable) == fields
    assert (run.outcome, run.listing_digest, run.wix_calls) == ("failed", "", 2)
    assert run.finished_at is not None


def test_the_trusted_digest_is_forgotten(site, tenant):
    tenant_refresh(tenant)
    assert RefreshRun.objects.exclude(listing_digest="").count() == 1

    RefreshRun.objects.forget_digests(tenant)

    assert not RefreshRun.objects.exclude(listing_digest="").exists()
