"""Background refreshes: take tenant ids, call `services.refresh_tenant`, report.

Without a broker (CELERY_BROKER_URL unset) Celery runs these in-process; a refresh is then
not retried: Celery would retry at once, ignoring the backoff, and hand the caller a
`Retry` exception, while the failed RefreshRun already says what happened. Arguments are
ids and plain words, never credentials: they are stored with the results
(django-celery-results) and shown in the admin.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from tenants.models import Tenant

from . import services
from .models import RefreshOutcome, RefreshRun

logger = logging.getLogger(__name__)

MAX_RETRIES = 3
RETRY_BACKOFF_MAX_SECONDS = 600


@shared_task(bind=True, max_retries=MAX_RETRIES)
def refresh_tenant(self, tenant_id: int, *, trigger: str = "schedule") -> dict[str, Any]:
    """Refresh one tenant's mirror unless a refresh of it is already running; return a summary.

    Skips deleted and inactive tenants. In a worker, retried with backoff, at most
    MAX_RETRIES times, when Wix rate-limited the refresh or was unavailable.
    """
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return _skipped(tenant_id, "not found")
    if not tenant.is_active:
        return _skipped(tenant_id, "inactive")
    with tenant_lock(tenant_id) as locked:
        if not locked:
            logger.info("Refresh of tenant %s skipped: one is already running", tenant_id)
            return _skipped(tenant_id, "already running")
        run = services.refresh_tenant(tenant, trigger=trigger)
    retries = self.request.retries or 0
    if (
        run.outcome == RefreshOutcome.FAILED
        and run.retryable
        and not (self.request.called_directly or self.request.is_eager)
        and retries < MAX_RETRIES
    ):
        countdown = backoff_seconds(retries)
        logger.info(
            "Refresh of tenant %s failed with %s; retry %d in %.1f s",
            tenant_id,
            run.error_code,
            retries + 1,
            countdown,
        )
        raise self.retry(countdown=countdown)
    return _summary(run, retries=retries)


@shared_task
def refresh_all(*, trigger: str = "schedule") -> int:
    """Queue one `refresh_tenant` per active tenant; return how many were queued."""
    tenant_ids = list(Tenant.objects.active().order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        refresh_tenant.delay(tenant_id, trigger=trigger)
    logger.info("Queued refreshes of %d tenants", len(tenant_ids))
    return len(tenant_ids)


def refresh_is_running(tenant_id: int) -> bool:
    """True while a refresh of the tenant holds its lock."""
    return cache.get(_lock_key(tenant_id)) is not None


@contextmanager
def tenant_lock(tenant_id: int) -> Iterator[bool]:
    """Hold the tenant's refresh lock for the block if it is free; yield whether it was.

    The lock lives in the cache (Redis in production, so every worker sees it) and expires
    after REFRESH_LOCK_SECONDS, should its worker die. Only its owner releases it; the check
    and the delete are two cache calls, harmless unless a refresh outlives the expiry.
    """
    key = _lock_key(tenant_id)
    token = uuid.uuid4().hex
    locked = cache.add(key, token, timeout=settings.REFRESH_LOCK_SECONDS)
    try:
        yield locked
    finally:
        if locked and cache.get(key) == token:
            cache.delete(key)


def _lock_key(tenant_id: int) -> str:
    return f"refresh-tenant-lock:{tenant_id}"


def backoff_seconds(retries: int) -> float:
    """Return the wait before retry `retries + 1`: about 30, 60, 120 s by default.

    Half fixed, half random: Wix's rate limit is per minute, and workers retrying many
    tenants at once should not come back together.
    """
    base = getattr(settings, "REFRESH_RETRY_BACKOFF_SECONDS", 30)
    delay = min(RETRY_BACKOFF_MAX_SECONDS, base * 2**retries)
    return delay / 2 + random.uniform(0, delay / 2)


def _skipped(tenant_id: int, reason: str) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "outcome": "skipped", "reason": reason}


def _summary(run: RefreshRun, *, retries: int) -> dict[str, Any]:
    return {
        "tenant_id": run.tenant_id,
        "run_id": run.pk,
        "outcome": str(run.outcome),
        "new": run.new_count,
        "changed": run.changed_count,
        "unchanged": run.unchanged_count,
        "removed": run.removed_count,
        "wix_calls": run.wix_calls,
        "error_code": run.error_code,
        "retries": retries,
    }
