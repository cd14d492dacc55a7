"""Mirror verbs: read a tenant's site from Wix, then write what changed in one transaction."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from hashlib import blake2b
from operator import itemgetter
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from tenants.crypto import DecryptionError
from tenants.models import Tenant
from tenants.wix import client_for
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixError, WixRateLimited, WixUnavailable

from . import bulk
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
    schedules: tuple[Mapping[str, Any], ...]  # as Wix sent them: read only where they changed
    connections: wix.ListConnectionsResult


def fetch_listing(client: WixClient) -> Listing:
    """Read the site's providers, every page of schedules and its connections from Wix."""
    providers = client.list_providers()
    pages = client.iter_schedule_pages(
        filter={"status": {"$in": list(SCHEDULE_STATUSES)}}, limit=100
    )
    schedules = tuple(item for page in pages for item in page.items)
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
    run = bulk.create(RefreshRun(tenant=tenant, started_at=timezone.now(), trigger=trigger))
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
        bulk.lock(Tenant, tenant.pk)
        tally = _apply(tenant, listing, run=run, now=now)
        run.new_count = tally.new
        run.changed_count = tally.changed
        run.unchanged_count = tally.unchanged
        run.removed_count = tally.removed
        run.failed_provider_ids = list(listing.connections.failed_provider_ids)
        run.outcome = RefreshOutcome.OK if listing.connections.complete else RefreshOutcome.PARTIAL
        run.wix_calls = client.calls
        run.finished_at = timezone.now()
        bulk.update(run, _FINISHED_FIELDS)
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
    """How the incoming rows of one model differ from the stored ones, and what was written.

    Most rows of a refresh are unchanged, and are only fingerprinted and compared with the
    stored fingerprint. Full rows are read, built into instances and compared column by
    column only for the rows that differ (`changes`, `reappeared`, `removed`).
    """

    model: type[Mirrored]
    tenant: Tenant
    names: list[str]  # every concrete column's attname, in the model's field order
    stored: dict[str, tuple] = field(default_factory=dict)  # wix_id -> stored columns, if read
    new: dict[str, tuple] = field(default_factory=dict)  # wix_id -> inserted columns
    pks: dict[str, int] = field(default_factory=dict)  # wix_id -> pk of every incoming row
    rows: dict[str, Mirrored] = field(default_factory=dict)  # wix_id -> instance, once built
    updated: list[Mirrored] = field(default_factory=list)
    # (row, {field: (old, new)}) for rows whose values changed.
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


# Part of every fingerprint. Bump it when what a row's columns are made of changes (the
# `_*_values` functions below), so the next refresh compares every row in full again
# instead of trusting fingerprints made by the old code.
FINGERPRINT_VERSION = b"1"


def fingerprint(raw: Mapping[str, Any], *context: Any) -> str:
    """A digest of what Wix sent for one object (and the row ids it links to).

    Equal fingerprints mean equal columns: `raw` is mirrored whole and every other column
    is made from it and from `context` (the pks of the rows it links to).
    """
    digest = blake2b(FINGERPRINT_VERSION, digest_size=16)
    digest.update(_canonical_json(raw).encode())
    for value in context:
        digest.update(b"|%d" % value if value is not None else b"|-")
    return digest.hexdigest()


# Key order is not meaning: Wix may send the same object with its keys in another order.
_canonical_json = partial(json.dumps, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Incoming:
    """The rows of one model that Wix listed: wix_id -> its object, and how to mirror one."""

    objects: Mapping[str, Any]  # wix_id -> a typed object of `wixapi.types`, or its JSON
    fingerprint: Callable[[Any], str]
    values: Callable[[Any], dict[str, Any]]  # every mirrored column but the bookkeeping ones


def _apply(tenant: Tenant, listing: Listing, *, run: RefreshRun, now: datetime) -> Tally:
    complete = listing.connections.complete
    providers = _sync(
        Provider,
        tenant,
        Incoming(
            {p.id: p for p in listing.providers},
            fingerprint=lambda p: fingerprint(p.raw),
            values=_provider_values,
        ),
        complete=True,
        now=now,
    )
    schedules = _sync(
        Schedule,
        tenant,
        Incoming(
            {wix.text_field(s, "id"): s for s in listing.schedules},
            fingerprint=fingerprint,
            values=lambda s: _schedule_values(wix.Schedule.from_json(s)),
        ),
        complete=True,
        now=now,
    )
    connections = _sync_connections(
        tenant,
        listing.connections.items,
        provider_pks=providers.pks,
        schedule_pks=schedules.pks,
        complete=complete,
        now=now,
    )
    bulk.insert(ConnectionChange, list(_history(tenant, connections, run=run, now=now)))
    return Tally(
        new=len(connections.new),
        changed=len(connections.changes) + len(connections.reappeared),
        unchanged=connections.unchanged,
        removed=len(connections.removed),
    )


def _sync_connections(
    tenant: Tenant,
    items: Iterable[Mapping[str, Any]],
    *,
    provider_pks: Mapping[str, int],
    schedule_pks: Mapping[str, int],
    complete: bool,
    now: datetime,
) -> Diff:
    """`_sync` for connections (as Wix sent them), which link to their provider's and
    schedule's rows."""

    def links(item: Mapping[str, Any]) -> tuple[int | None, int | None]:
        return (
            provider_pks.get(wix.text_field(item, "providerId")),
            schedule_pks.get(wix.text_field(item, "scheduleId")),
        )

    return _sync(
        Connection,
        tenant,
        Incoming(
            {wix.text_field(item, "id"): item for item in items},
            fingerprint=lambda item: fingerprint(item, *links(item)),
            values=lambda item: _connection_values(wix.Connection.from_json(item), *links(item)),
        ),
        complete=complete,
        now=now,
        new_values={"status_changed_at": now},
        on_change=lambda row, diff: "status" in diff and setattr(row, "status_changed_at", now),
    )


def _sync(
    model: type[Mirrored],
    tenant: Tenant,
    incoming: Incoming,
    *,
    complete: bool,
    now: datetime,
    new_values: Mapping[str, Any] | None = None,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None = None,
) -> Diff:
    """Diff the incoming objects against the tenant's rows and write what differs.

    A row is written only when its fingerprint changed, it reappeared, it left Wix (after a
    `complete` listing), or its `last_seen_at` is older than SEEN_RESOLUTION. New rows also
    get `new_values`. Costs a constant number of queries: one read of every row's
    fingerprint, and at most one read of the full rows that differ, one INSERT batch, one
    UPDATE of `last_seen_at` and one bulk UPDATE.
    """
    names = [f.attname for f in model._meta.concrete_fields]
    diff = Diff(model=model, tenant=tenant, names=names)
    fingerprints = bulk.fingerprints(model, tenant.pk, seen_after=now - SEEN_RESOLUTION)
    new: dict[str, dict[str, Any]] = {}  # wix_id -> every column of a new row
    differ: dict[str, tuple[dict[str, Any], str]] = {}  # wix_id -> (values, fingerprint)
    seen: list[int] = []  # pks of unchanged rows whose last_seen_at is due
    for wix_id, obj in incoming.objects.items():
        digest = incoming.fingerprint(obj)
        stored = fingerprints.get(wix_id)
        if stored is None:
            new[wix_id] = {**incoming.values(obj), "wix_id": wix_id, "fingerprint": digest}
            continue
        pk, stored_digest, removed, stale = stored
        diff.pks[wix_id] = pk
        if digest == stored_digest and not removed:
            diff.unchanged += 1
            if stale:
                seen.append(pk)
            continue
        differ[wix_id] = (incoming.values(obj), digest)
    gone = []
    if complete:
        gone = [
            wix_id
            for wix_id, (_, _, removed, _) in fingerprints.items()
            if not removed and wix_id not in incoming.objects
        ]
    if differ or gone:
        diff.stored = {
            values[names.index("wix_id")]: values
            for values in model.objects.filter(
                pk__in=[fingerprints[wix_id][0] for wix_id in (*differ, *gone)]
            )
            .order_by()
            .values_list()
        }
    for wix_id, (values, digest) in differ.items():
        _compare(diff, wix_id, values, digest, now=now, on_change=on_change)
    for wix_id in sorted(gone, key=lambda wix_id: fingerprints[wix_id][0]):
        row = diff.row(wix_id)
        row.removed_at = now
        diff.updated.append(row)
        diff.removed.append(row)
    if new:
        template = {f.attname: f.get_default() for f in model._meta.concrete_fields}
        template.update(tenant_id=tenant.pk, first_seen_at=now, last_seen_at=now, removed_at=None)
        template.update(new_values or {})
        rows = [template | values for values in new.values()]
        pk_name = model._meta.pk.attname
        for wix_id, columns, pk in zip(new, rows, bulk.insert(model, rows), strict=True):
            columns[pk_name] = diff.pks[wix_id] = pk
            diff.new[wix_id] = tuple(map(columns.__getitem__, names))
    if seen:
        model.objects.filter(pk__in=seen).update(last_seen_at=now)
    if diff.updated:
        columns = {"removed_at", "last_seen_at", "fingerprint"}
        for _row, changed in diff.changes:
            columns.update(changed)
        if model is Connection:
            columns.add("status_changed_at")
        model.objects.bulk_update(diff.updated, sorted(columns))
    return diff


def _compare(
    diff: Diff,
    wix_id: str,
    values: dict[str, Any],
    digest: str,
    *,
    now: datetime,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None,
) -> None:
    """Compare a row whose fingerprint differs (or that reappeared) column by column."""
    old = diff.stored[wix_id]
    at = {name: i for i, name in enumerate(diff.names)}
    changed = {
        name: (old[at[name]], value) for name, value in values.items() if old[at[name]] != value
    }
    reappeared = old[at["removed_at"]] is not None
    row = diff.row(wix_id)
    for name, (_, value) in changed.items():
        setattr(row, name, value)
    if changed and on_change:
        on_change(row, changed)
    # Equal columns under another fingerprint (an older FINGERPRINT_VERSION): only the
    # fingerprint is rewritten, and the row counts as unchanged.
    row.fingerprint = digest
    row.removed_at = None
    row.last_seen_at = now
    diff.updated.append(row)
    if reappeared:
        diff.reappeared.append(row)
    if changed:
        diff.changes.append((row, changed))
    elif not reappeared:
        diff.unchanged += 1


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
    c: wix.Connection, provider_pk: int | None, schedule_pk: int | None
) -> dict[str, Any]:
    imp = c.sync_config.list_event_from_calendars
    exp = c.sync_config.sync_to_calendar
    return {
        "provider_id": provider_pk,
        "schedule_id": schedule_pk,
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
        bulk.lock(Tenant, tenant.pk)
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
        diff = _sync_connections(
            tenant,
            [a.raw for a in answers],
            provider_pks=provider_pks,
            schedule_pks=schedule_pks,
            complete=False,
            now=now,
        )
        bulk.insert(ConnectionChange, list(_history(tenant, diff, run=None, now=now)))
    # The rows as written, also those that did not change (a diff reads only what differs).
    pks = [diff.pks[a.id] for a in answers]
    rows = Connection.objects.select_related("tenant", "provider", "schedule").in_bulk(pks)
    return [rows[pk] for pk in pks]
