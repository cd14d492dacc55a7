"""Mirror verbs: read a tenant's site from Wix, then write what changed in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenants.crypto import DecryptionError
from tenants.models import Tenant
from tenants.wix import client_for
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixError

from .models import (
    ChangeKind,
    Connection,
    ConnectionChange,
    Mirrored,
    Provider,
    RefreshOutcome,
    RefreshRun,
    Schedule,
)

logger = logging.getLogger(__name__)

# `last_seen_at` is rewritten at most this often, so an unchanged refresh writes no row.
SEEN_RESOLUTION = timedelta(hours=1)
# Staff schedules that were cancelled still name the connections made before.
SCHEDULE_STATUSES = ("ACTIVE", "CANCELLED")
# Connection columns whose changes are kept as history (old -> new).
TRACKED_COLUMNS = ("status", "error_reason", "external_account_email")
# Columns that together mirror syncConfig; a change in any is one "sync_config" change.
SYNC_CONFIG_COLUMNS = frozenset(
    {"import_enabled", "import_mode", "import_calendars", "export_enabled", "export_mode"}
)


@dataclass(frozen=True)
class Listing:
    """Everything one refresh reads from Wix, before anything is written."""

    providers: tuple[wix.Provider, ...]
    schedules: tuple[wix.Schedule, ...]
    connections: wix.ListConnectionsResult


def fetch_listing(client: WixClient) -> Listing:
    """Read the site's providers, every page of schedules and its connections from Wix."""
    providers = client.list_providers()
    schedules = tuple(
        client.iter_schedules(filter={"status": {"$in": list(SCHEDULE_STATUSES)}}, limit=100)
    )
    connections = client.list_connections(partial_failure=True)
    return Listing(providers=providers, schedules=schedules, connections=connections)


def refresh_tenant(
    tenant: Tenant, *, trigger: str = "manual", client: WixClient | None = None
) -> RefreshRun:
    """Bring the tenant's mirror in line with Wix and return the finished RefreshRun.

    Wix is read first; only a successful read is written, in one transaction. Rows absent
    from a complete listing are marked removed; after a partial listing (a provider
    failed) nothing is. A failed read leaves every mirrored row as it was and records why.
    Wix and decryption errors are recorded on the run, not raised.
    """
    run = RefreshRun.objects.create(tenant=tenant, started_at=timezone.now(), trigger=trigger)
    try:
        client = client or client_for(tenant)
        listing = fetch_listing(client)
    except (WixError, DecryptionError) as exc:
        return _finish_failed(run, exc, calls=client.calls if client else 0)

    now = timezone.now()
    with transaction.atomic():
        # Two refreshes of one tenant write one after the other, each over fresh rows.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk").first()
        tally = _apply(tenant, listing, run=run, now=now)
        run.new_count = tally.new
        run.changed_count = tally.changed
        run.unchanged_count = tally.unchanged
        run.removed_count = tally.removed
        run.failed_provider_ids = list(listing.connections.failed_provider_ids)
        run.outcome = RefreshOutcome.OK if listing.connections.complete else RefreshOutcome.PARTIAL
        run.wix_calls = client.calls
        run.finished_at = timezone.now()
        run.save()
    logger.info(
        "Refreshed tenant %s: %s, %d new, %d changed, %d removed, %d Wix calls",
        tenant.pk,
        run.outcome,
        run.new_count,
        run.changed_count,
        run.removed_count,
        run.wix_calls,
    )
    return run


def _finish_failed(run: RefreshRun, exc: Exception, *, calls: int) -> RefreshRun:
    if isinstance(exc, WixError):
        run.error_code = exc.code
        run.error_message = exc.message
        run.wix_request_id = exc.request_id or ""
    else:
        run.error_code = "DECRYPTION_FAILED"
        run.error_message = str(exc)
    run.outcome = RefreshOutcome.FAILED
    run.wix_calls = calls
    run.finished_at = timezone.now()
    run.save()
    logger.warning(
        "Refresh of tenant %s failed: %s %s", run.tenant_id, run.error_code, run.error_message
    )
    return run


@dataclass
class Tally:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass
class Diff:
    """How the incoming rows of one model differ from the stored ones."""

    rows: dict[str, Mirrored] = field(default_factory=dict)  # wix_id -> row, new ones included
    created: list[Mirrored] = field(default_factory=list)
    updated: list[Mirrored] = field(default_factory=list)
    # (row, {field: (old, new)}) for rows whose tracked values changed.
    changes: list[tuple[Mirrored, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    reappeared: list[Mirrored] = field(default_factory=list)
    removed: list[Mirrored] = field(default_factory=list)
    unchanged: int = 0


def _apply(tenant: Tenant, listing: Listing, *, run: RefreshRun, now: datetime) -> Tally:
    complete = listing.connections.complete
    providers = _sync(
        Provider,
        tenant,
        {p.id: _provider_values(p) for p in listing.providers},
        complete=True,
        now=now,
    )
    schedules = _sync(
        Schedule,
        tenant,
        {s.id: _schedule_values(s) for s in listing.schedules},
        complete=True,
        now=now,
    )
    provider_pks = {wid: row.pk for wid, row in providers.rows.items()}
    schedule_pks = {wid: row.pk for wid, row in schedules.rows.items()}
    connections = _sync(
        Connection,
        tenant,
        {
            c.id: _connection_values(c, provider_pks=provider_pks, schedule_pks=schedule_pks)
            for c in listing.connections.connections
        },
        complete=complete,
        now=now,
        on_new=lambda row: setattr(row, "status_changed_at", now),
        on_change=lambda row, diff: "status" in diff and setattr(row, "status_changed_at", now),
    )
    ConnectionChange.objects.bulk_create(_history(tenant, connections, run=run, now=now))
    return Tally(
        new=len(connections.created),
        changed=len(connections.changes) + len(connections.reappeared),
        unchanged=connections.unchanged,
        removed=len(connections.removed),
    )


def _sync(
    model: type[Mirrored],
    tenant: Tenant,
    incoming: Mapping[str, dict[str, Any]],
    *,
    complete: bool,
    now: datetime,
    on_new: Callable[[Mirrored], Any] | None = None,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None = None,
) -> Diff:
    """Diff `incoming` (wix_id -> column values) against the tenant's rows and write it.

    A row is written only when a value changed, it reappeared, it left Wix, or its
    `last_seen_at` is older than SEEN_RESOLUTION. Costs a constant number of queries.
    """
    diff = Diff()
    stored = {row.wix_id: row for row in model.objects.filter(tenant=tenant)}
    for wix_id, values in incoming.items():
        row = stored.get(wix_id)
        if row is None:
            row = model(tenant=tenant, wix_id=wix_id, first_seen_at=now, last_seen_at=now, **values)
            if on_new:
                on_new(row)
            diff.created.append(row)
            diff.rows[wix_id] = row
            continue
        diff.rows[wix_id] = row
        changed = {
            name: (getattr(row, name), value)
            for name, value in values.items()
            if getattr(row, name) != value
        }
        reappeared = row.removed_at is not None
        stale = now - row.last_seen_at >= SEEN_RESOLUTION
        if not (changed or reappeared or stale):
            diff.unchanged += 1
            continue
        for name, (_, value) in changed.items():
            setattr(row, name, value)
        if changed and on_change:
            on_change(row, changed)
        row.removed_at = None
        row.last_seen_at = now
        diff.updated.append(row)
        if reappeared:
            diff.reappeared.append(row)
        if changed:
            diff.changes.append((row, changed))
        elif not reappeared:
            diff.unchanged += 1
    if complete:
        for wix_id, row in stored.items():
            if wix_id not in incoming and row.removed_at is None:
                row.removed_at = now
                diff.updated.append(row)
                diff.removed.append(row)
    if diff.created:
        model.objects.bulk_create(diff.created)
    if diff.updated:
        columns = {"removed_at", "last_seen_at"}
        for _row, changed in diff.changes:
            columns.update(changed)
        if model is Connection:
            columns.add("status_changed_at")
        model.objects.bulk_update(diff.updated, sorted(columns))
    return diff


def _history(
    tenant: Tenant, diff: Diff, *, run: RefreshRun, now: datetime
) -> Iterable[ConnectionChange]:
    def change(row, kind, field="", old=None, new=None):
        return ConnectionChange(
            tenant=tenant,
            connection=row,
            refresh_run=run,
            kind=kind,
            field=field,
            old_value=old,
            new_value=new,
            changed_at=now,
        )

    for row in diff.created:
        yield change(row, ChangeKind.APPEARED, new=row.status)
    for row in diff.reappeared:
        yield change(row, ChangeKind.REAPPEARED, new=row.status)
    for row, changed in diff.changes:
        for name in TRACKED_COLUMNS:
            if name in changed:
                yield change(row, ChangeKind.CHANGED, name, *changed[name])
        if SYNC_CONFIG_COLUMNS.intersection(changed):
            old_raw, new_raw = changed["raw"]
            yield change(
                row,
                ChangeKind.CHANGED,
                "sync_config",
                old_raw.get("syncConfig"),
                new_raw.get("syncConfig"),
            )
    for row in diff.removed:
        yield change(row, ChangeKind.REMOVED, old=row.status)


def _provider_values(p: wix.Provider) -> dict[str, Any]:
    return {
        "name": p.name,
        "calendar_type": p.calendar_type.value,
        "connect_methods": [m.value for m in p.connect_methods],
        "import_capability": p.list_event_from_calendars.value,
        "export_capability": p.sync_to_calendar.value,
        "can_update_sync_config": p.update_sync_config,
        "raw": dict(p.raw),
    }


def _schedule_values(s: wix.Schedule) -> dict[str, Any]:
    return {
        "name": s.name[:200],
        "external_id": s.external_id,
        "app_id": s.app_id,
        "status": s.status,
        "time_zone": s.time_zone,
        "default_title": s.default_title[:200],
        "raw": dict(s.raw),
    }


def _connection_values(
    c: wix.Connection, *, provider_pks: Mapping[str, int], schedule_pks: Mapping[str, int]
) -> dict[str, Any]:
    imp = c.sync_config.list_event_from_calendars
    exp = c.sync_config.sync_to_calendar
    return {
        "provider_id": provider_pks.get(c.provider_id),
        "schedule_id": schedule_pks.get(c.schedule_id),
        "provider_wix_id": c.provider_id,
        "schedule_wix_id": c.schedule_id,
        "calendar_type": c.calendar_type.value,
        "user_id": c.user_id,
        "app_id": c.app_id,
        "external_account_email": c.external_account_email,
        "status": c.status.value,
        "error_reason": c.error_reason.value if c.error_reason else "",
        "import_enabled": imp.enabled,
        "import_mode": imp.mode.value if imp.mode else "",
        "import_calendars": [{"id": cal.id, "name": cal.name} for cal in imp.calendars],
        "export_enabled": exp.enabled,
        "export_mode": exp.mode.value if exp.mode else "",
        "raw": dict(c.raw),
    }


def mirror_connections(tenant: Tenant, answers: Iterable[wix.Connection]) -> list[Connection]:
    """Mirror connections Wix just returned (after an action); return their rows in order.

    Nothing is marked removed: this is not a complete listing. Changes are recorded
    without a refresh run.
    """
    answers = list(answers)
    now = timezone.now()
    with transaction.atomic():
        Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk").first()
        provider_pks = dict(
            Provider.objects.filter(
                tenant=tenant, wix_id__in={a.provider_id for a in answers}
            ).values_list("wix_id", "pk")
        )
        schedule_pks = dict(
            Schedule.objects.filter(
                tenant=tenant, wix_id__in={a.schedule_id for a in answers}
            ).values_list("wix_id", "pk")
        )
        diff = _sync(
            Connection,
            tenant,
            {
                a.id: _connection_values(a, provider_pks=provider_pks, schedule_pks=schedule_pks)
                for a in answers
            },
            complete=False,
            now=now,
            on_new=lambda row: setattr(row, "status_changed_at", now),
            on_change=lambda row, diff: "status" in diff and setattr(row, "status_changed_at", now),
        )
        ConnectionChange.objects.bulk_create(_history(tenant, diff, run=None, now=now))
    return [diff.rows[a.id] for a in answers]
