"""A refresh pass through a real Celery worker on Redis, against PostgreSQL: a tenant whose
refresh a worker retries is counted done once, after its last attempt.

The worker runs in a thread of this process. Worker tests run in one process (see .ci/run):
a worker started with a queue of its own would change the app's queue selection for the
worker tests after it.
"""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from connections import tasks
from connections.models import RefreshPass, RefreshRun
from connections.services import passes
from portal.celery import app as celery_app
from tenants.tests.builders import sandbox_tenant, wait_until

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
    hijack = celery_app.conf.worker_hijack_root_logger
    celery_app.conf.worker_hijack_root_logger = False
    with (
        django_db_blocker.unblock(),
        start_worker(
            celery_app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=TIMEOUT,
        ) as started,
    ):
        yield started
    celery_app.conf.worker_hijack_root_logger = hijack


def test_a_tenant_retried_by_the_worker_is_done_once(settings, worker, wix_sandbox):
    settings.REFRESH_RETRY_BACKOFF_SECONDS = 0.1
    tenants = []
    for name in ("Aurora", "Borealis"):
        site = wix_sandbox.add_site(name=name)
        tenant = sandbox_tenant(wix_sandbox, site)
        tenants.append((tenant, site))
    flaky, steady = tenants
    # Every attempt of the client's (1 + WIX_MAX_RETRIES) answered 503, twice over: the
    # worker retries the refresh twice, the third attempt succeeds.
    wix_sandbox.faults(flaky[1].id).server_error(times=6, status=503)
    refresh_pass = passes.pass_start(2, trigger="schedule")

    results = [
        tasks.refresh_tenant.apply_async((tenant.pk,), {"pass_id": refresh_pass.pk})
        for tenant, _ in tenants
    ]

    summaries = [result.get(timeout=TIMEOUT) for result in results]
    assert [(s["outcome"], s["retries"]) for s in summaries] == [("ok", 2), ("ok", 0)]
    wait_until(
        lambda: RefreshPass.objects.get(pk=refresh_pass.pk).closed_at is not None, timeout=TIMEOUT
    )
    refresh_pass.refresh_from_db()
    assert (refresh_pass.done, refresh_pass.expected, refresh_pass.completed) == (2, 2, True)
    runs = RefreshRun.objects.filter(refresh_pass=refresh_pass)
    assert sorted(runs.values_list("tenant_id", "outcome")) == sorted(
        [
            (flaky[0].pk, "failed"),
            (flaky[0].pk, "failed"),
            (flaky[0].pk, "ok"),
            (steady[0].pk, "ok"),
        ]
    )
