"""Background refreshes: take tenant ids, call `services.refresh.tenant_refresh`, report.

Without a broker (CELERY_BROKER_URL unset) Celery runs these in-process; a refresh is then
not retried: Celery would retry at once, ignoring the backoff, and hand the caller a
`Retry` exception, while the failed RefreshRun already says what happened. Arguments are
ids and plain words, never credentials: they are stored with the results
(django-celery-results) and shown in the admin.

A refresh is idempotent, so its message is acknowledged only once it finished
(`acks_late`) and handed back to the queue if its worker process dies
(`reject_on_worker_lost`); the broker redelivers one whose worker vanished after its
visibility timeout (settings, "Celery").
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from celery.exceptions import Retry
from django.conf import settings
from django.core.cache import caches

from tenants.models import Tenant
from tenants.ratelimit import CacheUnavailable, OutageWarning, reaching_cache

from .models import RefreshOutcome, RefreshRun
from .services import passes
from .services.refresh import tenant_refresh

logger = logging.getLogger(__name__)

MAX_RETRIES = 3
RETRY_BACKOFF_MAX_SECONDS = 600

lock_not_renewed = OutageWarning(
    logger, "Refresh locks not renewed, the cache is unreachable; they expire unless it returns"
)


class LockUnavailable(Exception):
    """The tenant's refresh lock cannot be read or taken: the cache is unreachable.

    Refreshes fail closed: without the lock two could run at once. `status_code` and
    `default_code` say how an interface answers it: 503, "lock_unavailable".
    """

    status_code = 503
    default_code = "lock_unavailable"
    default_detail = (
        "Refreshes are unavailable for now: the lock that keeps two refreshes of a tenant "
        "apart cannot be reached. Reading works; try the refresh again in a minute."
    )

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.default_detail)


# Time limits come from settings (CELERY_TASK_ANNOTATIONS): a deployment may need longer.
@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True, reject_on_worker_lost=True)
def refresh_tenant(
    self, tenant_id: int, *, trigger: str = "schedule", pass_id: int | None = None
) -> dict[str, Any]:
    """Refresh one tenant's mirror unless a refresh of it is already running; return a summary.

    Skips deleted and inactive tenants. In a worker, retried with backoff, at most
    MAX_RETRIES times, when Wix rate-limited the refresh or was unavailable, or when the
    lock could not be taken because the cache is down; in-process, that raises
    `LockUnavailable`. Never refreshes without the lock.

    With `pass_id` (from `refresh_all`), the run is recorded as part of that pass, and the
    tenant is counted done in it once its refresh ends for good: not before a retry.
    """
    retrying = False
    try:
        return _refresh_tenant(self, tenant_id, trigger=trigger, pass_id=pass_id)
    except Retry:
        retrying = True
        raise
    finally:
        if pass_id is not None and not retrying:
            passes.pass_tenant_done(pass_id)


def _refresh_tenant(task, tenant_id: int, *, trigger: str, pass_id: int | None) -> dict[str, Any]:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return _skipped(tenant_id, "not found")
    if not tenant.is_active:
        return _skipped(tenant_id, "inactive")
    retries = task.request.retries or 0
    in_worker = not (task.request.called_directly or task.request.is_eager)
    try:
        with tenant_lock(tenant_id) as locked:
            if not locked:
                logger.info("Refresh of tenant %s skipped: one is already running", tenant_id)
                return _skipped(tenant_id, "already running")
            run = tenant_refresh(tenant, trigger=trigger, refresh_pass_id=pass_id)
    except LockUnavailable as exc:
        if not in_worker or retries >= MAX_RETRIES:
            logger.error("Refresh of tenant %s not run: %s", tenant_id, exc)
            raise
        countdown = backoff_seconds(retries)
        logger.warning(
            "Refresh of tenant %s not run: %s; retry %d in %.1f s",
            tenant_id,
            exc,
            retries + 1,
            countdown,
        )
        raise task.retry(exc=exc, countdown=countdown) from None
    if (
        run.outcome == RefreshOutcome.FAILED
        and run.retryable
        and in_worker
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
        raise task.retry(countdown=countdown)
    return _summary(run, retries=retries)


@shared_task
def refresh_all(*, trigger: str = "schedule") -> int:
    """Start a refresh pass and queue one `refresh_tenant` per active tenant in it; return
    how many were queued."""
    tenant_ids = list(Tenant.objects.active().order_by("pk").values_list("pk", flat=True))
    refresh_pass = passes.pass_start(len(tenant_ids), trigger=trigger)
    for tenant_id in tenant_ids:
        refresh_tenant.delay(tenant_id, trigger=trigger, pass_id=refresh_pass.pk)
    logger.info("Queued refreshes of %d tenants (pass %s)", len(tenant_ids), refresh_pass.pk)
    return len(tenant_ids)


# Beat runs it every minute: its results (mostly 0) are not kept.
@shared_task(ignore_result=True)
def passes_close_overdue() -> int:
    """Close the refresh passes past their deadline, as not completed; return how many."""
    return passes.passes_close_overdue()


def refresh_is_running(tenant_id: int) -> bool:
    """True while a refresh of the tenant holds its lock; raises `LockUnavailable`."""
    try:
        with reaching_cache():
            return caches["default"].get(_lock_key(tenant_id)) is not None
    except CacheUnavailable as exc:
        raise LockUnavailable(
            f"Whether a refresh of tenant {tenant_id} runs cannot be told: {exc}"
        ) from exc


@contextmanager
def tenant_lock(tenant_id: int) -> Iterator[bool]:
    """Hold the tenant's refresh lock for the block if it is free; yield whether it was.

    Raises `LockUnavailable` when the cache cannot be reached: refreshes fail closed.

    The lock lives in the cache (Redis in production, so every worker sees it). It is taken
    for REFRESH_LOCK_SECONDS and renewed every third of that while the block runs (at most
    REFRESH_TIME_LIMIT_SECONDS), so the lock of a worker that died expires within
    REFRESH_LOCK_SECONDS. Only its owner renews and releases it, but the cache API has no
    compare-and-set: the check and the renewal (or the delete) are two calls. Between them
    the lock can expire and be taken by another refresh, whose lock is then renewed once
    (harmless) or, on release, deleted; and a lock not renewed in time (the cache down for
    most of REFRESH_LOCK_SECONDS) lets a second refresh start. Two refreshes at once are
    still correct, if wasteful: the database lock in `services.refresh` serialises their writes.
    """
    key = _lock_key(tenant_id)
    token = uuid.uuid4().hex
    ttl = settings.REFRESH_LOCK_SECONDS
    # This thread's cache client, shared with the heartbeat thread (Django's are per thread).
    cache = caches["default"]
    try:
        with reaching_cache():
            locked = cache.add(key, token, timeout=ttl)
    except CacheUnavailable as exc:
        raise LockUnavailable(
            f"The refresh lock of tenant {tenant_id} cannot be taken: {exc}"
        ) from exc
    if not locked:
        yield False
        return
    heartbeat = _Heartbeat(
        cache, key, token, ttl=ttl, until=time.monotonic() + settings.REFRESH_TIME_LIMIT_SECONDS
    )
    heartbeat.start()
    try:
        yield True
    finally:
        heartbeat.stop()
        try:
            with reaching_cache():
                if cache.get(key) == token:
                    cache.delete(key)
        except CacheUnavailable as exc:
            logger.warning(
                "Refresh lock of tenant %s not released (%s); it expires within %d s",
                tenant_id,
                exc,
                ttl,
            )


class _Heartbeat(threading.Thread):
    """Renews a held lock's expiry every third of `ttl` until stopped, or `until` passes."""

    def __init__(self, cache, key: str, token: str, *, ttl: int, until: float) -> None:
        super().__init__(name=f"heartbeat {key}", daemon=True)
        self.cache, self.key, self.token, self.ttl, self.until = cache, key, token, ttl, until
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def run(self) -> None:
        while not self._stopped.wait(self.ttl / 3):
            if time.monotonic() >= self.until:
                # A refresh past its time limit has hung; its lock may expire.
                logger.warning("%s: stopped renewing after the refresh time limit", self.key)
                return
            try:
                with reaching_cache():
                    if self.cache.get(self.key) != self.token:
                        logger.warning("%s: expired before it was renewed", self.key)
                        return
                    self.cache.touch(self.key, self.ttl)
            except CacheUnavailable as exc:
                lock_not_renewed(exc)


def _lock_key(tenant_id: int) -> str:
    return f"refresh-tenant-lock:{tenant_id}"


def backoff_seconds(retries: int) -> float:
    """Return the wait before retry `retries + 1`: about 30, 60, 120 s by default.

    Half fixed, half random: Wix's rate limit is per minute, and workers retrying many
    tenants at once should not come back together.
    """
    base = settings.REFRESH_RETRY_BACKOFF_SECONDS
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
