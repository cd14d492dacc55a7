"""A worker killed mid-refresh (SIGKILL) loses neither the refresh nor, for long, the tenant.

Real `celery worker` processes against a Redis of the test's own (so their short visibility
timeout cannot hand out other tests' messages) and the test's PostgreSQL database. The
first is killed while it holds the tenant's lock; a second gets the unacknowledged message
once the visibility timeout has passed, finds the dead worker's lock expired, and refreshes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django_celery_results.models import TaskResult

from connections import tasks
from connections.models import Connection, RefreshRun
from connections.tests.test_redis_outage import RedisServer
from portal.celery import app as celery_app

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): worker processes share the "
        "test database",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 3
LOCK_SECONDS = 2
TIMEOUT = 30
QUEUE = "worker-lost"

# A worker whose broker hands unacknowledged messages out again after a few seconds, and
# looks for them every second (kombu's default: every 100 s).
WORKER = f"""
from portal.celery import app
app.conf.broker_transport_options = {{
    "visibility_timeout": {VISIBILITY_TIMEOUT},
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}}
app.worker_main(["worker", "--pool=solo", "-Q", "{QUEUE}", "--loglevel=WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"])
"""


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_worker(broker, wix_sandbox, tmp_path) -> Iterator:
    """Start `celery worker` processes on the test's broker, database and sandbox; each
    logs to `process.log_path`."""
    db = connection.settings_dict
    environment = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker.port}/0",
        "CACHE_URL": f"rediscache://127.0.0.1:{broker.port}/1",
        "WIX_API_BASE_URL": wix_sandbox.url,
        "SECRET_KEY": settings.SECRET_KEY,
        "PORTAL_ENCRYPTION_KEYS": ",".join(settings.PORTAL_ENCRYPTION_KEYS),
        "REFRESH_LOCK_SECONDS": str(LOCK_SECONDS),
        "WIX_SITE_REQUESTS_PER_MINUTE": "0",
        "CONN_MAX_AGE": "0",
    }
    started: list[subprocess.Popen] = []

    def start(**overrides: str) -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter)
                [sys.executable, "-c", WORKER],
                cwd=ROOT,
                env={**environment, **overrides},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_a_refresh_whose_worker_was_killed_is_redelivered_and_runs(
    broker, start_worker, wix_sandbox, site, tenant
):
    # Slow Wix keeps the first worker in the middle of the refresh.
    wix_sandbox.faults(site.id).latency(1.0)
    cache = redis.Redis(port=broker.port, db=1)
    with celery_app.connection_for_write(f"redis://127.0.0.1:{broker.port}/0") as conn:
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
    broker, start_worker, wix_sandbox, site, tenant
):
    with celery_app.connection_for_write(f"redis://127.0.0.1:{broker.port}/0") as conn:
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
