"""The admin index dashboard: connection totals, broken connections and tenants gone stale,
each with when the mirror was last refreshed (the last completed refresh pass).

Everything is scoped to the tenants the user can see (`visible_to`, tenants.access's rule) and
read in a fixed number of queries, whatever the number of tenants or connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, When
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from common.badges import badge
from connections.models import Connection, RefreshOutcome, RefreshRun
from connections.selectors import last_completed_pass
from tenants import access
from tenants.models import Tenant
from wixapi import types as wix

from . import health

BROKEN_LIMIT = 20
STALE_LIMIT = 20
# Cards in this order: what needs a person first. UNDEFINED only when there is one.
STATUS_ORDER = (
    wix.Status.ERROR,
    wix.Status.DISCONNECTED,
    wix.Status.SYNC_IN_PROGRESS,
    wix.Status.CONNECTED,
    wix.Status.SYNCED,
    wix.Status.UNDEFINED,
)
STATUS_LABELS = dict(Connection._meta.get_field("status").choices)


@dataclass(frozen=True)
class StatusTotal:
    status: str
    label: str
    count: int
    url: str | None

    @property
    def badge(self) -> SafeString:
        return badge(self.status, self.label)


@dataclass(frozen=True)
class BrokenConnection:
    connection: Connection
    url: str | None
    tenant_url: str | None

    @property
    def badge(self) -> SafeString:
        return badge(self.connection.status, self.connection.get_status_display())


@dataclass(frozen=True)
class StaleTenant:
    tenant: Tenant
    url: str | None
    # "failed", "never" or "stale"
    reason: str
    last_outcome: str | None
    last_finished_at: datetime | None
    error_code: str

    @property
    def badge(self) -> SafeString:
        if self.last_outcome is None:
            return badge("never", "Never refreshed")
        return badge(self.last_outcome, RefreshOutcome(self.last_outcome).label)


@dataclass(frozen=True)
class Dashboard:
    has_tenants: bool
    totals: list[StatusTotal]
    total: int
    broken_count: int
    broken: list[BrokenConnection]
    stale_count: int
    stale: list[StaleTenant]
    stale_after: timedelta
    connections_url: str | None
    # When the last completed refresh pass closed (None: none ever did), and that in words:
    # "refreshed 4 minutes ago", "never refreshed".
    refreshed_at: datetime | None
    refreshed: str

    @property
    def stale_after_minutes(self) -> int:
        return int(self.stale_after.total_seconds() // 60)


def admin_url(name: str, *args, query: str = "") -> str | None:
    """The admin URL `name`, or None while that page does not exist."""
    try:
        url = reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None
    return f"{url}?{query}" if query else url


def stale_after() -> timedelta:
    """A tenant is stale when its last finished refresh is older than this."""
    return timedelta(minutes=2 * settings.REFRESH_INTERVAL_MINUTES)


def build(user, *, now: datetime | None = None) -> Dashboard:
    """Return the dashboard of the tenants `user` can see, in at most 7 queries."""
    now = now or timezone.now()
    counts = _present_counts(user)
    changelist = admin_url("connections_connection_changelist")
    totals = [
        StatusTotal(
            status=status,
            label=STATUS_LABELS.get(status, status),
            count=counts.get(status, 0),
            url=f"{changelist}?status__exact={status}" if changelist else None,
        )
        for status in STATUS_ORDER
        if counts.get(status) or status != wix.Status.UNDEFINED
    ]
    broken_count = counts.get(wix.Status.ERROR, 0) + counts.get(wix.Status.DISCONNECTED, 0)

    broken_rows = (
        Connection.objects.broken()
        .visible_to(user)
        .select_related("tenant", "schedule")
        .only(
            "tenant__id",
            "tenant__name",
            "schedule__id",
            "schedule__wix_id",
            "schedule__name",
            "schedule__default_title",
            "wix_id",
            "schedule_wix_id",
            "calendar_type",
            "external_account_email",
            "status",
            "error_reason",
            "status_changed_at",
        )
        .order_by("-status_changed_at", "-pk")[:BROKEN_LIMIT]
    )
    broken = [
        BrokenConnection(
            connection=row,
            url=admin_url("connections_connection_change", row.pk),
            tenant_url=admin_url("tenants_tenant_change", row.tenant_id),
        )
        for row in broken_rows
    ]

    stale_tenants = _stale_tenants(user, cutoff=now - stale_after())
    stale = [
        StaleTenant(
            tenant=tenant,
            url=admin_url("tenants_tenant_change", tenant.pk),
            reason=_stale_reason(tenant),
            last_outcome=tenant.last_outcome,
            last_finished_at=tenant.last_finished_at,
            error_code=tenant.last_error_code or "",
        )
        for tenant in stale_tenants[:STALE_LIMIT]
    ]
    stale_count = len(stale) if len(stale) < STALE_LIMIT else stale_tenants.count()
    last_pass = last_completed_pass()
    refreshed_at = last_pass.closed_at if last_pass else None

    return Dashboard(
        has_tenants=access.has_any_tenant(user),
        totals=totals,
        total=sum(counts.values()),
        broken_count=broken_count,
        broken=broken,
        stale_count=stale_count,
        stale=stale,
        stale_after=stale_after(),
        connections_url=changelist,
        refreshed_at=refreshed_at,
        refreshed=_refreshed(refreshed_at, now=now),
    )


def _refreshed(refreshed_at: datetime | None, *, now: datetime) -> str:
    if refreshed_at is None:
        return "never refreshed"
    return f"refreshed {health.ago(now - refreshed_at)}"


def _present_counts(user) -> dict[str, int]:
    """Return {status: number of present connections} of the user's tenants (2 queries).

    Counted as all rows minus removed ones: the first count reads only the (status, ...) or
    (tenant, status) index, and removed rows are few and found through their own index,
    where `removed_at IS NULL` over every row would read the whole table (Wix JSON and all).
    """
    connections = Connection.objects.visible_to(user)
    by_status = connections.order_by().values("status").annotate(n=Count("pk"))
    removed_ids = Connection.objects.filter(removed_at__isnull=False).values("pk")
    counts = dict(by_status.values_list("status", "n"))
    for status, n in by_status.filter(pk__in=removed_ids).values_list("status", "n"):
        counts[status] -= n
    return {status: n for status, n in counts.items() if n}


def _stale_tenants(user, *, cutoff: datetime) -> QuerySet[Tenant]:
    """Active tenants whose last finished refresh failed, is older than `cutoff`, or is none."""
    # The last finished run decides: one still running says nothing yet.
    last_run = RefreshRun.objects.filter(tenant=OuterRef("pk"), finished_at__isnull=False).order_by(
        "-started_at", "-pk"
    )[:1]
    return (
        Tenant.objects.active()
        .visible_to(user)
        .annotate(
            last_outcome=Subquery(last_run.values("outcome")),
            last_finished_at=Subquery(last_run.values("finished_at")),
            last_error_code=Subquery(last_run.values("error_code")),
        )
        .filter(
            Q(last_outcome=RefreshOutcome.FAILED)
            | Q(last_finished_at__isnull=True)
            | Q(last_finished_at__lt=cutoff)
        )
        .only("id", "name")
        .order_by(
            Case(
                When(last_outcome=RefreshOutcome.FAILED, then=0),
                When(last_finished_at__isnull=True, then=1),
                default=2,
                output_field=IntegerField(),
            ),
            F("last_finished_at").asc(nulls_first=True),
            "name",
        )
    )


def _stale_reason(tenant: Tenant) -> str:
    if tenant.last_outcome == RefreshOutcome.FAILED:
        return "failed"
    if tenant.last_finished_at is None:
        return "never"
    return "stale"
