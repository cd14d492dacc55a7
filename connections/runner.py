"""Refresh many tenants at once, on threads: the runner of `manage.py refresh_connections`
and of `bench/refresh.py`."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence

from django.db import connections as db_connections
from django.utils import timezone

from tenants.models import Tenant

from .models import RefreshOutcome, RefreshRun
from .services.refresh import tenant_refresh

logger = logging.getLogger(__name__)

Refresh = Callable[..., RefreshRun]


def refresh_tenants(
    tenants: Sequence[Tenant],
    *,
    workers: int,
    trigger: str,
    refresh: Refresh = tenant_refresh,
) -> Iterator[RefreshRun]:
    """Refresh each tenant with `refresh` on `workers` threads; yield each run as it finishes.

    With one worker (or one tenant) the calling thread does the work. An error that
    `tenant_refresh` does not record itself (a database error, a bug) is logged and yielded
    as an unsaved failed run, so one tenant never stops the others.
    """
    if workers == 1 or len(tenants) <= 1:
        for tenant in tenants:
            yield refresh_one(tenant, trigger=trigger, refresh=refresh)
        return

    todo: queue.SimpleQueue[Tenant] = queue.SimpleQueue()
    for tenant in tenants:
        todo.put(tenant)
    done: queue.SimpleQueue[RefreshRun] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    tenant = todo.get_nowait()
                except queue.Empty:
                    return
                done.put(refresh_one(tenant, trigger=trigger, refresh=refresh))
        finally:
            # Django's connections are per thread: close this worker's before it ends.
            db_connections.close_all()

    threads = [
        threading.Thread(target=work, name=f"refresh-{n}", daemon=True)
        for n in range(min(workers, len(tenants)))
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in tenants:
            yield done.get()
    finally:
        # Interrupted (Ctrl-C) or done: workers finish the tenant at hand and take no more.
        stop.set()
    for thread in threads:
        thread.join()


def refresh_one(tenant: Tenant, *, trigger: str, refresh: Refresh) -> RefreshRun:
    """Refresh one tenant with `refresh`; an error it does not record itself is logged and
    returned as an unsaved failed run."""
    try:
        return refresh(tenant, trigger=trigger)
    except Exception as exc:
        # Only the exception's type is shown: a database error's text may quote row values.
        logger.exception("Refresh of tenant %s raised", tenant.pk)
        now = timezone.now()
        return RefreshRun(
            tenant=tenant,
            started_at=now,
            finished_at=now,
            trigger=trigger,
            outcome=RefreshOutcome.FAILED,
            error_code=type(exc).__name__,
            error_message="Unexpected error; the traceback is in the log.",
        )
