"""What `/metrics` tells Prometheus, read from the database at scrape time.

Every figure is computed from rows when Prometheus scrapes, so it is right with any number of
gunicorn workers and Celery processes on any hosts, and survives restarts; the client's
multiprocess mode would see only the processes of the host serving `/metrics`
(docs/design/alerts.md §6).

`registry` is a private `CollectorRegistry()`, never prometheus_client's default `REGISTRY`:
that one describes a collector by calling `collect()` when it is registered, which would query
the database at import.

Counters are read whole from the rows (a count or a sum over the table at each scrape), with no
rollup table: fine for the row counts this portal keeps. If `RefreshRun` or `Delivery` grow
past millions of rows, a periodic rollup (totals folded up to an id, plus a live count above
it) is the next step.

Labels are a bounded set: statuses, reasons, kinds, outcomes and states are enums. Per-tenant
figures (`portal_tenant_connections{tenant_id,status}`) are added only when
`METRICS_TENANT_LABELS` is true.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from connections.models import Connection, Issue, IssueKind, IssueState, RefreshOutcome, RefreshRun
from connections.selectors import last_completed_pass
from tenants.models import Tenant

from .models import Delivery, DeliveryState

# Upper bounds of the refresh duration histogram, in seconds (+Inf is added).
DURATION_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# The refresh runs the histogram is computed over: those started this recently.
DURATION_WINDOW = timedelta(hours=24)


class DatabaseCollector(Collector):
    """Yields the portal's gauges, counters and histogram, one query each."""

    def collect(self) -> Iterator[Metric]:
        yield self.connections()
        yield self.open_issues()
        yield self.last_pass_age()
        yield self.tenants()
        yield from self.refresh_runs()
        yield self.webhook_deliveries()
        yield self.refresh_duration()
        if settings.METRICS_TENANT_LABELS:
            yield self.tenant_connections()

    # --- Gauges ---

    def connections(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_connections",
            "Connections Wix still shows, by status and error reason (empty when none).",
            labels=["status", "error_reason"],
        )
        rows = (
            Connection.objects.present()
            .order_by()
            .values("status", "error_reason")
            .annotate(n=Count("id"))
        )
        for row in rows:
            family.add_metric([row["status"], row["error_reason"]], row["n"])
        return family

    def open_issues(self) -> Metric:
        family = GaugeMetricFamily("portal_open_issues", "Open issues, by kind.", labels=["kind"])
        counts = dict.fromkeys(IssueKind.values, 0)
        rows = (
            Issue.objects.filter(state=IssueState.OPEN)
            .order_by()
            .values("kind")
            .annotate(n=Count("id"))
        )
        counts.update({row["kind"]: row["n"] for row in rows})
        for kind, n in counts.items():
            family.add_metric([kind], n)
        return family

    def last_pass_age(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_last_pass_age_seconds",
            "Seconds since the last completed refresh pass closed; no sample when none ever "
            "completed (alert on absent() as well as on the age).",
        )
        last = last_completed_pass()
        if last is not None:
            age = max((timezone.now() - last.closed_at).total_seconds(), 0.0)
            family.add_metric([], age)
        return family

    def tenants(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_tenants", "Tenants, by whether they are active.", labels=["active"]
        )
        counts = {True: 0, False: 0}
        rows = Tenant.objects.order_by().values("is_active").annotate(n=Count("id"))
        counts.update({row["is_active"]: row["n"] for row in rows})
        for active, n in counts.items():
            family.add_metric(["true" if active else "false"], n)
        return family

    def tenant_connections(self) -> Metric:
        family = GaugeMetricFamily(
            "portal_tenant_connections",
            "Connections Wix still shows, by tenant and status (METRICS_TENANT_LABELS).",
            labels=["tenant_id", "status"],
        )
        rows = (
            Connection.objects.present()
            .order_by()
            .values("tenant_id", "status")
            .annotate(n=Count("id"))
        )
        for row in rows:
            family.add_metric([str(row["tenant_id"]), row["status"]], row["n"])
        return family

    # --- Counters, read whole from the rows ---

    def refresh_runs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "portal_refresh_runs", "Refresh runs recorded, by outcome.", labels=["outcome"]
        )
        counts = dict.fromkeys(RefreshOutcome.values, 0)
        calls = 0
        rows = (
            RefreshRun.objects.order_by()
            .values("outcome")
            .annotate(n=Count("id"), calls=Sum("wix_calls"))
        )
        for row in rows:
            counts[row["outcome"]] = row["n"]
            calls += row["calls"] or 0
        for outcome, n in counts.items():
            runs.add_metric([outcome], n)
        yield runs
        yield CounterMetricFamily(
            "portal_wix_calls", "Calls to Wix made by refresh runs.", value=calls
        )

    def webhook_deliveries(self) -> Metric:
        family = CounterMetricFamily(
            "portal_webhook_deliveries",
            "Webhook deliveries (one event for one endpoint, its retries included), by state.",
            labels=["state"],
        )
        counts = dict.fromkeys(DeliveryState.values, 0)
        rows = Delivery.objects.order_by().values("state").annotate(n=Count("id"))
        counts.update({row["state"]: row["n"] for row in rows})
        for state, n in counts.items():
            family.add_metric([state], n)
        return family

    # --- Histogram ---

    def refresh_duration(self) -> Metric:
        """The durations of the refresh runs that started in the last 24 h and finished.

        A window, not a running total: counts fall as runs age out of it, so read it as it
        is (quantiles with histogram_quantile() over the buckets), not through rate().
        Computed in Python from started_at and finished_at, since the SQL for a duration
        differs between SQLite and PostgreSQL.
        """
        since = timezone.now() - DURATION_WINDOW
        rows = (
            RefreshRun.objects.filter(started_at__gte=since, finished_at__isnull=False)
            .order_by()
            .values_list("started_at", "finished_at")
        )
        counts = [0] * len(DURATION_BUCKETS)
        total, count = 0.0, 0
        for started_at, finished_at in rows.iterator():
            seconds = max((finished_at - started_at).total_seconds(), 0.0)
            total += seconds
            count += 1
            for i, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
        buckets = [
            (floatToGoString(bound), n) for bound, n in zip(DURATION_BUCKETS, counts, strict=True)
        ]
        buckets.append(("+Inf", count))
        return HistogramMetricFamily(
            "portal_refresh_duration_seconds",
            "Durations of the refresh runs started in the last 24 h (a window, not a running "
            "total).",
            buckets=buckets,
            sum_value=total,
        )


registry = CollectorRegistry()
registry.register(DatabaseCollector())
