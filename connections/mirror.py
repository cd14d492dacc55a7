"""Diff what Wix listed against the mirrored rows, then write only the difference.

A refresh first plans (`plan_site`, per model `plan`): it fingerprints each object Wix
sent and compares the fingerprint with the stored one, which needs nothing but one read
of four small columns per row (`stored_fingerprints`). Most refreshes end there: nothing
differs, nothing is written. Otherwise the plan is written in one transaction
(`write_site`, per model `write`): only the rows whose fingerprints differ, that
reappeared, left Wix or are due a `last_seen_at` are read whole, compared column by
column and written, and their history is recorded (`record_history`).

This module and the model managers are the only callers of `bulk`, the refresh's SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import blake2b
from operator import itemgetter
from typing import Any

from tenants.models import Tenant
from wixapi import types as wix

from . import bulk
from .models import (
    ChangeKind,
    Connection,
    ConnectionChange,
    Mirrored,
    Provider,
    RefreshRun,
    Schedule,
)

# `last_seen_at` is rewritten at most this often, so an unchanged refresh writes no row.
SEEN_RESOLUTION = timedelta(hours=1)
# Connection columns whose changes are kept as history (old -> new).
TRACKED_COLUMNS = ("status", "error_reason", "external_account_email")
# Columns that together mirror syncConfig; a change in any is one "sync_config" change.
SYNC_CONFIG_COLUMNS = frozenset(
    {"import_enabled", "import_mode", "import_calendars", "export_enabled", "export_mode"}
)
# How long the digest of Wix's answers stands for a row-by-row comparison (see
# services.refresh._trusted): at least this often a refresh compares every row, and
# touches the `last_seen_at` due. Under SEEN_RESOLUTION, so a 15-minute schedule still
# compares every other refresh or so.
DIGEST_TRUSTED_FOR = timedelta(minutes=45)
# The mirrored models, in the order a refresh writes them (connections link to the others).
MIRRORED = (Provider, Schedule, Connection)

# Part of every fingerprint. Bump it when what a row's columns are made of changes (the
# `*_values` functions below), so the next refresh compares every row in full again
# instead of trusting fingerprints made by the old code.
FINGERPRINT_VERSION = b"1"


def fingerprint(raw: Mapping[str, Any], *links: int | None) -> str:
    """A digest of what Wix sent for one object and the pks of the rows it links to.

    Equal fingerprints mean equal columns: `raw` is mirrored whole and every other column
    is made from it and from `links`.
    """
    digest = blake2b(FINGERPRINT_VERSION, digest_size=16)
    digest.update(_canonical_json(raw).encode())
    for pk in links:
        digest.update(b"|%d" % pk if pk is not None else b"|-")
    return digest.hexdigest()


# Key order is not meaning: Wix may send the same object with its keys in another order.
# One encoder for every call (`json.dumps` with options builds a new one each time).
_canonical_json = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), check_circular=False
).encode


@dataclass(frozen=True)
class Incoming:
    """The objects of one model that Wix listed (wix_id -> object), and how to mirror one."""

    objects: Mapping[str, Any]  # a typed object of `wixapi.types`, or its JSON
    fingerprint: Callable[[Any], str]
    values: Callable[[Any], dict[str, Any]]  # every mirrored column but the bookkeeping ones


def providers(listed: Iterable[wix.Provider]) -> Incoming:
    return Incoming(
        {p.id: p for p in listed},
        fingerprint=lambda p: fingerprint(p.raw),
        values=_provider_values,
    )


def schedules(items: Iterable[Mapping[str, Any]]) -> Incoming:
    """Schedules as Wix sent them (Query Schedules' items)."""
    return Incoming(
        {wix.text_field(item, "id"): item for item in items},
        fingerprint=fingerprint,
        values=lambda item: _schedule_values(wix.Schedule.from_json(item)),
    )


def connections(
    items: Iterable[Mapping[str, Any]],
    *,
    provider_pks: Mapping[str, int],
    schedule_pks: Mapping[str, int],
) -> Incoming:
    """Connections as Wix sent them, linked to the rows of their provider and schedule."""

    def links(item: Mapping[str, Any]) -> tuple[int | None, int | None]:
        return (
            provider_pks.get(wix.text_field(item, "providerId")),
            schedule_pks.get(wix.text_field(item, "scheduleId")),
        )

    return Incoming(
        {wix.text_field(item, "id"): item for item in items},
        fingerprint=lambda item: fingerprint(item, *links(item)),
        values=lambda item: _connection_values(wix.Connection.from_json(item), *links(item)),
    )


@dataclass(frozen=True)
class Listing:
    """Everything one refresh reads from Wix, before anything is written."""

    providers: tuple[wix.Provider, ...]
    schedules: tuple[Mapping[str, Any], ...]  # as Wix sent them: read only where they changed
    connections: wix.ListConnectionsResult
    digest: str = ""  # of Wix's answers, byte for byte (see `services.refresh._trusted`)


# wix_id -> (pk, fingerprint, removed, last seen before the resolution) per mirrored model.
Fingerprints = Mapping[type[Mirrored], Mapping[str, tuple[int, str, bool, bool]]]


@dataclass(frozen=True)
class Plan:
    """How the incoming objects of one model differ from its stored rows, found by
    comparing fingerprints (`plan`, which sends no query): what `write` is to do."""

    model: type[Mirrored]
    incoming: Incoming
    pks: Mapping[str, int]  # wix_id -> pk of every incoming row already stored
    to_insert: Mapping[str, str]  # wix_id -> fingerprint
    to_compare: Mapping[str, str]  # wix_id -> fingerprint
    to_remove: Mapping[str, int]  # wix_id -> pk, in pk order
    to_touch: tuple[int, ...]  # pks of rows only due a last_seen_at
    unchanged: int

    @property
    def writes(self) -> bool:
        """Whether `write` has anything to write."""
        return bool(self.to_insert or self.to_compare or self.to_remove or self.to_touch)


def plan(
    model: type[Mirrored],
    incoming: Incoming,
    stored: Mapping[str, tuple[int, str, bool, bool]],
    *,
    complete: bool,
) -> Plan:
    """Compare fingerprints: what must be inserted, compared in full, marked removed, or
    touched. `stored` is the model's part of `stored_fingerprints()`. Sends no query."""
    pks: dict[str, int] = {}
    to_insert: dict[str, str] = {}
    to_compare: dict[str, str] = {}
    to_touch: list[int] = []
    unchanged = 0
    for wix_id, obj in incoming.objects.items():
        digest = incoming.fingerprint(obj)
        row = stored.get(wix_id)
        if row is None:
            to_insert[wix_id] = digest
            continue
        pk, stored_digest, removed, stale = row
        pks[wix_id] = pk
        if digest != stored_digest or removed:
            to_compare[wix_id] = digest
            continue
        unchanged += 1
        if stale:
            to_touch.append(pk)
    to_remove: dict[str, int] = {}
    if complete:
        gone = [
            (pk, wix_id)
            for wix_id, (pk, _, removed, _) in stored.items()
            if not removed and wix_id not in incoming.objects
        ]
        to_remove = {wix_id: pk for pk, wix_id in sorted(gone)}
    return Plan(model, incoming, pks, to_insert, to_compare, to_remove, tuple(to_touch), unchanged)


@dataclass
class Written:
    """What `write` did to one model's rows (filled in as it writes them)."""

    model: type[Mirrored]
    names: list[str]  # the model's column attnames, in order
    pks: dict[str, int]  # wix_id -> pk of every incoming row, the inserted ones too
    unchanged: int
    stored: dict[str, tuple] = field(default_factory=dict)  # wix_id -> columns, rows read
    new: dict[str, tuple] = field(default_factory=dict)  # wix_id -> inserted columns
    rows: dict[str, Mirrored] = field(default_factory=dict)  # wix_id -> instance, once built
    updated: list[Mirrored] = field(default_factory=list)
    # (row, {field: (old, new)}) for rows whose values changed.
    changes: list[tuple[Mirrored, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    reappeared: list[Mirrored] = field(default_factory=list)
    removed: list[Mirrored] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """The counts a refresh run records (`RefreshRun.finish`); a row that came back
        counts as changed."""
        return {
            "new": len(self.new),
            "changed": len(self.changes) + len(self.reappeared),
            "unchanged": self.unchanged,
            "removed": len(self.removed),
        }

    def row(self, wix_id: str) -> Mirrored:
        """The model instance for `wix_id`, built from its columns on first use."""
        row = self.rows.get(wix_id)
        if row is None:
            values = self.new.get(wix_id) or self.stored[wix_id]
            row = self.rows[wix_id] = self.model.from_db(self.model.objects.db, self.names, values)
        return row

    def column(self, name: str) -> Callable[[tuple], Any]:
        """A getter of column `name` from a row's column tuple."""
        return itemgetter(self.names.index(name))


def write(
    plan: Plan,
    tenant: Tenant,
    *,
    now: datetime,
    new_values: Mapping[str, Any] | None = None,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None = None,
) -> Written:
    """Write a plan: insert new rows (with `new_values` too), update rows whose columns
    changed or that reappeared, mark the gone ones removed, touch `last_seen_at`.

    At most one read of the rows to compare or remove, one INSERT batch, one UPDATE of
    `last_seen_at` and one bulk UPDATE, whatever the number of rows.
    """
    model = plan.model
    names = [f.attname for f in model._meta.concrete_fields]
    written = Written(model=model, names=names, pks=dict(plan.pks), unchanged=plan.unchanged)
    if plan.to_compare or plan.to_remove:
        wix_id_at = names.index("wix_id")
        pks = [plan.pks[wix_id] for wix_id in plan.to_compare] + list(plan.to_remove.values())
        written.stored = {
            values[wix_id_at]: values
            for values in model.objects.filter(pk__in=pks).order_by().values_list()
        }
    for wix_id, digest in plan.to_compare.items():
        _compare(plan, written, wix_id, digest, now=now, on_change=on_change)
    for wix_id in plan.to_remove:
        row = written.row(wix_id)
        row.removed_at = now
        written.updated.append(row)
        written.removed.append(row)
    if plan.to_insert:
        _insert(plan, written, tenant, now=now, new_values=new_values)
    if plan.to_touch:
        model.objects.filter(pk__in=plan.to_touch).update(last_seen_at=now)
    if written.updated:
        columns = {"removed_at", "last_seen_at", "fingerprint"}
        for _row, changed in written.changes:
            columns.update(changed)
        if model is Connection:
            columns.add("status_changed_at")
        model.objects.bulk_update(written.updated, sorted(columns))
    return written


def _insert(
    plan: Plan,
    written: Written,
    tenant: Tenant,
    *,
    now: datetime,
    new_values: Mapping[str, Any] | None,
) -> None:
    model, incoming = plan.model, plan.incoming
    template = {f.attname: f.get_default() for f in model._meta.concrete_fields}
    template.update(tenant_id=tenant.pk, first_seen_at=now, last_seen_at=now, removed_at=None)
    template.update(new_values or {})
    rows = [
        {
            **template,
            **incoming.values(incoming.objects[wix_id]),
            "wix_id": wix_id,
            "fingerprint": digest,
        }
        for wix_id, digest in plan.to_insert.items()
    ]
    pk_name = model._meta.pk.attname
    for wix_id, columns, pk in zip(plan.to_insert, rows, bulk.insert(model, rows), strict=True):
        columns[pk_name] = written.pks[wix_id] = pk
        written.new[wix_id] = tuple(map(columns.__getitem__, written.names))


def _compare(
    plan: Plan,
    written: Written,
    wix_id: str,
    digest: str,
    *,
    now: datetime,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None,
) -> None:
    """Compare a row whose fingerprint differs (or that reappeared) column by column."""
    old = written.stored[wix_id]
    at = {name: i for i, name in enumerate(written.names)}
    values = plan.incoming.values(plan.incoming.objects[wix_id])
    changed = {
        name: (old[at[name]], value) for name, value in values.items() if old[at[name]] != value
    }
    reappeared = old[at["removed_at"]] is not None
    row = written.row(wix_id)
    for name, (_, value) in changed.items():
        setattr(row, name, value)
    if changed and on_change:
        on_change(row, changed)
    # Equal columns under another fingerprint (an older FINGERPRINT_VERSION): only the
    # fingerprint is rewritten, and the row counts as unchanged.
    row.fingerprint = digest
    row.removed_at = None
    row.last_seen_at = now
    written.updated.append(row)
    if reappeared:
        written.reappeared.append(row)
    if changed:
        written.changes.append((row, changed))
    elif not reappeared:
        written.unchanged += 1


def write_connections(plan: Plan, tenant: Tenant, *, now: datetime) -> Written:
    """`write` for connections: new rows and status changes stamp `status_changed_at`."""
    return write(
        plan,
        tenant,
        now=now,
        new_values={"status_changed_at": now},
        on_change=lambda row, changed: (
            "status" in changed and setattr(row, "status_changed_at", now)
        ),
    )


# --- One site: the refresh's plan and its write ------------------------------------------


def stored_fingerprints(tenant: Tenant, *, now: datetime) -> Fingerprints:
    """The fingerprints of every mirrored row of the tenant, in one query."""
    return Mirrored.fingerprints(MIRRORED, tenant, seen_after=now - SEEN_RESOLUTION)


@dataclass(frozen=True)
class SitePlan:
    """What a complete listing changes in a tenant's mirror, planned from one read of the
    stored fingerprints (`plan_site`)."""

    listing: Listing
    stored: Fingerprints  # what it was planned from
    providers: Plan
    schedules: Plan
    # None while providers or schedules have rows to insert: a connection's fingerprint
    # holds the pks of the rows it links to, known once those are written (`write_site`).
    connections: Plan | None

    @property
    def writes(self) -> bool:
        """Whether anything is to be written (else the mirror already matches Wix)."""
        return (
            self.connections is None
            or self.providers.writes
            or self.schedules.writes
            or self.connections.writes
        )

    @property
    def unchanged(self) -> int:
        """The connections that match Wix already (all of them when nothing `writes`)."""
        return self.connections.unchanged if self.connections is not None else 0


def plan_site(listing: Listing, stored: Fingerprints) -> SitePlan:
    """Plan a refresh of the site: compare the listing's fingerprints with `stored`
    (`stored_fingerprints()`). Sends no query."""
    providers_plan = plan(Provider, providers(listing.providers), stored[Provider], complete=True)
    schedules_plan = plan(Schedule, schedules(listing.schedules), stored[Schedule], complete=True)
    connections_plan = None
    if not (providers_plan.to_insert or schedules_plan.to_insert):
        connections_plan = _plan_connections(
            listing, stored, provider_pks=providers_plan.pks, schedule_pks=schedules_plan.pks
        )
    return SitePlan(listing, stored, providers_plan, schedules_plan, connections_plan)


def _plan_connections(
    listing: Listing,
    stored: Fingerprints,
    *,
    provider_pks: Mapping[str, int],
    schedule_pks: Mapping[str, int],
) -> Plan:
    return plan(
        Connection,
        connections(
            listing.connections.items, provider_pks=provider_pks, schedule_pks=schedule_pks
        ),
        stored[Connection],
        complete=listing.connections.complete,
    )


def write_site(site_plan: SitePlan, tenant: Tenant, *, now: datetime) -> Written:
    """Write a site's plan in the caller's transaction; return the written connections,
    whose history (`record_history`) the caller records once its run has a pk."""
    # Two refreshes of one tenant write one after the other, each over fresh rows. Under
    # the tenant's row lock the fingerprints are read again (one small query), and the
    # plan is made again only if they changed since it was made: another refresh or an
    # action wrote the mirror in between, which is rare. So the plan is made once on the
    # common path, and a write never starts from rows another writer has changed.
    bulk.lock(Tenant, tenant.pk)
    stored = stored_fingerprints(tenant, now=now)
    if stored != site_plan.stored:
        site_plan = plan_site(site_plan.listing, stored)
    providers_written = write(site_plan.providers, tenant, now=now)
    schedules_written = write(site_plan.schedules, tenant, now=now)
    connections_plan = site_plan.connections
    if connections_plan is None:
        connections_plan = _plan_connections(
            site_plan.listing,
            stored,
            provider_pks=providers_written.pks,
            schedule_pks=schedules_written.pks,
        )
    return write_connections(connections_plan, tenant, now=now)


def write_answers(tenant: Tenant, answers: Iterable[wix.Connection], *, now: datetime) -> Written:
    """Mirror connections Wix just returned (after an action), with their history, in the
    caller's transaction; return what was written.

    Nothing is marked removed: this is not a complete listing. The history names no run.
    """
    answers = list(answers)
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
    stored = Mirrored.fingerprints([Connection], tenant, seen_after=now - SEEN_RESOLUTION)
    written = write_connections(
        plan(
            Connection,
            connections(
                [a.raw for a in answers], provider_pks=provider_pks, schedule_pks=schedule_pks
            ),
            stored[Connection],
            complete=False,
        ),
        tenant,
        now=now,
    )
    record_history(tenant, written, run=None, now=now)
    return written


def record_history(
    tenant: Tenant, written: Written, *, run: RefreshRun | None, now: datetime
) -> None:
    """INSERT the ConnectionChange rows of written connections (one statement at most)."""
    bulk.insert(ConnectionChange, list(history(tenant, written, run=run, now=now)))


def history(
    tenant: Tenant, written: Written, *, run: RefreshRun | None, now: datetime
) -> Iterable[dict[str, Any]]:
    """The ConnectionChange rows (column values) of written connections."""
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

    if written.new:
        pk_of, status_of = written.column("id"), written.column("status")
        for values in written.new.values():
            yield change(pk_of(values), ChangeKind.APPEARED, new=status_of(values))
    for row in written.reappeared:
        yield change(row.pk, ChangeKind.REAPPEARED, new=row.status)
    for row, changed in written.changes:
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
    for row in written.removed:
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
