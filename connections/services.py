"""Mirror verbs: read a tenant's site from Wix, then write what changed in one transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, partial
from operator import itemgetter
from typing import Any

from django.db import connections, models, router, transaction
from django.utils import timezone

from tenants.crypto import DecryptionError
from tenants.models import Tenant
from tenants.wix import client_for
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixError, WixRateLimited, WixUnavailable

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
    Wix and decryption errors are recorded on the run, not raised; anything else is
    recorded as INTERNAL_ERROR and raised, so no run stays "running".
    """
    run = RefreshRun.objects.create(tenant=tenant, started_at=timezone.now(), trigger=trigger)
    try:
        return _refresh(tenant, run, client)
    except Exception as exc:
        _finish_failed(run, exc, calls=client.calls if client else 0)
        raise


def _refresh(tenant: Tenant, run: RefreshRun, client: WixClient | None) -> RefreshRun:
    try:
        client = client or client_for(tenant)
        listing = fetch_listing(client)
    except (WixError, DecryptionError) as exc:
        return _finish_failed(run, exc, calls=client.calls if client else 0)

    now = timezone.now()
    with _one_writer(), transaction.atomic():
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
        run.save(update_fields=_FINISHED_FIELDS)
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


# SQLite has one writer at a time; see `_one_writer`.
_sqlite_writer = threading.Lock()


def _one_writer() -> AbstractContextManager[Any]:
    """On SQLite, a lock the threads of this process take around their write transaction.

    Waiting for it hands over at once; waiting in SQLite's busy handler sleeps up to 100 ms
    between tries, which left the database idle between refreshes. Other processes still
    wait in the busy handler; PostgreSQL needs no lock.
    """
    if connections[router.db_for_write(Tenant)].vendor == "sqlite":
        return _sqlite_writer
    return nullcontext()


# What a successful refresh sets on its run (one UPDATE of these columns only).
_FINISHED_FIELDS = (
    "new_count",
    "changed_count",
    "unchanged_count",
    "removed_count",
    "failed_provider_ids",
    "outcome",
    "wix_calls",
    "finished_at",
)


def _finish_failed(run: RefreshRun, exc: Exception, *, calls: int) -> RefreshRun:
    if isinstance(exc, WixError):
        run.error_code = exc.code
        run.error_message = exc.message
        run.wix_request_id = exc.request_id or ""
        # Worth trying again later: Wix was busy or down, not refusing what we sent.
        run.retryable = isinstance(exc, WixRateLimited | WixUnavailable)
    elif isinstance(exc, DecryptionError):
        run.error_code = "DECRYPTION_FAILED"
        run.error_message = str(exc)
    else:
        # Not a Wix answer: keep the message out (it may hold anything), the log has it.
        run.error_code = "INTERNAL_ERROR"
        run.error_message = f"The refresh stopped on an unexpected {type(exc).__name__}."
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
    """How the incoming rows of one model differ from the stored ones.

    Rows stay column tuples (`stored` and `new`, in `names` order) until one must be
    updated or handed back (`row()`): a refresh builds model instances only for the rows
    whose values changed.
    """

    model: type[Mirrored]
    tenant: Tenant
    names: list[str]  # every concrete column's attname, in the model's field order
    stored: dict[str, tuple] = field(default_factory=dict)  # wix_id -> stored columns
    new: dict[str, tuple] = field(default_factory=dict)  # wix_id -> inserted columns
    pks: dict[str, int] = field(default_factory=dict)  # wix_id -> pk of every incoming row
    rows: dict[str, Mirrored] = field(default_factory=dict)  # wix_id -> instance, once built
    updated: list[Mirrored] = field(default_factory=list)
    # (row, {field: (old, new)}) for rows whose tracked values changed.
    changes: list[tuple[Mirrored, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    reappeared: list[Mirrored] = field(default_factory=list)
    removed: list[Mirrored] = field(default_factory=list)
    unchanged: int = 0

    def row(self, wix_id: str) -> Mirrored:
        """The model instance for `wix_id`, built from its columns on first use."""
        row = self.rows.get(wix_id)
        if row is None:
            values = self.new.get(wix_id) or self.stored[wix_id]
            row = self.rows[wix_id] = self.model.from_db(self.model.objects.db, self.names, values)
            row.tenant = self.tenant
        return row

    def column(self, name: str) -> Callable[[tuple], Any]:
        """A getter of column `name` from a row's column tuple."""
        return itemgetter(self.names.index(name))


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
    provider_pks = providers.pks
    schedule_pks = schedules.pks
    connections = _sync(
        Connection,
        tenant,
        {
            c.id: _connection_values(c, provider_pks=provider_pks, schedule_pks=schedule_pks)
            for c in listing.connections.connections
        },
        complete=complete,
        now=now,
        new_values={"status_changed_at": now},
        on_change=lambda row, diff: "status" in diff and setattr(row, "status_changed_at", now),
    )
    _insert(ConnectionChange, list(_history(tenant, connections, run=run, now=now)))
    return Tally(
        new=len(connections.new),
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
    new_values: Mapping[str, Any] | None = None,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None = None,
) -> Diff:
    """Diff `incoming` (wix_id -> column values) against the tenant's rows and write it.

    A row is written only when a value changed, it reappeared, it left Wix, or its
    `last_seen_at` is older than SEEN_RESOLUTION. New rows also get `new_values`. Costs a
    constant number of queries.
    """
    names = [f.attname for f in model._meta.concrete_fields]
    at = {name: i for i, name in enumerate(names)}
    pk_at, wix_id_at = at[model._meta.pk.attname], at["wix_id"]
    removed_at, last_seen_at = at["removed_at"], at["last_seen_at"]
    # Column tuples (every concrete column, in `names` order), not instances: most rows are
    # unchanged and only compared.
    stored = {
        values[wix_id_at]: values
        for values in model.objects.filter(tenant=tenant).order_by().values_list()
    }
    diff = Diff(model=model, tenant=tenant, names=names, stored=stored)
    # Every column of a new row: the model's defaults, then what is known of it.
    template = {f.attname: f.get_default() for f in model._meta.concrete_fields}
    template.update(tenant_id=tenant.pk, first_seen_at=now, last_seen_at=now, removed_at=None)
    template.update(new_values or {})
    new: dict[str, dict[str, Any]] = {}  # wix_id -> every column of a new row
    for wix_id, values in incoming.items():
        old = stored.get(wix_id)
        if old is None:
            new[wix_id] = template | values
            new[wix_id]["wix_id"] = wix_id
            continue
        diff.pks[wix_id] = old[pk_at]
        changed = {
            name: (old[at[name]], value) for name, value in values.items() if old[at[name]] != value
        }
        reappeared = old[removed_at] is not None
        stale = now - old[last_seen_at] >= SEEN_RESOLUTION
        if not (changed or reappeared or stale):
            diff.unchanged += 1
            continue
        row = diff.row(wix_id)
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
        gone = [old for wix_id, old in stored.items() if wix_id not in incoming]
        for old in sorted(gone, key=lambda old: old[pk_at]):
            if old[removed_at] is None:
                row = diff.row(old[wix_id_at])
                row.removed_at = now
                diff.updated.append(row)
                diff.removed.append(row)
    if new:
        pks = _insert(model, list(new.values()))
        for (wix_id, columns), pk in zip(new.items(), pks, strict=True):
            columns[names[pk_at]] = diff.pks[wix_id] = pk
            diff.new[wix_id] = tuple(map(columns.__getitem__, names))
    if diff.updated:
        columns = {"removed_at", "last_seen_at"}
        for _row, changed in diff.changes:
            columns.update(changed)
        if model is Connection:
            columns.add("status_changed_at")
        model.objects.bulk_update(diff.updated, sorted(columns))
    return diff


def _insert(model: type[models.Model], rows: list[dict[str, Any]]) -> list[int]:
    """INSERT rows (attname -> value, the pk left out) and return their pks, in order.

    What `bulk_create` writes for plain values, without its per-value compilation (checks
    for expressions, pre_save, several conversion calls): that was most of the CPU of a
    refresh that mirrors a new site. Each column's conversion is chosen once per call.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    if not connection.features.can_return_rows_from_bulk_insert:
        created = model.objects.bulk_create([model(**row) for row in rows])
        return [row.pk for row in created]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    names = [f.attname for f in fields]
    # One refresh writes the same few datetimes (its `now`) into every row: adapt each once.
    adapt_datetime = cache(connection.ops.adapt_datetimefield_value)
    to_db = [_db_converter(f, connection, adapt_datetime=adapt_datetime) for f in fields]
    qn = connection.ops.quote_name
    into = f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)})"
    returning, _ = connection.ops.return_insert_columns([meta.pk])
    size = max(connection.ops.bulk_batch_size(fields, rows), 1)
    pks: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            values = connection.ops.bulk_insert_sql(fields, [["%s"] * len(fields)] * len(batch))
            cursor.execute(
                f"{into} {values} {returning}",
                [
                    value if convert is None else convert(value)
                    for row in batch
                    for convert, value in zip(to_db, map(row.__getitem__, names), strict=True)
                ],
            )
            pks.extend(pk for pk, *_ in connection.ops.fetch_returned_insert_rows(cursor))
    return pks


# Columns whose Python values (str, bool, int, an id) go to the driver as they are.
_AS_IS = frozenset(
    {
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "PositiveIntegerField",
        "TextField",
    }
)


def _db_converter(
    f: models.Field, connection, *, adapt_datetime: Callable[[Any], Any]
) -> Callable[[Any], Any] | None:
    """How a value of `f` becomes a driver parameter (None: as it is)."""
    kind = f.get_internal_type()
    if kind in _AS_IS:
        return None
    if kind == "DateTimeField":
        return adapt_datetime
    return partial(f.get_db_prep_save, connection=connection)


def _history(
    tenant: Tenant, diff: Diff, *, run: RefreshRun | None, now: datetime
) -> Iterable[dict[str, Any]]:
    """The ConnectionChange rows (column values) of a connections diff."""
    base = {
        "tenant_id": tenant.pk,
        "refresh_run_id": run.pk if run else None,
        "changed_at": now,
    }

    def change(pk, kind, field="", old=None, new=None):
        return {
            **base,
            "connection_id": pk,
            "kind": kind,
            "field": field,
            "old_value": old,
            "new_value": new,
        }

    pk_of, status_of = diff.column("id"), diff.column("status")
    for values in diff.new.values():
        yield change(pk_of(values), ChangeKind.APPEARED, new=status_of(values))
    for row in diff.reappeared:
        yield change(row.pk, ChangeKind.REAPPEARED, new=row.status)
    for row, changed in diff.changes:
        for name in TRACKED_COLUMNS:
            if name in changed:
                yield change(row.pk, ChangeKind.CHANGED, name, *changed[name])
        if SYNC_CONFIG_COLUMNS.intersection(changed):
            old_raw, new_raw = changed["raw"]
            yield change(
                row.pk,
                ChangeKind.CHANGED,
                "sync_config",
                old_raw.get("syncConfig"),
                new_raw.get("syncConfig"),
            )
    for row in diff.removed:
        yield change(row.pk, ChangeKind.REMOVED, old=row.status)


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
            new_values={"status_changed_at": now},
            on_change=lambda row, diff: "status" in diff and setattr(row, "status_changed_at", now),
        )
        _insert(ConnectionChange, list(_history(tenant, diff, run=None, now=now)))
    return [diff.row(a.id) for a in answers]
