"""The refresh tasks, run in-process against the sandbox: locking, retries, fan-out, schedule."""

from __future__ import annotations

import importlib
import json

import pytest
from celery.signals import task_prerun
from django.apps import apps
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from connections import tasks
from connections.models import Connection, RefreshPass, RefreshRun
from portal.celery import app as celery_app
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def started():
    """The (task name, args, kwargs) of every task started in this test, in order."""
    seen = []

    def record(sender, task_id, task, args, kwargs, **extra):
        seen.append((task.name, list(args), dict(kwargs)))

    task_prerun.connect(record, weak=False)
    yield seen
    task_prerun.disconnect(record)


def outcomes(tenant):
    return list(
        RefreshRun.objects.for_tenant(tenant).order_by("pk").values_list("outcome", flat=True)
    )


def test_refresh_tenant_mirrors_the_site_and_reports(site, tenant):
    result = tasks.refresh_tenant(tenant.pk)

    run = RefreshRun.objects.get()
    assert result == {
        "tenant_id": tenant.pk,
        "run_id": run.pk,
        "outcome": "ok",
        "new": 2,
        "changed": 0,
        "unchanged": 0,
        "removed": 0,
        "wix_calls": 3,
        "error_code": "",
        "retries": 0,
    }
    assert run.trigger == "schedule"
    assert Connection.objects.for_tenant(tenant).count() == 2
    json.dumps(result)


def test_refresh_tenant_is_idempotent(site, tenant):
    tasks.refresh_tenant(tenant.pk)

    again = tasks.refresh_tenant(tenant.pk)

    assert (again["outcome"], again["new"], again["unchanged"]) == ("ok", 0, 2)
    assert Connection.objects.for_tenant(tenant).count() == 2


def test_refresh_is_skipped_while_one_is_running(wix_sandbox, site, tenant):
    with tasks.tenant_lock(tenant.pk) as locked:
        result = tasks.refresh_tenant.delay(tenant.pk).get()

    assert locked
    assert result == {"tenant_id": tenant.pk, "outcome": "skipped", "reason": "already running"}
    assert not RefreshRun.objects.exists()
    assert wix_sandbox.count_requests(site.id) == 0


def test_lock_is_released_after_a_refresh(site, tenant):
    tasks.refresh_tenant(tenant.pk)

    assert not tasks.refresh_is_running(tenant.pk)
    with tasks.tenant_lock(tenant.pk) as locked:
        assert locked
        assert tasks.refresh_is_running(tenant.pk)


def test_lock_is_released_after_a_failed_refresh(wix_sandbox, site):
    tenant = TenantFactory(site_id=site.id, api_key="IST.not-a-real-key-0000")

    assert tasks.refresh_tenant(tenant.pk)["error_code"] == "UNAUTHENTICATED"

    with tasks.tenant_lock(tenant.pk) as locked:
        assert locked


def test_lock_is_released_only_by_its_holder(site, tenant):
    with tasks.tenant_lock(tenant.pk):
        with tasks.tenant_lock(tenant.pk) as second:
            assert not second
        # The second try ended without taking the lock: it must not have freed the first's.
        assert tasks.refresh_tenant(tenant.pk)["outcome"] == "skipped"


def test_locks_are_per_tenant(wix_sandbox, site, tenant):
    other = TenantFactory()

    with tasks.tenant_lock(other.pk):
        assert tasks.refresh_tenant(tenant.pk)["outcome"] == "ok"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (lambda f: f.rate_limit(times=3, retry_after=0), "TOO_MANY_REQUESTS"),
        (lambda f: f.server_error(times=3, status=503), "UNAVAILABLE"),
    ],
)
def test_in_process_a_failed_refresh_is_reported_not_retried(
    wix_sandbox, site, tenant, fault, code
):
    """Without a broker the caller gets the failed run at once (workers retry: test_worker)."""
    # Three answers exhaust the client's own tries (1 + WIX_MAX_RETRIES) of the first call.
    fault(wix_sandbox.faults(site.id))

    queued = tasks.refresh_tenant.delay(tenant.pk).get()
    wix_sandbox.faults(site.id).rate_limit(times=3, retry_after=0)
    called = tasks.refresh_tenant(tenant.pk)

    assert (queued["outcome"], queued["error_code"], queued["retries"]) == ("failed", code, 0)
    assert (called["outcome"], called["retries"]) == ("failed", 0)
    assert outcomes(tenant) == ["failed", "failed"]
    assert all(run.retryable for run in RefreshRun.objects.filter(tenant=tenant))


@pytest.mark.parametrize(
    ("fault", "retryable"),
    [
        (lambda f: f.rate_limit(times=5, retry_after=0), True),
        (lambda f: f.server_error(times=5, status=503), True),
        (lambda f: f.server_error(times=5, status=500), True),
        (lambda f: f.stall(seconds=3, times=5), True),
        (lambda f: f.server_error(times=5, status=501), False),
        (lambda f: f.malformed_json(times=5), False),
    ],
)
def test_only_busy_or_unavailable_wix_is_worth_a_retry(wix_sandbox, site, tenant, fault, retryable):
    fault(wix_sandbox.faults(site.id))

    tasks.refresh_tenant(tenant.pk)

    assert RefreshRun.objects.get(tenant=tenant).retryable is retryable


def test_refused_credentials_are_not_retried(wix_sandbox, site, tenant):
    tenant.api_key = "IST.revoked-key-000000"
    tenant.save()

    tasks.refresh_tenant(tenant.pk)

    assert RefreshRun.objects.get(tenant=tenant).retryable is False


def test_backoff_doubles_and_is_jittered(settings):
    settings.REFRESH_RETRY_BACKOFF_SECONDS = 30

    for retries, base in enumerate([30, 60, 120]):
        waits = {tasks.backoff_seconds(retries) for _ in range(50)}
        assert all(base / 2 <= wait <= base for wait in waits)
        assert len(waits) > 1


def test_inactive_tenant_is_skipped(wix_sandbox, site, tenant):
    tenant.is_active = False
    tenant.save()

    result = tasks.refresh_tenant(tenant.pk)

    assert result == {"tenant_id": tenant.pk, "outcome": "skipped", "reason": "inactive"}
    assert not RefreshRun.objects.exists()
    assert wix_sandbox.count_requests(site.id) == 0


def test_deleted_tenant_is_skipped(tenant):
    tenant_id = tenant.pk
    tenant.delete()

    result = tasks.refresh_tenant(tenant_id)

    assert result == {"tenant_id": tenant_id, "outcome": "skipped", "reason": "not found"}


def test_refresh_all_queues_one_refresh_per_active_tenant(wix_sandbox, started):
    active = []
    for name in ("Salon Aurora", "Studio Borealis"):
        site = wix_sandbox.add_site(name=name)
        wix_sandbox.add_connection(
            site.id, schedule_id=wix_sandbox.add_schedule(site.id, name="Anna"), status="SYNCED"
        )
        key = wix_sandbox.create_api_key(site.account_id)
        active.append(TenantFactory(site_id=site.id, api_key=key))
    inactive = TenantFactory(is_active=False)

    queued = tasks.refresh_all.delay().get()

    assert queued == 2
    beat_pass = RefreshPass.objects.get()
    assert started[1:] == [
        (
            "connections.tasks.refresh_tenant",
            [t.pk],
            {"trigger": "schedule", "pass_id": beat_pass.pk},
        )
        for t in active
    ]
    for tenant in active:
        assert outcomes(tenant) == ["ok"]
        assert Connection.objects.for_tenant(tenant).count() == 1
    assert outcomes(inactive) == []


def test_no_secret_in_task_arguments_or_results(wix_sandbox, site, tenant, started):
    oauth = TenantFactory(oauth=True)

    results = [tasks.refresh_all.delay().get(), tasks.refresh_tenant.delay(oauth.pk).get()]

    assert [args for _, args, _ in started] == [[], [tenant.pk], [oauth.pk], [oauth.pk]]
    text = json.dumps([started, results])
    for secret in (tenant.api_key, oauth.wix_app.app_secret):
        assert secret not in text


def test_beat_refreshes_all_tenants_every_interval():
    migration = importlib.import_module("connections.migrations.0003_refresh_all_schedule")
    # `migrate` runs it; transactional tests (browser, worker) flush what it made, so again.
    assert [op.code for op in migration.Migration.operations] == [migration.create_schedule]
    migration.create_schedule(apps, None)

    task = PeriodicTask.objects.get(name="Refresh all tenants")

    assert task.task == "connections.tasks.refresh_all"
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (
        settings.REFRESH_INTERVAL_MINUTES,
        "minutes",
    )
    assert task.task in celery_app.tasks


def test_beat_schedule_migration_is_reversible():
    migration = importlib.import_module("connections.migrations.0003_refresh_all_schedule")

    migration.delete_schedule(apps, None)
    assert not PeriodicTask.objects.filter(name="Refresh all tenants").exists()

    migration.create_schedule(apps, None)
    migration.create_schedule(apps, None)
    assert PeriodicTask.objects.filter(name="Refresh all tenants").count() == 1
