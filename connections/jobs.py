"""Queue work for a tenant and track it as a Job the API can report on."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult

from tenants import audit
from tenants.models import AuditOutcome, Tenant

from . import tasks
from .models import Job

FINISHED = {"SUCCESS", "FAILURE", "REVOKED"}


class RefreshInProgress(Exception):
    """A refresh of the tenant is running or queued already."""


def refresh_pending(tenant: Tenant) -> bool:
    """True while a refresh of the tenant holds its lock, or one queued has not finished.

    A queued refresh counts for REFRESH_PENDING_SECONDS at most: its message may be gone
    (a Redis without persistence restarted), and it must not block the tenant's refreshes
    for good. Raises `tasks.LockUnavailable` when the lock cannot be read.
    """
    if tasks.refresh_is_running(tenant.pk):
        return True
    since = timezone.now() - timedelta(seconds=settings.REFRESH_PENDING_SECONDS)
    task_ids = list(
        Job.objects.filter(tenant=tenant, kind="refresh", created_at__gte=since).values_list(
            "task_id", flat=True
        )
    )
    if not task_ids:
        return False
    finished = set(
        TaskResult.objects.filter(task_id__in=task_ids, status__in=FINISHED).values_list(
            "task_id", flat=True
        )
    )
    return any(task_id not in finished for task_id in task_ids)


def queue_refresh(tenant: Tenant, *, user, via: str = "api") -> Job:
    """Queue a refresh of the tenant and return its Job.

    Raises RefreshInProgress, or `tasks.LockUnavailable` (503) when the cache is down.
    """
    if refresh_pending(tenant):
        raise RefreshInProgress(f"A refresh of {tenant} is already running or queued.")
    job = Job.objects.create(tenant=tenant, kind="refresh", created_by=user)

    def send() -> None:
        result = tasks.refresh_tenant.apply_async((tenant.pk,), {"trigger": via})
        Job.objects.filter(pk=job.pk).update(task_id=result.id)

    # The worker must find the committed Job; eagerly, this runs the refresh right here.
    transaction.on_commit(send)
    audit.record(
        user=user,
        action="queue_refresh",
        tenant=tenant,
        target=tenant,
        outcome=AuditOutcome.QUEUED,
        via=via,
    )
    return job
