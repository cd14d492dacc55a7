"""Refresh passes: beat's `refresh_all` (and `refresh_connections --all`) refresh every active
tenant once as a pass, which closes when its last tenant is done, or at its deadline, not
completed. Tasks run in process against the sandbox."""

from __future__ import annotations

import importlib
import io
import uuid
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from celery.signals import task_postrun
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from connections import selectors, tasks
from connections.models import RefreshPass, RefreshRun, RefreshTrigger
from connections.services import passes
from connections.services.refresh import tenant_refresh
from connections.tests.builders import add_site
from tenants.tests.builders import sandbox_tenant
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

REDIS_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # The discard port is closed on loopback: a Redis that is down.
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


def add_tenant(sandbox, name: str):
    """A tenant (not refreshed) of a new site where Anna Lee is on Google; `tenant.site`."""
    site = add_site(sandbox, name, [{"name": "Anna Lee", "calendar_type": "GOOGLE"}])
    tenant = sandbox_tenant(sandbox, site)
    tenant.site = site
    return tenant


@pytest.fixture
def three_tenants(wix_sandbox):
    return [add_tenant(wix_sandbox, name) for name in ("Aurora", "Borealis", "Cirrus")]


@pytest.fixture
def after_each_refresh():
    """The pass's (done, closed) after each `refresh_tenant` task ended, in order."""
    seen = []

    def record(sender, task, kwargs, **extra):
        if task.name == "connections.tasks.refresh_tenant":
            refresh_pass = RefreshPass.objects.get(pk=kwargs["pass_id"])
            seen.append((refresh_pass.done, refresh_pass.closed_at is not None))

    task_postrun.connect(record, weak=False)
    yield seen
    task_postrun.disconnect(record)


def as_worker(task, *args, retries: int = 0, **kwargs):
    """Run `task` as a worker runs a delivered message (not eagerly), so it may retry.

    Its retry is queued with `apply_async`, which without a broker runs it in process at
    once (eagerly, so that attempt does not retry again): a real Celery retry, only sooner.
    """
    task.push_request(
        id=str(uuid.uuid4()),
        args=list(args),
        kwargs=kwargs,
        retries=retries,
        is_eager=False,
        called_directly=False,
    )
    try:
        return task.run(*args, **kwargs)
    finally:
        task.pop_request()


def test_a_beat_pass_closes_completed_when_its_last_tenant_is_done(
    three_tenants, after_each_refresh
):
    TenantFactory(is_active=False)

    assert tasks.refresh_all.delay().get() == 3

    refresh_pass = RefreshPass.objects.get()
    assert after_each_refresh == [(1, False), (2, False), (3, True)]
    assert (refresh_pass.expected, refresh_pass.done, refresh_pass.completed) == (3, 3, True)
    assert refresh_pass.trigger == RefreshTrigger.SCHEDULE
    assert refresh_pass.started_at <= refresh_pass.closed_at < refresh_pass.deadline_at
    assert refresh_pass.deadline_at - refresh_pass.started_at == timedelta(minutes=15)
    runs = RefreshRun.objects.order_by("tenant_id")
    assert [(run.tenant_id, run.outcome, run.refresh_pass_id) for run in runs] == [
        (tenant.pk, "ok", refresh_pass.pk) for tenant in three_tenants
    ]
    assert selectors.last_completed_pass() == refresh_pass


def test_the_deadline_follows_the_refresh_interval(settings, three_tenants):
    settings.REFRESH_INTERVAL_MINUTES = 5

    tasks.refresh_all()

    refresh_pass = RefreshPass.objects.get()
    assert refresh_pass.deadline_at - refresh_pass.started_at == timedelta(minutes=5)


def test_failed_and_skipped_tenants_are_done_too(wix_sandbox, three_tenants):
    """A refresh that fails for good, a tenant gone or deactivated since it was queued, and
    one whose refresh is already running each end their part of the pass."""
    failing, running, inactive = three_tenants
    failing.api_key = "IST.not-a-real-key-0000"
    failing.save()
    inactive.is_active = False
    inactive.save()
    refresh_pass = passes.pass_start(4, trigger=RefreshTrigger.SCHEDULE)

    results = [tasks.refresh_tenant(failing.pk, pass_id=refresh_pass.pk)]
    with tasks.tenant_lock(running.pk):
        results.append(tasks.refresh_tenant(running.pk, pass_id=refresh_pass.pk))
    results.append(tasks.refresh_tenant(inactive.pk, pass_id=refresh_pass.pk))
    results.append(tasks.refresh_tenant(inactive.pk + 1000, pass_id=refresh_pass.pk))

    assert [r.get("error_code") or r.get("reason") for r in results] == [
        "UNAUTHENTICATED",
        "already running",
        "inactive",
        "not found",
    ]
    refresh_pass.refresh_from_db()
    assert (refresh_pass.done, refresh_pass.completed) == (4, True)
    assert RefreshRun.objects.get().refresh_pass == refresh_pass


def test_a_retried_refresh_counts_once(wix_sandbox, three_tenants):
    """Wix answers 503 (three times: the client's own retries too), the worker retries the
    refresh, the retry succeeds: the tenant is done once, after the retry."""
    flaky, steady, _ = three_tenants
    wix_sandbox.faults(flaky.site.id).server_error(times=3, status=503)
    refresh_pass = passes.pass_start(2, trigger=RefreshTrigger.SCHEDULE)

    with pytest.raises(Retry):
        as_worker(tasks.refresh_tenant, flaky.pk, pass_id=refresh_pass.pk)

    refresh_pass.refresh_from_db()
    assert (refresh_pass.done, refresh_pass.closed_at) == (1, None)
    runs = RefreshRun.objects.filter(refresh_pass=refresh_pass).order_by("pk")
    assert [(run.outcome, run.error_code, run.retryable) for run in runs] == [
        ("failed", "UNAVAILABLE", True),
        ("ok", "", False),
    ]

    tasks.refresh_tenant(steady.pk, pass_id=refresh_pass.pk)

    refresh_pass.refresh_from_db()
    assert (refresh_pass.done, refresh_pass.completed) == (2, True)
    assert refresh_pass.closed_at is not None


def test_a_lock_unavailable_after_the_last_retry_is_done(settings, three_tenants):
    settings.CACHES = REDIS_DOWN
    tenant = three_tenants[0]
    refresh_pass = passes.pass_start(1, trigger=RefreshTrigger.SCHEDULE)

    with pytest.raises(tasks.LockUnavailable):
        as_worker(
            tasks.refresh_tenant, tenant.pk, retries=tasks.MAX_RETRIES, pass_id=refresh_pass.pk
        )

    refresh_pass.refresh_from_db()
    assert (refresh_pass.done, refresh_pass.completed) == (1, True)
    assert not RefreshRun.objects.exists()


def test_an_overdue_pass_closes_incomplete_and_is_not_last_completed(three_tenants):
    started = timezone.now() - timedelta(minutes=20)
    earlier = passes.pass_start(1, trigger=RefreshTrigger.SCHEDULE, now=started)
    passes.pass_tenant_done(earlier.pk)
    stuck = passes.pass_start(3, trigger=RefreshTrigger.SCHEDULE, now=started)
    tasks.refresh_tenant(three_tenants[0].pk, pass_id=stuck.pk)
    current = passes.pass_start(3, trigger=RefreshTrigger.SCHEDULE)

    assert tasks.passes_close_overdue() == 1

    stuck.refresh_from_db()
    current.refresh_from_db()
    assert (stuck.done, stuck.completed) == (1, False)
    assert stuck.closed_at is not None
    assert current.closed_at is None
    assert selectors.last_completed_pass() == earlier
    # A tenant that finishes late is counted, and the pass stays not completed.
    tasks.refresh_tenant(three_tenants[1].pk, pass_id=stuck.pk)
    tasks.refresh_tenant(three_tenants[2].pk, pass_id=stuck.pk)
    stuck.refresh_from_db()
    assert (stuck.done, stuck.completed) == (3, False)
    assert selectors.last_completed_pass() == earlier
    assert tasks.passes_close_overdue() == 0


def test_no_pass_ever_completed():
    passes.pass_start(2, trigger=RefreshTrigger.SCHEDULE)

    assert selectors.last_completed_pass() is None


def test_the_newest_completed_pass_is_the_last_one_closed():
    long_ago = timezone.now() - timedelta(hours=1)
    slow = passes.pass_start(1, trigger=RefreshTrigger.SCHEDULE, now=long_ago)
    later = long_ago + timedelta(minutes=1)
    fast = passes.pass_start(1, trigger=RefreshTrigger.SCHEDULE, now=later)
    passes.pass_tenant_done(fast.pk)
    passes.pass_tenant_done(slow.pk)

    assert selectors.last_completed_pass() == slow


def test_a_pass_without_tenants_completes_at_once():
    assert tasks.refresh_all() == 0

    refresh_pass = RefreshPass.objects.get()
    assert (refresh_pass.expected, refresh_pass.done, refresh_pass.completed) == (0, 0, True)
    assert refresh_pass.closed_at == refresh_pass.started_at


def test_closing_a_closed_pass_changes_nothing():
    refresh_pass = passes.pass_start(1, trigger=RefreshTrigger.SCHEDULE)
    passes.pass_tenant_done(refresh_pass.pk)
    refresh_pass.refresh_from_db()
    closed_at = refresh_pass.closed_at

    assert passes.pass_close(refresh_pass) is False
    assert refresh_pass.closed_at == closed_at
    assert refresh_pass.completed


def test_a_missing_pass_is_logged_not_raised(caplog):
    passes.pass_tenant_done(12345)

    assert "Refresh pass 12345 not found" in caplog.text


def test_counting_a_tenant_done_is_one_statement():
    refresh_pass = passes.pass_start(2, trigger=RefreshTrigger.SCHEDULE)

    with CaptureQueriesContext(connection) as queries:
        passes.pass_tenant_done(refresh_pass.pk)

    assert len(queries) == 1
    assert queries[0]["sql"].startswith("UPDATE")


def test_the_pass_rides_on_the_run_insert(wix_sandbox, three_tenants):
    """An unchanged site's refresh in a pass costs what it costs without one."""
    tenant = three_tenants[0]
    tenant_refresh(tenant)
    refresh_pass = passes.pass_start(2, trigger=RefreshTrigger.SCHEDULE)

    with CaptureQueriesContext(connection) as alone:
        tenant_refresh(tenant)
    with CaptureQueriesContext(connection) as in_pass:
        tenant_refresh(tenant, refresh_pass_id=refresh_pass.pk)

    assert len(in_pass) == len(alone) == 1
    assert RefreshRun.objects.order_by("-pk").first().refresh_pass == refresh_pass


def test_refresh_connections_all_is_one_pass(three_tenants):
    call_command("refresh_connections", "--all", "--workers", "1", stdout=io.StringIO())

    refresh_pass = RefreshPass.objects.get()
    assert (refresh_pass.trigger, refresh_pass.expected, refresh_pass.done) == ("command", 3, 3)
    assert refresh_pass.completed
    assert set(RefreshRun.objects.values_list("refresh_pass", flat=True)) == {refresh_pass.pk}


def test_refresh_connections_of_named_tenants_is_no_pass(three_tenants):
    call_command("refresh_connections", "--tenant", str(three_tenants[0].pk), stdout=io.StringIO())

    assert not RefreshPass.objects.exists()
    assert RefreshRun.objects.get().refresh_pass is None


def test_beat_closes_overdue_passes_every_minute():
    migration = importlib.import_module("connections.migrations.0013_close_overdue_passes_schedule")
    # `migrate` runs it; transactional tests flush what it made, so again.
    migration.create_schedule(apps, None)

    task = PeriodicTask.objects.get(name="Close overdue refresh passes")

    assert task.task == "connections.tasks.passes_close_overdue"
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (1, "minutes")


def test_the_overdue_schedule_migration_is_reversible():
    migration = importlib.import_module("connections.migrations.0013_close_overdue_passes_schedule")

    migration.delete_schedule(apps, None)
    assert not PeriodicTask.objects.filter(name="Close overdue refresh passes").exists()

    migration.create_schedule(apps, None)
    migration.create_schedule(apps, None)
    assert PeriodicTask.objects.filter(name="Close overdue refresh passes").count() == 1
