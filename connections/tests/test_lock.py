"""The refresh lock: short-lived, renewed while its refresh runs, so a dead holder's expires;
queued refreshes stop counting as pending once their message may be lost."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from connections import tasks
from connections.models import Job, RefreshRun
from connections.selectors import refresh_pending
from connections.services.errors import RefreshInProgress
from connections.services.queue import tenant_refresh_queue
from tenants.models import Via
from tenants.tests.builders import superuser

pytestmark = pytest.mark.django_db


@pytest.fixture
def short_lock(settings):
    """A two-second lock, renewed every 2/3 s while held."""
    settings.REFRESH_LOCK_SECONDS = 2
    return settings.REFRESH_LOCK_SECONDS


def take_as_dead_holder(tenant_id: int, ttl: int) -> None:
    """Take the tenant's lock as a worker killed mid-refresh leaves it: no heartbeat."""
    assert cache.add(tasks._lock_key(tenant_id), "a-killed-worker", timeout=ttl)


def test_a_dead_holders_lock_expires_and_the_refresh_then_runs(
    short_lock, wix_sandbox, site, tenant
):
    take_as_dead_holder(tenant.pk, short_lock)

    refused = tasks.refresh_tenant(tenant.pk)
    time.sleep(short_lock + 0.5)
    resumed = tasks.refresh_tenant(tenant.pk)

    assert refused == {"tenant_id": tenant.pk, "outcome": "skipped", "reason": "already running"}
    assert (resumed["outcome"], resumed["new"]) == ("ok", 2)
    assert list(RefreshRun.objects.values_list("outcome", flat=True)) == ["ok"]


def test_a_held_lock_is_renewed_past_its_ttl_and_released_after(short_lock, tenant):
    with tasks.tenant_lock(tenant.pk) as locked:
        time.sleep(short_lock * 2)
        with tasks.tenant_lock(tenant.pk) as second:
            pass
        assert tasks.refresh_is_running(tenant.pk)

    assert locked
    assert not second
    assert not tasks.refresh_is_running(tenant.pk)


def test_a_lock_taken_over_after_it_expired_is_neither_renewed_nor_released(short_lock, tenant):
    """If the cache lost the lock and another refresh took it, the first leaves it alone."""
    key = tasks._lock_key(tenant.pk)
    with tasks.tenant_lock(tenant.pk):
        cache.set(key, "another-refresh", timeout=short_lock)
        time.sleep(short_lock + 0.5)
        # Not renewed by the first holder's heartbeat: the other's lock expired on time.
        assert cache.get(key) is None
        cache.set(key, "another-refresh", timeout=short_lock)

    assert cache.get(key) == "another-refresh"


def test_heartbeat_stops_renewing_after_the_refresh_time_limit(settings, short_lock, tenant):
    """A refresh hung past its time limit (a pool that cannot kill it) loses its lock."""
    settings.REFRESH_TIME_LIMIT_SECONDS = 1

    with tasks.tenant_lock(tenant.pk):
        time.sleep(short_lock + 1.5)
        assert not tasks.refresh_is_running(tenant.pk)


def test_refresh_is_acknowledged_late_and_requeued_if_its_worker_dies():
    assert tasks.refresh_tenant.acks_late is True
    assert tasks.refresh_tenant.reject_on_worker_lost is True


def test_refresh_has_time_limits_and_the_broker_redelivers_well_within_an_hour():
    from portal.celery import app

    app.finalize()
    limit = settings.REFRESH_TIME_LIMIT_SECONDS
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    longest_retry_wait = min(4 * settings.REFRESH_RETRY_BACKOFF_SECONDS, 600)

    assert (tasks.refresh_tenant.soft_time_limit, tasks.refresh_tenant.time_limit) == (
        limit - 30,
        limit,
    )
    assert limit + longest_retry_wait < visibility <= 15 * 60
    # A dead holder's lock is gone long before the broker hands its refresh out again.
    assert settings.REFRESH_LOCK_SECONDS <= 60


def test_a_queued_refresh_whose_message_was_lost_stops_blocking(tenant, settings):
    """A Job whose task never reported (its message died with Redis) counts as pending
    for REFRESH_PENDING_SECONDS, then another refresh may be queued."""
    user = superuser()
    lost = Job.objects.create(tenant=tenant, kind="refresh", created_by=user, task_id="lost-1")

    with pytest.raises(RefreshInProgress):
        tenant_refresh_queue(tenant, user=user, via=Via.API)
    Job.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.REFRESH_PENDING_SECONDS + 1)
    )

    assert not refresh_pending(tenant)
    assert tenant_refresh_queue(tenant, user=user, via=Via.API).pk != lost.pk


def test_pending_outlasts_the_lock():
    """A refresh waiting in the queue behind others is still pending after a lock's TTL."""
    assert settings.REFRESH_PENDING_SECONDS > settings.REFRESH_LOCK_SECONDS
