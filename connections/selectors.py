"""Reads that take more than one query or call Wix, or that several interfaces share:
events, calendars, whether a refresh is pending, what became of a queued job, the last
completed refresh pass. Nothing here writes or audits."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from tenants.models import Tenant
from wixapi import types as wix

from . import tasks
from .models import Connection, Job, RefreshPass
from .services.common import client_for
from .services.errors import ActionRefused

# A listing of events stops here rather than page through a runaway window.
MAX_EVENTS = 5000
# Celery's states of a task that will not change again.
FINISHED = {"SUCCESS", "FAILURE", "REVOKED"}


@dataclass(frozen=True)
class EventsListing:
    events: list[wix.Event]
    failed_provider_ids: list[str]
    truncated: bool


def events_list(
    tenant: Tenant,
    *,
    start: datetime,
    end: datetime,
    schedule_ids: Iterable[str] = (),
    user_ids: Iterable[str] = (),
    include_titles: bool = False,
) -> EventsListing:
    """Return the events of the tenant's connected calendars in [start, end), all pages.

    Stops after MAX_EVENTS and says so; failed providers of any page are named. Raises
    `ActionRefused` for an empty window or unreadable credentials, and Wix's errors.
    """
    if end <= start:
        raise ActionRefused("The end of the range must come after its start.", field="end")
    events: list[wix.Event] = []
    failed: list[str] = []
    pages = client_for(tenant).iter_event_pages(
        start=start,
        end=end,
        schedule_ids=list(schedule_ids),
        user_ids=list(user_ids),
        include_titles=include_titles,
        limit=1000,
    )
    for page in pages:
        failed.extend(p for p in page.failed_provider_ids if p not in failed)
        events.extend(page.events)
        if len(events) >= MAX_EVENTS:
            return EventsListing(events[:MAX_EVENTS], failed, truncated=True)
    return EventsListing(events, failed, truncated=False)


def calendars_list(connection: Connection) -> tuple[wix.Calendar, ...]:
    """Return the calendars of the connection's external account (List Calendars).

    Raises `ActionRefused` for unreadable credentials, and Wix's errors.
    """
    return client_for(connection.tenant).list_calendars(connection.wix_id)


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


@dataclass(frozen=True)
class JobStatus:
    """What became of a job: Celery's state in lower case ("pending" until a worker records
    one), and the task's result once it succeeded."""

    status: str
    result: Any = None


def job_status(job: Job) -> JobStatus:
    """Return the job's status from its task's result row (one query)."""
    task = TaskResult.objects.filter(task_id=job.task_id).first()
    if task is None:
        return JobStatus("pending")
    if task.status != "SUCCESS":
        return JobStatus(task.status.lower())
    try:
        result = json.loads(task.result)
    except (TypeError, ValueError):
        result = None
    return JobStatus("success", result)


def last_completed_pass() -> RefreshPass | None:
    """Return the refresh pass that completed last (every expected tenant done), or None.

    Passes closed at their deadline with tenants missing do not count: when workers or beat
    stop, this grows old. One query, on the `refreshpass_completed` index.
    """
    return RefreshPass.objects.completed().order_by("-closed_at").first()
