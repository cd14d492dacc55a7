"""Refresh passes: every active tenant refreshed once, started by beat (`tasks.refresh_all`)
or by `manage.py refresh_connections --all`, and closed when the last tenant is done or at
the pass's deadline."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, F, Value, When
from django.utils import timezone

from ..models import RefreshPass

logger = logging.getLogger(__name__)

# Evaluated by the database in the closing UPDATE, from the row's own counts.
_ALL_DONE = Case(When(done__gte=F("expected"), then=Value(True)), default=Value(False))


def pass_start(expected: int, *, trigger: str, now: datetime | None = None) -> RefreshPass:
    """Start and return a pass of `expected` tenants, due within REFRESH_INTERVAL_MINUTES.

    A pass of no tenants is closed at once, completed: beat ran and there was nothing to do.
    """
    now = now or timezone.now()
    refresh_pass = RefreshPass.objects.create(
        started_at=now,
        deadline_at=now + timedelta(minutes=settings.REFRESH_INTERVAL_MINUTES),
        expected=expected,
        trigger=trigger,
    )
    if expected == 0:
        pass_close(refresh_pass, now=now)
    return refresh_pass


def pass_tenant_done(pass_id: int) -> None:
    """Count one tenant of the pass as done, in one statement; close the pass when that was
    its last expected tenant.

    Called once per tenant, when its refresh will not be retried. A pass closed at its
    deadline still counts late tenants, and stays not completed.
    """
    counted = RefreshPass.objects.count_done(pass_id)
    if counted is None:
        logger.warning("Refresh pass %s not found; its tenant is not counted", pass_id)
        return
    done, expected, closed = counted
    if done >= expected and not closed:
        pass_close(RefreshPass.objects.get(pk=pass_id))


def pass_close(refresh_pass: RefreshPass, *, now: datetime | None = None) -> bool:
    """Close the pass, completed when every expected tenant is done; return whether this call
    closed it (False when it was closed already). `refresh_pass` is read again after."""
    now = now or timezone.now()
    closed = (
        RefreshPass.objects.open()
        .filter(pk=refresh_pass.pk)
        .update(closed_at=now, completed=_ALL_DONE)
    )
    refresh_pass.refresh_from_db(fields=["done", "closed_at", "completed"])
    if closed and not refresh_pass.completed:
        logger.warning(
            "Refresh pass %s closed with %d of %d tenants done",
            refresh_pass.pk,
            refresh_pass.done,
            refresh_pass.expected,
        )
    return bool(closed)


def passes_close_overdue(now: datetime | None = None) -> int:
    """Close the open passes whose deadline has passed, not completed (tenants are missing:
    a worker died, a message was lost, or the pass outran the interval); return how many."""
    now = now or timezone.now()
    overdue = RefreshPass.objects.open().filter(deadline_at__lte=now).order_by("pk")
    return sum(pass_close(refresh_pass, now=now) for refresh_pass in overdue)
