"""Queueing a refresh for a worker, tracked as a Job the API reports on."""

from __future__ import annotations

from django.db import transaction

from tenants import audit
from tenants.models import AuditAction, AuditOutcome, Tenant, Via

from .. import tasks
from ..models import Job, RefreshTrigger
from ..selectors import refresh_pending
from .errors import RefreshInProgress, TenantInactive


def tenant_refresh_queue(tenant: Tenant, *, user, via: Via) -> Job:
    """Queue a refresh of the tenant, audit it (QUEUE_REFRESH, outcome queued) and return
    its Job; the task is sent once the Job is committed.

    Raises `TenantInactive`, `RefreshInProgress` (one runs, or is queued), or
    `tasks.LockUnavailable` (503) when the cache is down.
    """
    if not tenant.is_active:
        raise TenantInactive(f"{tenant} is inactive: its refreshes are off.")
    if refresh_pending(tenant):
        raise RefreshInProgress(f"A refresh of {tenant} is already running or queued.")
    trigger = RefreshTrigger(via)
    with transaction.atomic():
        job = Job.objects.create(tenant=tenant, kind="refresh", created_by=user)

        def send() -> None:
            result = tasks.refresh_tenant.apply_async((tenant.pk,), {"trigger": trigger.value})
            Job.objects.filter(pk=job.pk).update(task_id=result.id)

        # The worker must find the committed Job; eagerly, this runs the refresh right here.
        transaction.on_commit(send)
        audit.record(
            AuditAction.QUEUE_REFRESH,
            user=user,
            via=via,
            tenant=tenant,
            target=tenant,
            parameters={"job": str(job.pk), "trigger": trigger.value},
            outcome=AuditOutcome.QUEUED,
        )
    return job
