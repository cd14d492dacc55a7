"""Refreshes through a real Celery worker on Redis, against PostgreSQL, and at the same moment.

The worker runs in a thread of this process (two pool threads), so it reaches the test's
sandbox and database; `transaction=True` commits the test's rows where it can see them.
"""

from __future__ import annotations

import json
import threading

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from django_celery_results.models import TaskResult

from connections import tasks
from connections.models import ChangeKind, Connection, ConnectionChange, RefreshPass, RefreshRun
from connections.services.refresh import tenant_refresh
from portal.celery import app as celery_app
from tenants.models import Tenant
from tenants.tests.builders import wait_until
from tenants.tests.factories import TenantFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL, reason="needs a broker: set CELERY_BROKER_URL (Redis)"
    ),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite's in-memory test "
        "database cannot be shared with worker threads",
    ),
]

TIMEOUT = 15


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """A worker consuming the broker's queue with two threads, started once for the module."""
    hijack = celery_app.conf.worker_hijack_root_logger
    celery_app.conf.worker_hijack_root_logger = False
    with django_db_blocker.unblock():
        # Messages left by an earlier, interrupted run would refer to other databases' ids.
        celery_app.control.purge()
        with start_worker(
            celery_app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=TIMEOUT,
        ) as started:
            yield started
    celery_app.conf.worker_hijack_root_logger = hijack


@pytest.fixture
def fast_retries(settings):
    settings.REFRESH_RETRY_BACKOFF_SECONDS = 0.1


def changes(tenant, kind, field=""):
    return list(
        ConnectionChange.objects.for_tenant(tenant)
        .filter(kind=kind, field=field)
        .values_list("connection__wix_id", "old_value", "new_value")
    )


def test_refresh_all_queues_refreshes_the_worker_runs(worker, wix_sandbox, site, tenant):
    TenantFactory(is_active=False)

    assert tasks.refresh_all.delay().get(timeout=TIMEOUT) == 1

    refreshes = TaskResult.objects.filter(task_name="connections.tasks.refresh_tenant")
    wait_until(lambda: refreshes.filter(status="SUCCESS").exists(), timeout=TIMEOUT)
    stored = refreshes.get()
    # django-celery-results keeps the arguments' repr: the id alone, no credentials.
    beat_pass = RefreshPass.objects.get()
    assert (stored.task_args, stored.task_kwargs) == (
        f'"({tenant.pk},)"',
        f"\"{{'trigger': 'schedule', 'pass_id': {beat_pass.pk}}}\"",
    )
    summary = json.loads(stored.result)
    assert (summary["outcome"], summary["new"], summary["retries"]) == ("ok", 2, 0)
    assert tenant.api_key not in stored.result
    assert list(RefreshRun.objects.values_list("tenant_id", "outcome")) == [(tenant.pk, "ok")]
    assert set(Connection.objects.for_tenant(tenant).values_list("wix_id", flat=True)) == {
        site.anna_google,
        site.ben_microsoft,
    }


def test_rate_limited_or_unavailable_refresh_is_retried_until_ok(
    worker, fast_retries, wix_sandbox, site, tenant
):
    # Three answers exhaust the client's own tries (1 + WIX_MAX_RETRIES) of the first call.
    wix_sandbox.faults(site.id).rate_limit(times=3, retry_after=0).server_error(times=3, status=503)

    summary = tasks.refresh_tenant.delay(tenant.pk).get(timeout=TIMEOUT)

    assert (summary["outcome"], summary["new"], summary["retries"]) == ("ok", 2, 2)
    runs = list(RefreshRun.objects.order_by("pk").values_list("outcome", "error_code"))
    assert runs == [("failed", "TOO_MANY_REQUESTS"), ("failed", "UNAVAILABLE"), ("ok", "")]


def test_retries_stop_after_three(worker, fast_retries, wix_sandbox, site, tenant):
    wix_sandbox.faults(site.id).rate_limit(times=1000, retry_after=0)

    summary = tasks.refresh_tenant.delay(tenant.pk).get(timeout=TIMEOUT)

    assert (summary["outcome"], summary["error_code"], summary["retries"]) == (
        "failed",
        "TOO_MANY_REQUESTS",
        3,
    )
    assert list(RefreshRun.objects.values_list("outcome", flat=True)) == ["failed"] * 4
    assert not Connection.objects.exists()


def test_two_queued_refreshes_of_one_tenant_do_not_overlap(worker, wix_sandbox, site, tenant):
    tasks.refresh_tenant.delay(tenant.pk).get(timeout=TIMEOUT)
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")
    # Slow Wix keeps the first refresh running while the second starts.
    wix_sandbox.faults(site.id).latency(0.3)

    pending = [tasks.refresh_tenant.delay(tenant.pk), tasks.refresh_tenant.delay(tenant.pk)]
    summaries = [result.get(timeout=TIMEOUT) for result in pending]

    assert sorted(s["outcome"] for s in summaries) == ["ok", "skipped"]
    ran = next(s for s in summaries if s["outcome"] == "ok")
    assert (ran["changed"], ran["unchanged"]) == (1, 1)
    assert RefreshRun.objects.count() == 2
    assert Connection.objects.count() == 2
    assert changes(tenant, ChangeKind.CHANGED, "status") == [(site.anna_google, "SYNCED", "ERROR")]
    assert len(changes(tenant, ChangeKind.APPEARED)) == 2


def test_two_refreshes_at_once_leave_no_duplicate_and_no_lost_update(wix_sandbox, site, tenant):
    """Past the task's lock (e.g. the refresh command), the database lock serialises writes."""
    wix_sandbox.faults(site.id).latency(0.05)

    first = refresh_twice_at_once(tenant)
    wix_sandbox.set_connection_error(site.id, site.anna_google, "TOKEN_REVOKED")
    second = refresh_twice_at_once(tenant)
    wix_sandbox.remove_connection(site.id, site.ben_microsoft)
    third = refresh_twice_at_once(tenant)

    assert [run.outcome for run in first + second + third] == ["ok"] * 6
    assert sorted(run.new_count for run in first) == [0, 2]
    assert sorted(run.changed_count for run in second) == [0, 1]
    assert sorted(run.removed_count for run in third) == [0, 1]
    assert Connection.objects.count() == 2
    assert len(changes(tenant, ChangeKind.APPEARED)) == 2
    assert changes(tenant, ChangeKind.CHANGED, "status") == [(site.anna_google, "SYNCED", "ERROR")]
    assert changes(tenant, ChangeKind.CHANGED, "error_reason") == [
        (site.anna_google, "", "TOKEN_REVOKED")
    ]
    assert changes(tenant, ChangeKind.REMOVED) == [(site.ben_microsoft, "SYNCED", None)]
    anna = Connection.objects.get(wix_id=site.anna_google)
    assert (anna.status, anna.error_reason, anna.removed_at) == ("ERROR", "TOKEN_REVOKED", None)
    assert Connection.objects.get(wix_id=site.ben_microsoft).removed_at is not None


def refresh_twice_at_once(tenant: Tenant) -> list[RefreshRun]:
    """Run tenant_refresh from two threads released together; return both runs."""
    barrier = threading.Barrier(2)
    runs: list[RefreshRun] = []
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            fresh = Tenant.objects.get(pk=tenant.pk)
            barrier.wait(timeout=TIMEOUT)
            runs.append(tenant_refresh(fresh, trigger="test"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors, errors
    return runs
