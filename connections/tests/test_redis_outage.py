"""While the cache's Redis is down, reads keep working and refreshes fail closed.

The throttle and the per-site request budget let requests through, with one warning a minute;
the refresh lock cannot be taken, so the API answers 503 and a refresh task fails rather
than run unlocked. A real Redis is started on a port of its own and stopped mid-test, or
the cache points at a closed port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from connections import tasks
from connections.models import Job, RefreshRun
from connections.services.queue import tenant_refresh_queue
from connections.tests.builders import api_world
from portal.api import throttling
from portal.api.throttling import AnonRateThrottle, TokenRateThrottle
from tenants import ratelimit
from tenants.models import Via
from tenants.ratelimit import SiteBudget
from tenants.tests.builders import api_client_for, superuser

pytestmark = pytest.mark.django_db

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
# The discard port is closed on loopback: a cache there is a Redis that is down.
CLOSED_PORT = 9


def redis_cache(port: int) -> dict:
    return {
        "default": {
            "BACKEND": REDIS_CACHE,
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture
def cache_on_redis(redis_server, settings) -> None:
    """The cache is the real Redis `redis_server`."""
    settings.CACHES = redis_cache(redis_server.port)


@pytest.fixture
def cache_down(settings) -> None:
    """The cache is a Redis nobody answers for."""
    settings.CACHES = redis_cache(CLOSED_PORT)


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """Each test sees its first outage warning (they are once a minute per process)."""
    warnings = [ratelimit.budget_unavailable, throttling.throttle_unavailable]
    for warning in warnings:
        warning.reset()
    yield
    for warning in warnings:
        warning.reset()


def outage_warnings(caplog, logger: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.levelno == logging.WARNING and "unreachable" in r.getMessage()
    ]


# --- The API, with a real Redis stopped and started -----------------------------------------


def test_api_reads_while_redis_is_down_and_refreshes_answer_503(
    redis_server, cache_on_redis, wix_sandbox, django_capture_on_commit_callbacks
):
    world = api_world(wix_sandbox)
    client = api_client_for(world.operator)
    refresh = f"/api/v1/tenants/{world.tenant_a.pk}/refresh/"
    assert client.get("/api/v1/connections/").status_code == 200

    redis_server.stop()
    started = time.monotonic()
    connections = client.get("/api/v1/connections/")
    tenants = client.get("/api/v1/tenants/")
    refused = client.post(refresh)
    elapsed = time.monotonic() - started

    assert (connections.status_code, tenants.status_code) == (200, 200)
    assert len(connections.json()["results"]) == 2
    assert [t["name"] for t in tenants.json()["results"]] == ["Tenant A"]
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "lock_unavailable"
    assert refused.json()["error"]["message"].startswith("Refreshes are unavailable for now")
    assert not Job.objects.exists()
    assert elapsed < 5

    redis_server.start()
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(refresh)

    assert accepted.status_code == 202
    job = client.get(f"/api/v1/jobs/{accepted.json()['job']['id']}/").json()
    assert (job["status"], job["result"]["outcome"]) == ("success", "ok")


# --- The pieces, with the cache on a closed port ------------------------------------------


def test_budget_lets_requests_through_with_one_warning_while_the_cache_is_down(cache_down, caplog):
    budget = SiteBudget(site_id="site-a", limit=1, window_seconds=60, max_wait_seconds=0)

    started = time.monotonic()
    for _ in range(5):
        budget.acquire()

    assert time.monotonic() - started < 2
    [warning] = outage_warnings(caplog, "tenants.ratelimit")
    assert warning.startswith(
        "Wix request budgets unavailable, the cache is unreachable; not limiting (Connection"
    )


def test_outage_warning_says_how_many_were_held_back(caplog):
    warning = ratelimit.OutageWarning(logging.getLogger("tenants.ratelimit"), "Down", interval=0.2)

    for _ in range(3):
        warning("Error 111")
    time.sleep(0.25)
    warning("Error 111")

    assert [r.getMessage() for r in caplog.records if r.name == "tenants.ratelimit"] == [
        "Down (Error 111); 0 more since the last warning, next at most in 0.2 s",
        "Down (Error 111); 2 more since the last warning, next at most in 0.2 s",
    ]


def test_throttle_lets_requests_through_while_the_cache_is_down(world_down, monkeypatch, caplog):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "2/min"})
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/min"})
    client = api_client_for(world_down.viewer)

    reads = [client.get("/api/v1/tenants/").status_code for _ in range(5)]
    anonymous = [APIClient().get("/api/v1/tenants/").status_code for _ in range(5)]

    assert reads == [200] * 5
    assert anonymous == [401] * 5
    [warning] = outage_warnings(caplog, "portal.api.throttling")
    assert warning.startswith("API throttles unavailable, the cache is unreachable; not limiting")


@pytest.fixture
def world_down(world, settings):
    """Two mirrored tenants (made while the cache worked), then the cache goes down."""
    settings.CACHES = redis_cache(CLOSED_PORT)
    return world


def test_lock_fails_closed_while_the_cache_is_down(cache_down, wix_sandbox, site, tenant):
    with pytest.raises(tasks.LockUnavailable) as taking, tasks.tenant_lock(tenant.pk):
        pytest.fail("the block ran without the lock")
    with pytest.raises(tasks.LockUnavailable):
        tasks.refresh_is_running(tenant.pk)
    with pytest.raises(tasks.LockUnavailable) as refreshing:
        tasks.refresh_tenant(tenant.pk)

    assert str(taking.value).startswith(
        f"The refresh lock of tenant {tenant.pk} cannot be taken: ConnectionError"
    )
    assert (refreshing.value.status_code, refreshing.value.default_code) == (
        503,
        "lock_unavailable",
    )
    assert not RefreshRun.objects.exists()
    assert wix_sandbox.count_requests(site.id) == 0


def test_queueing_a_refresh_fails_closed_while_the_cache_is_down(cache_down, tenant):
    user = superuser()

    with pytest.raises(tasks.LockUnavailable):
        tenant_refresh_queue(tenant, user=user, via=Via.API)

    assert not Job.objects.exists()
