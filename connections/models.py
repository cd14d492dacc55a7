"""The mirror of each tenant's Wix providers, schedules and calendar connections.

One row per Wix object per tenant (`wix_id` unique per tenant), columns only for what the
admin and API filter or show, the whole payload in `raw`. Rows are written by the refresh
(`services.refresh.tenant_refresh`) and by the verbs that mirror Wix's answer
(`services.refresh.mirror_connections`); they are never deleted when Wix drops them, only
marked `removed_at`, and come back if Wix shows them again.

Wix reference: https://dev.wix.com/docs/rest/business-solutions/bookings/calendar/external-calendar-v2/introduction
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connections, models, router
from django.db.models import F, Q
from django.db.models.functions import Collate, Upper
from django.utils import timezone

from tenants.crypto import DecryptionError
from tenants.models import CREDENTIALS_UNREADABLE, Tenant, TenantOwned, TenantOwnedQuerySet
from wixapi import types as wix
from wixapi.errors import WixError, WixRateLimited, WixUnavailable

from . import bulk

# Wix's own names for calendar types, not their enum names ("I cal", "Office 365"); the two
# types Wix replaced with MICROSOFT still appear on old connections, so they say so.
CALENDAR_TYPE_LABELS = {
    wix.CalendarType.GOOGLE: "Google",
    wix.CalendarType.MICROSOFT: "Microsoft",
    wix.CalendarType.I_CAL: "Apple iCal",
    wix.CalendarType.OTHER: "Other",
    wix.CalendarType.UNDEFINED: "Undefined",
    wix.CalendarType.OUTLOOK: "Outlook (deprecated, now Microsoft)",
    wix.CalendarType.OFFICE_365: "Office 365 (deprecated, now Microsoft)",
}
# Enums whose values do not read well as words; the others are labelled from their values.
LABELS: dict[type, dict] = {wix.CalendarType: CALENDAR_TYPE_LABELS}


def choices(enum: type) -> list[tuple[str, str]]:
    """Django choices from a `wixapi.types` enum, labelled for people."""
    labels = LABELS.get(enum, {})
    return [(m.value, labels.get(m) or m.value.replace("_", " ").capitalize()) for m in enum]


class MirrorQuerySet(TenantOwnedQuerySet):
    """Scoping (`visible_to`, `operable_by`), plus what only mirrored rows have."""

    def present(self) -> MirrorQuerySet:
        """Rows Wix still shows (not marked removed)."""
        return self.filter(removed_at__isnull=True)


class PrefixIndex(models.Index):
    """An index on one text column that serves prefix search: `istartswith`, or `startswith`
    when `case_sensitive`.

    Both databases read `LIKE 'abc%'` from an index only when its collation fits: "C" on
    PostgreSQL (whose `istartswith` compares `UPPER(column)`, so that is what is indexed), and
    NOCASE on SQLite, whose LIKE ignores case. Elsewhere it is a plain index on the column.
    """

    def __init__(self, *, field: str, name: str, case_sensitive: bool = False, **kwargs):
        self.field, self.case_sensitive = field, case_sensitive
        super().__init__(fields=[field], name=name, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        del kwargs["fields"]
        kwargs["field"] = self.field
        if self.case_sensitive:
            kwargs["case_sensitive"] = True
        return path, args, kwargs

    def create_sql(self, model, schema_editor, using="", **kwargs):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            column = F(self.field) if self.case_sensitive else Upper(self.field)
            expression = Collate(column, "C")
        elif vendor == "sqlite":
            expression = Collate(F(self.field), "nocase")
        else:
            return super().create_sql(model, schema_editor, using, **kwargs)
        index = models.Index(expression, name=self.name, condition=self.condition)
        return index.create_sql(model, schema_editor, using, **kwargs)


class Mirrored(TenantOwned):
    """What every mirrored Wix object has."""

    # Read by Tenant.holds_mirror: a tenant whose site has mirrored rows keeps its site.
    mirrors_tenant_site = True

    wix_id = models.CharField("Wix ID", max_length=512)
    raw = models.JSONField("Wix JSON", default=dict)
    first_seen_at = models.DateTimeField()
    # Rewritten only when older than mirror.SEEN_RESOLUTION, by a refresh that compares rows
    # (one does at least every mirror.DIGEST_TRUSTED_FOR), so a refresh that finds nothing
    # new writes nothing: while Wix lists the row, it is at most about 1 h 45 min old.
    last_seen_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A digest of `raw` and the rows it links to (mirror.fingerprint): a refresh compares
    # it, not every column, to find the rows Wix changed. Empty until a refresh writes one.
    fingerprint = models.CharField(max_length=32, blank=True, editable=False)

    objects = MirrorQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    @classmethod
    def fingerprints(
        cls, models_: Sequence[type[Mirrored]], tenant: Tenant, *, seen_after: datetime
    ) -> dict[type[Mirrored], dict[str, tuple[int, str, bool, bool]]]:
        """For each of `models_`, wix_id -> (pk, fingerprint, removed, last seen before
        `seen_after`) of the tenant's rows, read in one query (a refresh's one read of the
        mirror). A class method: several models in one query is no one model's manager's."""
        return bulk.fingerprints(models_, tenant.pk, seen_after=seen_after)


# The modes each of a provider's features allows (Wix's `listEventFromCalendars` and
# `syncToCalendar` capabilities).
IMPORT_MODES = {
    wix.ListEventFromCalendars.PRIMARY_CALENDAR_ONLY.value: {wix.ImportMode.PRIMARY},
    wix.ListEventFromCalendars.SPECIFIC_CALENDARS.value: {
        wix.ImportMode.PRIMARY,
        wix.ImportMode.CALENDARS,
    },
}
EXPORT_MODES = {
    wix.SyncToCalendar.PRIMARY_CALENDAR_ONLY.value: {wix.ExportMode.PRIMARY},
    # Wix has no field to pick a specific export calendar (docs/wix-contract.md §1): the
    # primary it is.
    wix.SyncToCalendar.SPECIFIC_CALENDAR.value: {wix.ExportMode.PRIMARY},
    wix.SyncToCalendar.DEDICATED_CALENDAR.value: {wix.ExportMode.DEDICATED},
}
# [U] chosen: a capability the portal cannot read (UNDEFINED, or a value it does not know) is
# no reason to refuse: every mode is offered and Wix answers (428 NOT_SUPPORTED_BY_PROVIDER).
UNSURE_CAPABILITIES = {"", wix.ListEventFromCalendars.UNDEFINED.value}
# Export modes in the order the default export mode is chosen from.
EXPORT_DEFAULTS = (wix.ExportMode.DEDICATED, wix.ExportMode.PRIMARY)


def _listed_modes(capability: str, table: dict[str, set], every: type) -> set:
    """The modes a capability lists (all of `every` when it is unsure)."""
    if capability in UNSURE_CAPABILITIES:
        return set(every)
    return set(table.get(capability, set()))


class Provider(Mirrored):
    """A calendar provider available on the tenant's site (List Providers)."""

    name = models.CharField(max_length=200)
    calendar_type = models.CharField(max_length=32, choices=choices(wix.CalendarType))
    connect_methods = models.JSONField(default=list)
    import_capability = models.CharField(max_length=32, choices=choices(wix.ListEventFromCalendars))
    export_capability = models.CharField(max_length=32, choices=choices(wix.SyncToCalendar))
    can_update_sync_config = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "wix_id"], name="provider_unique_per_tenant")
        ]
        ordering = ["tenant", "name"]

    def __str__(self) -> str:
        return self.name or self.calendar_type

    def supports(self, method: str) -> bool:
        return method in self.connect_methods

    def import_modes(self) -> set[wix.ImportMode]:
        """The import modes the provider's features list (all of them when they are unsure)."""
        return _listed_modes(self.import_capability, IMPORT_MODES, wix.ImportMode)

    def export_modes(self) -> set[wix.ExportMode]:
        """The export modes the provider's features list (all of them when they are unsure)."""
        return _listed_modes(self.export_capability, EXPORT_MODES, wix.ExportMode)

    def default_import_mode(self) -> wix.ImportMode | None:
        """The mode import is turned on with: the primary calendar, if it can import at all."""
        return wix.ImportMode.PRIMARY if self.import_modes() else None

    def default_export_mode(self) -> wix.ExportMode | None:
        """The mode export is turned on with: a dedicated calendar where it can, else the
        primary one."""
        modes = self.export_modes()
        return next((mode for mode in EXPORT_DEFAULTS if mode in modes), None)


class Schedule(Mirrored):
    """A schedule of the tenant's site (Query Schedules); staff schedules carry the staff name."""

    name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=64, blank=True)
    app_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    default_title = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "wix_id"], name="schedule_unique_per_tenant")
        ]
        # The connection admin's search: the start of a schedule name.
        indexes = [PrefixIndex(field="name", name="schedule_name_prefix")]
        ordering = ["tenant", "name"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """A human name: "Anna Lee (Haircuts)" when the schedule has a default title too."""
        name = self.name or self.default_title or f"Schedule {self.wix_id[:8]}"
        if self.default_title and self.default_title != name:
            return f"{name} ({self.default_title})"
        return name


# The statuses of a connection that needs a person (and may be reconnected).
BROKEN_STATUSES = (wix.Status.ERROR, wix.Status.DISCONNECTED)


class ConnectionQuerySet(MirrorQuerySet):
    def broken(self) -> ConnectionQuerySet:
        """Connections that need a person: in ERROR, or disconnected, and still in Wix."""
        return self.present().filter(status__in=BROKEN_STATUSES)


class Connection(Mirrored):
    """A schedule's link to an external calendar (Get/List Connections)."""

    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="connections"
    )
    schedule = models.ForeignKey(
        Schedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="connections"
    )
    # Wix's ids, kept even when the provider or schedule is not (yet) mirrored.
    provider_wix_id = models.CharField(max_length=64, blank=True)
    schedule_wix_id = models.CharField(max_length=64, blank=True)
    calendar_type = models.CharField(max_length=32, choices=choices(wix.CalendarType))
    user_id = models.CharField(max_length=64, blank=True)
    app_id = models.CharField(max_length=64, blank=True)
    external_account_email = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=32, choices=choices(wix.Status))
    error_reason = models.CharField(max_length=64, blank=True, choices=choices(wix.ErrorReason))
    import_enabled = models.BooleanField(default=False)
    import_mode = models.CharField(max_length=16, blank=True, choices=choices(wix.ImportMode))
    # [{"id", "name"}] of the chosen calendars when import_mode is CALENDARS.
    import_calendars = models.JSONField(default=list, blank=True)
    export_enabled = models.BooleanField(default=False)
    export_mode = models.CharField(max_length=16, blank=True, choices=choices(wix.ExportMode))
    status_changed_at = models.DateTimeField()

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "wix_id"], name="connection_unique_per_tenant"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status"], name="connection_tenant_status"),
            models.Index(fields=["status", "error_reason"], name="connection_status_reason"),
            models.Index(fields=["calendar_type"], name="connection_calendar_type"),
            models.Index(fields=["external_account_email"], name="connection_email"),
            # The admin list's filters, over present rows (its default) and newest first: the
            # trailing id lets PostgreSQL read the first page in order (SQLite has it implied).
            models.Index(
                fields=["status", "id"],
                name="connection_present_status",
                condition=Q(removed_at__isnull=True),
            ),
            models.Index(
                fields=["status", "error_reason", "calendar_type", "id"],
                name="connection_present_reason",
                condition=Q(removed_at__isnull=True),
            ),
            # The admin's search: the start of an account email or of a Wix ID.
            PrefixIndex(field="external_account_email", name="connection_email_prefix"),
            PrefixIndex(field="wix_id", name="connection_wix_id_prefix", case_sensitive=True),
            models.Index(
                fields=["-status_changed_at"],
                name="connection_broken_recent",
                condition=Q(status__in=["ERROR", "DISCONNECTED"], removed_at__isnull=True),
            ),
        ]
        ordering = ["tenant", "id"]

    def __str__(self) -> str:
        who = self.schedule.label if self.schedule_id else self.schedule_wix_id[:8]
        return f"{who}: {self.get_calendar_type_display()} ({self.status})"

    @property
    def sync_config(self) -> wix.SyncConfig:
        """The mirrored sync config, ready to change and send back complete."""
        return wix.Connection.from_json(self.raw).sync_config

    @property
    def is_broken(self) -> bool:
        """In ERROR, or disconnected, and still in Wix (`ConnectionQuerySet.broken`)."""
        return self.status in BROKEN_STATUSES and not self.is_removed

    def import_modes(self) -> set[wix.ImportMode]:
        """The import modes to offer: the provider's, and the one the connection already has."""
        if self.provider is None:
            return set()
        imp = self.sync_config.list_event_from_calendars
        return _with_own(self.provider.import_modes(), imp, self.provider.import_capability)

    def export_modes(self) -> set[wix.ExportMode]:
        """The export modes to offer: the provider's, and the one the connection already has."""
        if self.provider is None:
            return set()
        exp = self.sync_config.sync_to_calendar
        return _with_own(self.provider.export_modes(), exp, self.provider.export_capability)

    def sync_settings_fixed_reason(self) -> str:
        """Why the sync settings cannot be changed at all, or "" when they can."""
        provider = self.provider
        if provider is None:
            return "The connection's provider is not mirrored yet; refresh the tenant first."
        if not provider.can_update_sync_config:
            return (
                f"{provider} does not allow changing sync settings; the connection keeps "
                "the settings it was made with."
            )
        return ""

    def describe_import(self) -> str:
        """Import in words: "off", "on, from the primary calendar", "on, from Work, Family"."""
        names = [c.get("name") or c.get("id", "") for c in self.import_calendars]
        return import_text(self.import_enabled, self.import_mode, names)

    def describe_export(self) -> str:
        """Export in words: "off", "on, to a dedicated calendar"."""
        return export_text(self.export_enabled, self.export_mode)


def _with_own(modes: set, part: wix.ImportConfig | wix.ExportConfig, capability: str) -> set:
    """`modes` and the mode of the connection's own direction `part`, if it has a real one.

    A disabled part still names a target (Wix's one-of); on a provider that says it cannot do
    the direction at all, that name is a placeholder, not something to turn on.
    """
    if part.mode is not None and (part.enabled or capability != "NOT_SUPPORTED"):
        modes.add(part.mode)
    return modes


def import_text(enabled: bool, mode: str | None, calendars: list[str]) -> str:
    if not enabled:
        return "off"
    if mode == wix.ImportMode.CALENDARS:
        return f"on, from {', '.join(calendars) or 'chosen calendars'}"
    return "on, from the primary calendar"


def export_text(enabled: bool, mode: str | None) -> str:
    if not enabled:
        return "off"
    if mode == wix.ExportMode.DEDICATED:
        return "on, to a dedicated calendar"
    return "on, to the primary calendar"


class RefreshOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


class RefreshTrigger(models.TextChoices):
    """What started a refresh."""

    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    COMMAND = "command", "Command"
    DEMO = "demo", "Demo"
    BENCH = "bench", "Benchmark"
    # Runs recorded before triggers were named, and callers that name none.
    MANUAL = "manual", "Manual"


class RefreshPassQuerySet(models.QuerySet):
    def open(self) -> RefreshPassQuerySet:
        """Passes not closed yet."""
        return self.filter(closed_at__isnull=True)

    def completed(self) -> RefreshPassQuerySet:
        """Passes that closed with every expected tenant done."""
        return self.filter(completed=True)


class RefreshPassManager(models.Manager.from_queryset(RefreshPassQuerySet)):
    def count_done(self, pk: int) -> tuple[int, int, bool] | None:
        """Count one more tenant done in pass `pk`, in one statement; return the pass's
        (done, expected, closed) after it, or None if there is no such pass."""
        connection = connections[router.db_for_write(self.model)]
        with connection.cursor() as cursor:
            cursor.execute(_count_done_sql(self.model, connection.alias), [pk])
            # All of it: SQLite ends an UPDATE ... RETURNING (and frees its table) only
            # once every returned row is read.
            rows = cursor.fetchall()
        if not rows:
            return None
        ((done, expected, closed_at),) = rows
        return done, expected, closed_at is not None


@cache
def _count_done_sql(model: type[models.Model], alias: str) -> str:
    # UPDATE ... RETURNING: PostgreSQL, and SQLite from 3.35. The ORM's update() returns
    # only a row count, and a read after it would be a second statement per tenant. Columns
    # only: SQLite 3.40 answered `closed_at IS NOT NULL` in this RETURNING with true for a
    # NULL.
    qn = connections[alias].ops.quote_name
    meta = model._meta
    table, pk = qn(meta.db_table), qn(meta.pk.column)
    done, expected, closed = (
        qn(meta.get_field(name).column) for name in ("done", "expected", "closed_at")
    )
    return (
        f"UPDATE {table} SET {done} = {done} + 1 WHERE {pk} = %s "  # noqa: S608
        f"RETURNING {done}, {expected}, {closed}"
    )


class RefreshPass(models.Model):
    """One run of `tasks.refresh_all` (beat, every REFRESH_INTERVAL_MINUTES) or of
    `manage.py refresh_connections --all`: every active tenant refreshed once.

    Closed when its last expected tenant is done (`completed`), or at `deadline_at` with
    `completed` false: a worker died, a message was lost, or the fleet takes longer than the
    interval. `/healthz` reads the newest completed pass.
    """

    started_at = models.DateTimeField()
    deadline_at = models.DateTimeField()
    # Tenants queued, and those whose refresh ended (ok, failed for good, or skipped).
    expected = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    completed = models.BooleanField(default=False)
    trigger = models.CharField(
        max_length=32, choices=RefreshTrigger, default=RefreshTrigger.SCHEDULE
    )

    objects = RefreshPassManager()

    class Meta:
        indexes = [
            # The newest completed pass (`selectors.last_completed_pass`).
            models.Index(
                fields=["-closed_at"], condition=Q(completed=True), name="refreshpass_completed"
            ),
            # The open passes past their deadline (`services.passes.passes_close_overdue`).
            models.Index(
                fields=["deadline_at"], condition=Q(closed_at__isnull=True), name="refreshpass_open"
            ),
        ]
        ordering = ["-started_at"]
        verbose_name_plural = "refresh passes"

    def __str__(self) -> str:
        return (
            f"Refresh pass {self.pk} at {self.started_at:%Y-%m-%d %H:%M} "
            f"({self.done} of {self.expected} done)"
        )


class RefreshRunManager(models.Manager.from_queryset(TenantOwnedQuerySet)):
    """A refresh's run is started unsaved and INSERTed once, finished: a refresh in progress
    shows as the tenant's lock (`tasks.refresh_is_running`), not as a row."""

    def start(
        self, tenant: Tenant, *, trigger: str, refresh_pass_id: int | None = None
    ) -> RefreshRun:
        """A run of `tenant` started now (in pass `refresh_pass_id`, if any), not saved yet."""
        return self.model(
            tenant=tenant,
            started_at=timezone.now(),
            trigger=trigger,
            refresh_pass_id=refresh_pass_id,
        )

    def record(self, run: RefreshRun) -> RefreshRun:
        """INSERT a finished run, in one statement (as `save()` would, without signals)."""
        return bulk.create(run)

    def create_if_digest_matches(self, run: RefreshRun, *, digest: str, since: datetime) -> bool:
        """INSERT `run` only if the tenant's latest run since `since` that recorded a
        `listing_digest` recorded `digest`; return whether it did. One statement, so an
        unchanged site's refresh checks the digest and records its run in one round trip."""
        return bulk.create_if_trusted(run, digest=digest, since=since)

    def forget_digests(self, tenant: Tenant) -> None:
        """Trust no recorded digest of the tenant's: its mirror was written by something
        other than a refresh, so the next refresh compares row by row."""
        self.filter(tenant=tenant).exclude(listing_digest="").update(listing_digest="")


class RefreshRun(TenantOwned):
    """One refresh of one tenant's mirror: when, how it went, what it changed."""

    # Indexed by (tenant, -started_at) below, which also serves the foreign key: every
    # refresh inserts a run, so one index fewer is less work per refresh.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=RefreshOutcome, default=RefreshOutcome.RUNNING
    )
    trigger = models.CharField(max_length=32, choices=RefreshTrigger, default=RefreshTrigger.MANUAL)
    new_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    removed_count = models.PositiveIntegerField(default=0)
    failed_provider_ids = models.JSONField(default=list, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    wix_request_id = models.CharField(max_length=200, blank=True)
    wix_calls = models.PositiveIntegerField(default=0)
    # A failure worth retrying later (Wix rate limited or unavailable).
    retryable = models.BooleanField(default=False)
    # Digest of Wix's answers, when this refresh compared them with the mirror row by row;
    # a later refresh given the same answers trusts it (services.refresh._trusted).
    listing_digest = models.CharField(max_length=32, blank=True, editable=False)
    # The pass it was part of; none for a refresh someone asked for (admin, API, --tenant).
    refresh_pass = models.ForeignKey(
        RefreshPass, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )

    objects = RefreshRunManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "-started_at"], name="refreshrun_tenant_recent")]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Refresh of {self.tenant_id} at {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.finished_at else None

    def finish(
        self,
        *,
        wix_calls: int,
        failed_provider_ids: Sequence[str] = (),
        new: int = 0,
        changed: int = 0,
        unchanged: int = 0,
        removed: int = 0,
        listing_digest: str = "",
    ) -> RefreshRun:
        """Set what a refresh that read Wix records (PARTIAL when a provider's connections
        failed to list); return the run, unsaved. `listing_digest` only when the refresh
        compared the mirror with Wix's answers row by row."""
        self.new_count = new
        self.changed_count = changed
        self.unchanged_count = unchanged
        self.removed_count = removed
        self.failed_provider_ids = list(failed_provider_ids)
        self.outcome = RefreshOutcome.PARTIAL if failed_provider_ids else RefreshOutcome.OK
        self.wix_calls = wix_calls
        self.listing_digest = listing_digest
        self.finished_at = timezone.now()
        return self

    def fail(self, exc: Exception, *, wix_calls: int) -> RefreshRun:
        """Set why the refresh failed (a Wix error, unreadable credentials, or anything
        else); return the run, unsaved."""
        if isinstance(exc, WixError):
            self.error_code = exc.code
            self.error_message = exc.message
            self.wix_request_id = exc.request_id or ""
            # Worth trying again later: Wix was busy or down, not refusing what we sent.
            self.retryable = isinstance(exc, WixRateLimited | WixUnavailable)
        elif isinstance(exc, DecryptionError):
            self.error_code = "CREDENTIALS_UNREADABLE"
            # The message names the field that no key opens, never its value.
            self.error_message = f"{CREDENTIALS_UNREADABLE} {exc}"
        else:
            # Not a Wix answer: keep the message out (it may hold anything), the log has it.
            self.error_code = "INTERNAL_ERROR"
            self.error_message = f"The refresh stopped on an unexpected {type(exc).__name__}."
        self.outcome = RefreshOutcome.FAILED
        self.listing_digest = ""  # nothing was compared
        self.wix_calls = wix_calls
        self.finished_at = timezone.now()
        return self


class ChangeKind(models.TextChoices):
    APPEARED = "appeared", "Appeared"
    CHANGED = "changed", "Changed"
    REMOVED = "removed", "Removed"
    REAPPEARED = "reappeared", "Reappeared"


class ConnectionChange(TenantOwned):
    """Something a refresh saw change on a connection: old -> new, when, in which refresh."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="changes")
    refresh_run = models.ForeignKey(
        RefreshRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    kind = models.CharField(max_length=16, choices=ChangeKind)
    # "status", "error_reason", "sync_config" or "external_account_email" for CHANGED.
    field = models.CharField(max_length=32, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["connection", "-changed_at"], name="change_connection_recent"),
            models.Index(fields=["tenant", "-changed_at"], name="change_tenant_recent"),
        ]
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        if self.kind == ChangeKind.CHANGED:
            return f"{self.field}: {self.old_value} → {self.new_value}"
        return self.get_kind_display()


class ConnectMethodChoice(models.TextChoices):
    OAUTH = "OAUTH", "OAuth link"
    CREDENTIALS = "CREDENTIALS", "Email and password"


class ConnectRequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the calendar owner"
    CONNECTED = "connected", "Connected"
    FAILED = "failed", "Failed"


class ConnectRequest(TenantOwned):
    """A tracked attempt to connect a schedule to a calendar through Wix's OAuth consent.

    The owner returns to `/connect/return/<state>/`; only a hash of the single-use state
    token is stored, so the database cannot be used to forge a return.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(
        max_length=16, choices=ConnectMethodChoice, default=ConnectMethodChoice.OAUTH
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    state_hash = models.CharField(max_length=64, unique=True)
    oauth_url = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ConnectRequestStatus, default=ConnectRequestStatus.PENDING
    )
    # Wix's `error` on return (reject, unsupported, internal) or an error code of ours.
    error = models.CharField(max_length=100, blank=True)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Connect {self.schedule} to {self.provider} ({self.get_status_display()})"


class Job(TenantOwned):
    """Work queued for a tenant (a refresh), looked up by id through the API."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, default="refresh")
    task_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.tenant_id} ({self.id})"


class IssueKind(models.TextChoices):
    """One problem of one object (connections/issues.py decides when each opens)."""

    CONNECTION_ERROR = "connection_error", "Connection in error"
    CONNECTION_DISCONNECTED = "connection_disconnected", "Connection disconnected"
    CONNECTION_REMOVED = "connection_removed", "Connection removed from Wix"
    CONNECTION_STUCK = "connection_stuck", "Connection not syncing"
    TENANT_REFRESH_FAILING = "tenant_refresh_failing", "Refresh failing"
    TENANT_CREDENTIALS = "tenant_credentials", "Credentials refused"
    TENANT_STALE = "tenant_stale", "Mirror stale"


CONNECTION_ISSUE_KINDS = (
    IssueKind.CONNECTION_ERROR,
    IssueKind.CONNECTION_DISCONNECTED,
    IssueKind.CONNECTION_REMOVED,
    IssueKind.CONNECTION_STUCK,
)
TENANT_ISSUE_KINDS = (
    IssueKind.TENANT_REFRESH_FAILING,
    IssueKind.TENANT_CREDENTIALS,
    IssueKind.TENANT_STALE,
)


class IssueState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    MUTED = "muted", "Muted"


# An issue that is still a problem (muted is still one, only silenced): at most one per object
# and kind.
LIVE_ISSUE_STATES = (IssueState.OPEN, IssueState.MUTED)


class IssueResolution(models.TextChoices):
    HEALTHY = "healthy", "Seen healthy"
    REMOVED = "removed", "Connection removed"
    PORTAL_ACTION = "portal_action", "Portal action"
    REPLACED = "replaced", "Replaced by another problem"


class Issue(TenantOwned):
    """One problem of one connection or tenant, from when it opened until it was seen fixed.

    The same problem returning within ISSUE_REOPEN_HOURS reopens this row (`occurrences`)
    rather than opening another; the rules are `connections/issues.py`.
    """

    kind = models.CharField(max_length=32, choices=IssueKind)
    # None for the tenant kinds (the check constraint below).
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="issues"
    )
    state = models.CharField(max_length=16, choices=IssueState, default=IssueState.OPEN)
    # Wix's errorReason, or the Wix error code of a failed refresh.
    detail = models.CharField(max_length=100, blank=True)
    first_seen_at = models.DateTimeField()
    # Written only when a refresh writes the issue: unchanged passes write no row.
    last_seen_at = models.DateTimeField()
    opened_at = models.DateTimeField()  # the current episode
    resolved_at = models.DateTimeField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    opened_by_change = models.ForeignKey(
        ConnectionChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_change = models.ForeignKey(
        ConnectionChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_by_run = models.ForeignKey(
        RefreshRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_run = models.ForeignKey(
        RefreshRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=16, blank=True, choices=IssueResolution)
    muted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    muted_until = models.DateTimeField(null=True, blank=True)
    mute_reason = models.CharField(max_length=200, blank=True)
    # ISO times of the latest openings within the flapping window (at most 3).
    recent_openings = models.JSONField(default=list, blank=True)
    flapping = models.BooleanField(default=False)
    # Opened by a site's first import: listed, notified to no one.
    baseline = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # Partial unique indexes rather than nulls_distinct: SQLite and PostgreSQL both
            # have them, and they serve the refresh's read of live issues.
            models.UniqueConstraint(
                fields=["connection", "kind"],
                condition=Q(connection__isnull=False, state__in=LIVE_ISSUE_STATES),
                name="issue_one_live_per_connection",
            ),
            models.UniqueConstraint(
                fields=["tenant", "kind"],
                condition=Q(connection__isnull=True, state__in=LIVE_ISSUE_STATES),
                name="issue_one_live_per_tenant",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=CONNECTION_ISSUE_KINDS, connection__isnull=False)
                | Q(kind__in=TENANT_ISSUE_KINDS, connection__isnull=True),
                name="issue_connection_iff_connection_kind",
            ),
            models.CheckConstraint(
                condition=~Q(state=IssueState.MUTED) | Q(muted_until__isnull=False),
                name="issue_muted_has_expiry",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "-opened_at"], name="issue_state_recent"),
            models.Index(fields=["tenant", "state"], name="issue_tenant_state"),
            models.Index(
                fields=["muted_until"],
                name="issue_mute_expiry",
                condition=Q(state=IssueState.MUTED),
            ),
            models.Index(
                fields=["resolved_at"], name="issue_flapping_resolved", condition=Q(flapping=True)
            ),
        ]
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.state})"
