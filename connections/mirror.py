"""Diff what Wix listed against the mirrored rows, then write only the difference.

A refresh first plans (`plan`): it fingerprints each object Wix sent and compares the
fingerprint with the stored one, which needs nothing but one read of four small columns
per row. Most refreshes end there: nothing differs, nothing is written. Only the rows whose
fingerprints differ, that reappeared, left Wix or are due a `last_seen_at` are then read
whole, compared column by column and written (`write`), with their history (`history`).
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
from .models import ChangeKind, Connection, Mirrored, Provider, RefreshRun, Schedule

# `last_seen_at` is rewritten at most this often, so an unchanged refresh writes no row.
SEEN_RESOLUTION = timedelta(hours=1)
# Connection columns whose changes are kept as history (old -> new).
TRACKED_COLUMNS = ("status", "error_reason", "external_account_email")
# Columns that together mirror syncConfig; a change in any is one "sync_config" change.
SYNC_CONFIG_COLUMNS = frozenset(
    {"import_enabled", "import_mode", "import_calendars", "export_enabled", "export_mode"}
)
# How long the digest of Wix's answers stands for a row-by-row comparison (see
# services._trusted): at least this often a refresh compares every row, and
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


@dataclass
class Diff:
    """How the incoming objects of one model differ from its stored rows: planned by `plan`
    without writing, then written (and filled in) by `write`."""

    model: type[Mirrored]
    incoming: Incoming
    # What `plan` finds.
    pks: dict[str, int] = field(default_factory=dict)  # wix_id -> pk of every incoming row
    to_insert: dict[str, str] = field(default_factory=dict)  # wix_id -> fingerprint
    to_compare: dict[str, str] = field(default_factory=dict)  # wix_id -> fingerprint
    to_remove: dict[str, int] = field(default_factory=dict)  # wix_id -> pk, in pk order
    to_touch: list[int] = field(default_factory=list)  # pks of rows only due a last_seen_at
    unchanged: int = 0
    # What `write` did.
    names: list[str] = field(default_factory=list)  # the model's column attnames, in order
    stored: dict[str, tuple] = field(default_factory=dict)  # wix_id -> columns, rows read
    new: dict[str, tuple] = field(default_factory=dict)  # wix_id -> inserted columns
    rows: dict[str, Mirrored] = field(default_factory=dict)  # wix_id -> instance, once built
    updated: list[Mirrored] = field(default_factory=list)
    # (row, {field: (old, new)}) for rows whose values changed.
    changes: list[tuple[Mirrored, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    reappeared: list[Mirrored] = field(default_factory=list)
    removed: list[Mirrored] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        """Whether `write` has anything to write."""
        return bool(self.to_insert or self.to_compare or self.to_remove or self.to_touch)

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


def plan(
    model: type[Mirrored],
    incoming: Incoming,
    stored: Mapping[str, tuple[int, str, bool, bool]],
    *,
    complete: bool,
) -> Diff:
    """Compare fingerprints: what must be inserted, compared in full, marked removed, or
    touched. `stored` is `bulk.fingerprints()`'s for the model. Sends no query."""
    diff = Diff(model=model, incoming=incoming)
    for wix_id, obj in incoming.objects.items():
        digest = incoming.fingerprint(obj)
        row = stored.get(wix_id)
        if row is None:
            diff.to_insert[wix_id] = digest
            continue
        pk, stored_digest, removed, stale = row
        diff.pks[wix_id] = pk
        if digest != stored_digest or removed:
            diff.to_compare[wix_id] = digest
            continue
        diff.unchanged += 1
        if stale:
            diff.to_touch.append(pk)
    if complete:
        gone = [
            (pk, wix_id)
            for wix_id, (pk, _, removed, _) in stored.items()
            if not removed and wix_id not in incoming.objects
        ]
        diff.to_remove = {wix_id: pk for pk, wix_id in sorted(gone)}
    return diff


def write(
    diff: Diff,
    tenant: Tenant,
    *,
    now: datetime,
    new_values: Mapping[str, Any] | None = None,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None = None,
) -> Diff:
    """Write a planned diff: insert new rows (with `new_values` too), update rows whose
    columns changed or that reappeared, mark the gone ones removed, touch `last_seen_at`.

    At most one read of the rows to compare or remove, one INSERT batch, one UPDATE of
    `last_seen_at` and one bulk UPDATE, whatever the number of rows.
    """
    model = diff.model
    diff.names = names = [f.attname for f in model._meta.concrete_fields]
    if diff.to_compare or diff.to_remove:
        wix_id_at = names.index("wix_id")
        pks = [diff.pks[wix_id] for wix_id in diff.to_compare] + list(diff.to_remove.values())
        diff.stored = {
            values[wix_id_at]: values
            for values in model.objects.filter(pk__in=pks).order_by().values_list()
        }
    for wix_id, digest in diff.to_compare.items():
        _compare(diff, wix_id, digest, now=now, on_change=on_change)
    for wix_id in diff.to_remove:
        row = diff.row(wix_id)
        row.removed_at = now
        diff.updated.append(row)
        diff.removed.append(row)
    if diff.to_insert:
        _insert(diff, tenant, now=now, new_values=new_values)
    if diff.to_touch:
        model.objects.filter(pk__in=diff.to_touch).update(last_seen_at=now)
    if diff.updated:
        columns = {"removed_at", "last_seen_at", "fingerprint"}
        for _row, changed in diff.changes:
            columns.update(changed)
        if model is Connection:
            columns.add("status_changed_at")
        model.objects.bulk_update(diff.updated, sorted(columns))
    return diff


def _insert(
    diff: Diff, tenant: Tenant, *, now: datetime, new_values: Mapping[str, Any] | None
) -> None:
    model, incoming = diff.model, diff.incoming
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
        for wix_id, digest in diff.to_insert.items()
    ]
    pk_name = model._meta.pk.attname
    for wix_id, columns, pk in zip(diff.to_insert, rows, bulk.insert(model, rows), strict=True):
        columns[pk_name] = diff.pks[wix_id] = pk
        diff.new[wix_id] = tuple(map(columns.__getitem__, diff.names))


def _compare(
    diff: Diff,
    wix_id: str,
    digest: str,
    *,
    now: datetime,
    on_change: Callable[[Mirrored, dict[str, tuple[Any, Any]]], Any] | None,
) -> None:
    """Compare a row whose fingerprint differs (or that reappeared) column by column."""
    old = diff.stored[wix_id]
    at = {name: i for i, name in enumerate(diff.names)}
    values = diff.incoming.values(diff.incoming.objects[wix_id])
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


def write_connections(diff: Diff, tenant: Tenant, *, now: datetime) -> Diff:
    """`write` for connections: new rows and status changes stamp `status_changed_at`."""
    return write(
        diff,
        tenant,
        now=now,
        new_values={"status_changed_at": now},
        on_change=lambda row, changed: (
            "status" in changed and setattr(row, "status_changed_at", now)
        ),
    )


def history(
    tenant: Tenant, diff: Diff, *, run: RefreshRun | None, now: datetime
) -> Iterable[dict[str, Any]]:
    """The ConnectionChange rows (column values) of a written connections diff."""
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

    if diff.new:
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
