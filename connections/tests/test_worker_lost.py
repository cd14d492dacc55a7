"""A worker killed mid-refresh (SIGKILL) loses neither the refresh nor, for long, the tenant.

Real `celery worker` processes against a Redis of the test's own (so their short visibility
timeout cannot hand out other tests' messages) and the test's PostgreSQL database. The
first is killed while it holds the tenant's lock; a second gets the unacknowledged message
once the visibility timeout has passed, finds the dead worker's lock expired, and refreshes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from django_celery_results.models import TaskResult

from connections import tasks
from connections.models import Connection, RefreshRun
from portal.celery import app as celery_app
from tenants.tests.builders import wait_until

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): worker processes share the "
        "test database",
    ),
]

LOCK_SECONDS = 2
TIMEOUT = 30
QUEUE = "worker-lost"


@pytest.fixture
def start_worker(worker_processes, wix_sandbox) -> Callable[..., subprocess.Popen]:
    """Start a `celery worker` on QUEUE, reaching the test's sandbox; `overrides` go to its
    environment."""
    environment = {
        "WIX_API_BASE_URL": wix_sandbox.url,
        "REFRESH_LOCK_SECONDS": str(LOCK_SECONDS),
        "WIX_SITE_REQUESTS_PER_MINUTE": "0",
    }
    return lambda **overrides: worker_processes(QUEUE, env={**environment, **overrides})


def test_a_refresh_whose_worker_was_killed_is_redelivered_and_runs(
    redis_server, start_worker, wix_sandbox, site, tenant
):
    # Slow Wix keeps the first worker in the middle of the refresh.
    wix_sandbox.faults(site.id).latency(1.0)
    cache = redis.Redis(port=redis_server.port, db=1)
    with celery_app.connection_for_write(f"redis://127.0.0.1:{redis_server.port}/0") as conn:
        sent = tasks.refresh_tenant.apply_async((tenant.pk,), connection=conn, queue=QUEUE)

    first = start_worker()
    wait_until(lambda: cache.keys("*refresh-tenant-lock*"))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = time.monotonic()
    assert not RefreshRun.objects.exists()

    start_worker()
    wait_until(lambda: TaskResult.objects.filter(task_id=sent.id, status="SUCCESS").exists())

    # Back after the visibility timeout, not Redis's default hour.
    assert time.monotonic() - killed_at < TIMEOUT
    assert list(RefreshRun.objects.values_list("outcome", flat=True)) == ["ok"]
    assert Connection.objects.for_tenant(tenant).count() == 2
    assert not cache.keys("*refresh-tenant-lock*")


def test_a_refresh_that_cannot_take_the_lock_is_retried_then_fails_without_running(
    redis_server, start_worker, wix_sandbox, site, tenant
):
    with celery_app.connection_for_write(f"redis://127.0.0.1:{redis_server.port}/0") as conn:
        sent = tasks.refresh_tenant.apply_async((tenant.pk,), connection=conn, queue=QUEUE)

    # The worker's cache is a Redis that is down; its broker works.
    worker = start_worker(
        CACHE_URL="rediscache://127.0.0.1:9/1", REFRESH_RETRY_BACKOFF_SECONDS="0.1"
    )
    wait_until(lambda: TaskResult.objects.filter(task_id=sent.id, status="FAILURE").exists())

    refusals = [
        line.split(" not run: ", 1)[1]
        for line in worker.log_path.read_text().splitlines()
        if f"Refresh of tenant {tenant.pk} not run: " in line
    ]
    # Three retries, then the failure; each says why.
    assert len(refusals) == 4
    assert [f"; retry {n} in " in refusal for n, refusal in enumerate(refusals, 1)] == [
        True,
        True,
        True,
        False,
    ]
    lock = f"The refresh lock of tenant {tenant.pk} cannot be taken: ConnectionError"
    assert all(refusal.startswith(lock) for refusal in refusals)
    result = TaskResult.objects.get(task_id=sent.id)
    assert '"exc_type": "LockUnavailable"' in result.result
    assert result.traceback.count("LockUnavailable") >= 1
    assert not RefreshRun.objects.exists()
    assert wix_sandbox.count_requests(site.id) == 0
